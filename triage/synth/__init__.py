"""Seeded synthetic 12345 hotline tickets for tests, demos and benchmarks.

>>> from triage.synth import generate_tickets
>>> res = generate_tickets(1000, seed=1)
>>> res.tickets.columns[:4].tolist()
['ticket_id', 'received_at', 'title', 'text']

All content is synthetic: real Beijing street/community names (taxonomy/gazetteer), invented estates,
people, phone and ID numbers, and pseudo coordinates (see ``triage.synth.places``).
"""

from triage.synth.generator import CATEGORY_CODES, CATEGORY_WEIGHTS, SynthResult, generate_tickets

__all__ = ["CATEGORY_CODES", "CATEGORY_WEIGHTS", "SynthResult", "generate_tickets"]
