"""Classify the tickets that have no prediction yet, in shards, with the champion model.

Runs in bounded batches (one read, one bulk write each) so memory stays flat at any volume; a
shard is ``tickets.shard % n_shards == k`` so parallel workers never touch the same ticket.
Re-running does nothing for tickets already predicted, so a retried task converges.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select

from triage.classify.registry import load_champion
from triage.classify.train import predict_frame
from triage.store import Prediction, Ticket, get_engine, insert_ignore
from triage.store.models import utcnow


def classify_pending(
    shard: int = 0, n_shards: int = 1, batch_rows: int = 20_000, source_files: Sequence[int] | None = None
) -> dict[str, Any]:
    """``source_files`` (ledger ids): only those files' tickets (the intra-day dispatch)."""
    model = load_champion()
    engine = get_engine()
    t0 = time.perf_counter()
    done = needs_review = 0
    last_id = ""
    while True:
        q = (
            select(Ticket.ticket_id, Ticket.title, Ticket.text)
            .outerjoin(Prediction, Prediction.ticket_id == Ticket.ticket_id)
            .where(Prediction.ticket_id.is_(None), Ticket.ticket_id > last_id)
            .order_by(Ticket.ticket_id)
            .limit(batch_rows)
        )
        if n_shards > 1:
            q = q.where(Ticket.shard % n_shards == shard)
        if source_files is not None:
            q = q.where(Ticket.source_file_id.in_(list(source_files)))
        with engine.connect() as conn:
            rows = conn.execute(q).all()
        if not rows:
            break
        last_id = rows[-1][0]
        X = np.array([[r[1] or "", r[2]] for r in rows], dtype=object)
        pred = predict_frame(model.estimator, X, model.threshold)
        now = utcnow()
        records = [
            {
                "ticket_id": r[0],
                "category": lab,
                "confidence": float(conf),
                "top3": [[c, p] for c, p in top3],
                "needs_review": bool(nr),
                "model_version": model.version,
                "predicted_at": now,
            }
            for r, lab, conf, top3, nr in zip(
                rows, pred["label"], pred["confidence"], pred["top3"], pred["needs_review"], strict=True
            )
        ]
        with engine.begin() as conn:
            done += insert_ignore(conn, Prediction.__table__, records, ["ticket_id"])
        needs_review += int(pred["needs_review"].sum())
    return {
        "classified": done,
        "needs_review": needs_review,
        "model_version": model.version,
        "shard": shard,
        "n_shards": n_shards,
        "seconds": round(time.perf_counter() - t0, 2),
    }
