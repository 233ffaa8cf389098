"""The hotspot and proactive stages through the product path (ingest → classify → route →
hotspots → proactive) on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import func, select, update

from triage.tables import write_table

NIGHT = dt.date(2026, 11, 20)


@pytest.fixture
def loaded(db, tmp_path):
    from triage.classify.batch import classify_pending
    from triage.ingest import ingest_file
    from triage.route import route_pending
    from triage.synth import generate_tickets

    res = generate_tickets(4000, seed=11, start=NIGHT - dt.timedelta(days=41), end=NIGHT, labeled=False)
    path = write_table(res.tickets, tmp_path / "t.parquet")
    ingest_file(path, night=NIGHT)
    classify_pending()
    route_pending()
    return res.truth


def test_hotspots_find_injected_surges_and_events_and_tasks_deduplicate(loaded):
    from triage.pipeline import hotspots_stage, proactive_stage
    from triage.store import HotspotEvent, HotspotSignal, Prediction, QueueEvent, QueueItem, get_engine

    truth = loaded
    days = sorted({dt.date.fromisoformat(s["day"]) for s in truth["surges"]})
    assert days
    found = 0
    for day in days:
        counts = hotspots_stage(day)
        assert set(counts) >= {"tickets_in_window", "series_tested", "surges", "events", "timings"}
        with get_engine().connect() as c:
            sig = {(r.unit_code, r.category) for r in c.execute(
                select(HotspotSignal).where(HotspotSignal.night == day, HotspotSignal.significant,
                                            HotspotSignal.level == "street"))}  # fmt: skip
        for s in truth["surges"]:
            if s["day"] == day.isoformat():
                found += (s["street_code"], s["category"]) in sig
    assert found >= len(truth["surges"]) - 1  # classifier/router errors may cost one, not more

    counts = hotspots_stage(NIGHT)
    with get_engine().connect() as c:
        events = c.execute(select(HotspotEvent).where(HotspotEvent.night == NIGHT)).all()
        stored = c.execute(
            select(func.count()).select_from(HotspotSignal).where(HotspotSignal.night == NIGHT)
        ).scalar_one()
    assert counts["events"] == len(events) and stored == counts["signals_stored"]
    with get_engine().connect() as c:
        predicted = dict(c.execute(select(Prediction.ticket_id, Prediction.category)).all())
    for e in truth["events"]:
        if dt.date.fromisoformat(e["last_day"]) < NIGHT - dt.timedelta(days=89):
            continue
        # the nightly stage links tickets within street × predicted category, so an event's
        # tickets must mostly share one predicted category (the classifier's part) …
        cats = Counter(predicted[t] for t in e["ticket_ids"])
        category, n = cats.most_common(1)[0]
        # (0.6: builtin-v5 and later, trained on real messages too, file some generated mixing-plant noise
        # under environment_nuisance rather than construction_site — 14 of 22; both are defensible)
        assert n / len(e["ticket_ids"]) >= 0.6, (e["event_key"], cats)
        # … and the clustering must gather most of those (its part)
        ids = {t for t in e["ticket_ids"] if predicted[t] == category}
        best = max(len(ids & set(x.member_ids)) / len(ids) for x in events)
        assert best >= 0.6, (e["event_key"], best)

    first = proactive_stage(NIGHT)
    assert first["tasks_created"] > 0 and first["tasks_updated"] == 0
    second = proactive_stage(NIGHT)  # the same night again changes nothing
    assert second["tasks_created"] == 0 and second["tasks_updated"] == 0
    assert second["tasks_unchanged"] == first["tasks_created"]
    with get_engine().connect() as c:
        tasks = c.execute(select(QueueItem).where(QueueItem.kind == "proactive")).all()
        assert len(tasks) == first["tasks_created"]
        assert len({t.task_key for t in tasks}) == len(tasks)
        assert all(
            t.queue == "street" and t.street_code and t.ticket_id is None and t.evidence for t in tasks
        )
        assert all(t.version == 1 and t.evidence["nights"] == [NIGHT.isoformat()] for t in tasks)
        n_events = c.execute(
            select(func.count()).select_from(QueueEvent).where(QueueEvent.actor == "system:hotspots")
        ).scalar_one()
        assert n_events == len(tasks)
        surge_tasks = [t for t in tasks if t.evidence["type"] == "surge"]
        assert all(t.evidence["ticket_ids"] for t in surge_tasks)
    # a closed task is history: the same hotspot next night opens a new one
    with get_engine().begin() as c:
        c.execute(update(QueueItem).where(QueueItem.id == tasks[0].id).values(status="closed"))
    third = proactive_stage(NIGHT)
    assert third["tasks_created"] == 1 and third["tasks_updated"] == 0
    # a re-run of the hotspot stage replaces that night's rows instead of adding to them
    again = hotspots_stage(NIGHT)
    with get_engine().connect() as c:
        assert (
            c.execute(
                select(func.count()).select_from(HotspotEvent).where(HotspotEvent.night == NIGHT)
            ).scalar_one()
            == again["events"]
        )
        before = c.execute(select(func.count()).select_from(QueueEvent)).scalar_one()
        versions = dict(c.execute(select(QueueItem.id, QueueItem.version)).all())
    # … and the proactive stage after it still changes nothing (same hotspots, new row ids)
    fourth = proactive_stage(NIGHT)
    assert fourth["tasks_created"] == 0 and fourth["tasks_updated"] == 0
    with get_engine().connect() as c:
        assert c.execute(select(func.count()).select_from(QueueEvent)).scalar_one() == before
        assert dict(c.execute(select(QueueItem.id, QueueItem.version)).all()) == versions


def test_hotspot_stage_on_an_empty_database(db):
    from triage.pipeline import hotspots_stage, proactive_stage

    counts = hotspots_stage(NIGHT)
    assert counts["tickets_in_window"] == 0 and counts["surges"] == 0 and counts["events"] == 0
    assert proactive_stage(NIGHT)["tasks_created"] == 0
