"""Checks for `make cluster-smoke` after a DAG run: who ran the tasks (Airflow's metadata) and
whether every ticket of the night landed exactly once (the product database, from TRIAGE_* env).
Exits non-zero with the reason on the first failed check."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def fail(msg: str) -> None:
    print(f"CHECK FAILED: {msg}")
    sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--airflow-db", required=True)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--night", required=True)
    ap.add_argument("--expect-workers", default="", help="comma-separated worker names that must appear")
    ap.add_argument("--expect-retry", default="", help="a task id that must have needed a second try")
    args = ap.parse_args()

    af = sa.create_engine(args.airflow_db)
    with af.connect() as c:
        tis = c.execute(
            sa.text(
                "select task_id, map_index, state, hostname, try_number from task_instance where run_id = :r"
            ),
            {"r": args.run_id},
        ).all()
    if not tis:
        fail(f"no task instances for run {args.run_id}")
    not_ok = [t for t in tis if t.state not in ("success", "skipped")]
    if not_ok:
        fail(f"task instances not successful: {not_ok}")
    hosts = sorted({t.hostname for t in tis if t.hostname})
    print(f"    {len(tis)} task instances succeeded on {', '.join(hosts)}")
    for w in filter(None, args.expect_workers.split(",")):
        if w not in hosts:
            fail(f"no task ran on {w} (hosts: {hosts})")
    if args.expect_retry:
        retried = [t for t in tis if t.task_id == args.expect_retry and t.try_number >= 2]
        if not retried:
            fail(f"no {args.expect_retry} task needed a retry; the fault was not exercised")
        print(f"    {len(retried)} {args.expect_retry} task(s) retried after the kill: "
              + ", ".join(f"map {t.map_index} try {t.try_number} on {t.hostname}" for t in retried))  # fmt: skip

    from triage.store import IngestFile, Prediction, Quarantine, QueueItem, Ticket, get_engine

    night = dt.date.fromisoformat(args.night)
    with get_engine().connect() as c:
        one = lambda q: c.execute(q).scalar_one()  # noqa: E731
        read = one(
            sa.select(sa.func.coalesce(sa.func.sum(IngestFile.rows_read), 0)).where(IngestFile.night == night)
        )
        n_tickets = one(sa.select(sa.func.count()).select_from(Ticket).where(Ticket.night == night))
        n_quar = one(sa.select(sa.func.count()).select_from(Quarantine).where(Quarantine.night == night))
        tids = sa.select(Ticket.ticket_id).where(Ticket.night == night)
        n_pred = one(sa.select(sa.func.count()).select_from(Prediction).where(Prediction.ticket_id.in_(tids)))
        items = c.execute(
            sa.select(QueueItem.ticket_id, sa.func.count()).where(QueueItem.ticket_id.in_(tids))
            .group_by(QueueItem.ticket_id)
        ).all()  # fmt: skip
    dup = [t for t, n in items if n > 1]
    print(f"    rows read {read} = tickets {n_tickets} + quarantined {n_quar}; predictions {n_pred}; "
          f"queue items {len(items)} (duplicates {len(dup)})")  # fmt: skip
    if read != n_tickets + n_quar:
        fail("rows read != tickets + quarantined")
    if n_pred != n_tickets:
        fail(f"{n_tickets - n_pred} tickets without a prediction")
    if len(items) != n_tickets or dup:
        fail(f"queue items: {len(items)} tickets with an item of {n_tickets}, {len(dup)} duplicated")


if __name__ == "__main__":
    main()
