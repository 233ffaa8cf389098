"""The nightly pipeline as plain functions: ingest → classify → route → hotspots → proactive → report.

The CLI (`triage run-nightly`) calls :func:`run_nightly`; the Airflow DAG calls each stage as its
own task. Every stage reads what the previous one committed, returns a small JSON-able dict of
counts (what goes through XCom), records itself in ``pipeline_runs``, and can be re-run for the
same night without changing anything.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from triage.config import get_settings
from triage.ingest import FileChangedError, FileSchemaError, InputFileError, expand_paths, ingest_file
from triage.store import PipelineRun, clean_search_index, get_engine, refresh_statistics, upsert
from triage.store.models import utcnow

# the tables each stage bulk-loads: their planner statistics are refreshed when it finishes, so the
# next stage's queries are planned for a million rows, not for the empty tables of the last ANALYZE
STAGE_WRITES = {
    "ingest": ("tickets", "quarantine", "ingest_files"),
    "classify": ("predictions",),
    "route": ("queue_items", "queue_events"),
    "hotspots": ("hotspot_signals", "hotspot_events", "scan_clusters"),
    "proactive": ("queue_items", "queue_events"),
}  # the intra-day dispatch adds a few rows to large tables: no statistics refresh every 10 minutes


def night_inbox(night: dt.date, inbox: Path | str | None = None) -> Path:
    """The folder holding a night's files: ``<inbox>/<YYYY-MM-DD>/`` if it exists, else ``inbox``."""
    root = Path(inbox) if inbox else get_settings().inbox_dir
    dated = root / night.isoformat()
    return dated if dated.is_dir() else root


def record_stage(night: dt.date, stage: str, shard: int, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a stage and record it. The night-wide stages (shard -1: ingest, hotspots, proactive,
    report) hold the night's lock, so a hand re-run or a zombie task beside its retry waits."""
    from triage.store.locks import night_lock

    lock = night_lock(night, f"{stage} stage") if shard == -1 else contextlib.nullcontext()
    with lock:
        started = utcnow()
        t0 = time.perf_counter()
        counts = fn()
        with get_engine().begin() as conn:
            refresh_statistics(conn, STAGE_WRITES.get(stage, ()))
        counts.setdefault("seconds", round(time.perf_counter() - t0, 2))
        with get_engine().begin() as conn:
            upsert(
                conn, PipelineRun.__table__,
                [{"night": night, "stage": stage, "shard": shard, "started_at": started, "finished_at": utcnow(), "counts": counts}],
                ["night", "stage", "shard"], ["started_at", "finished_at", "counts"],
            )  # fmt: skip
    return counts


def ingest_stage(night: dt.date, inbox: Path | str | None = None) -> dict[str, Any]:
    """Ingest every supported file in the night's inbox. A file that cannot be read is rejected
    (recorded in the ledger with its reason) and the others still load."""

    def run() -> dict[str, Any]:
        folder = night_inbox(night, inbox)
        if not folder.exists():
            raise InputFileError(f"inbox {folder} does not exist (set TRIAGE_INBOX_DIR or pass --inbox)")
        files = expand_paths([folder])
        reports = []
        for f in files:
            try:
                reports.append(ingest_file(f, night=night).as_dict())
            except (InputFileError, FileSchemaError) as exc:
                status = "failed" if isinstance(exc, FileChangedError) else "rejected"
                reports.append({"source": str(f), "status": status, "message": str(exc)})
        totals = {
            k: sum(r.get(k, 0) for r in reports)
            for k in ("rows_read", "rows_new", "rows_unchanged", "rows_quarantined")
        }
        return {
            "inbox": str(folder),
            "files": len(files),
            "rejected_files": sum(r["status"] == "rejected" for r in reports),
            "failed_files": sum(r["status"] == "failed" for r in reports),
            "skipped_files": sum(r["status"] == "skipped" for r in reports),
            **totals,
            "reports": reports,
        }

    return record_stage(night, "ingest", -1, run)


def classify_stage(night: dt.date, shard: int = 0, n_shards: int = 1) -> dict[str, Any]:
    from triage.classify.batch import classify_pending

    return record_stage(night, "classify", shard, lambda: classify_pending(shard, n_shards))


def route_stage(night: dt.date, shard: int = 0, n_shards: int = 1) -> dict[str, Any]:
    from triage import notify
    from triage.route import route_pending

    def run() -> dict[str, Any]:
        since = utcnow()
        counts = route_pending(shard=shard, n_shards=n_shards)
        return {**counts, "alerts": notify.emergencies_dispatched(since)}

    return record_stage(night, "route", shard, run)


def hotspots_stage(night: dt.date) -> dict[str, Any]:
    """Surges, events and the space-time scan over the 90 days up to the night (stored per night)."""
    from triage.hotspots.stage import run_hotspots

    return record_stage(night, "hotspots", -1, lambda: run_hotspots(night))


def proactive_stage(night: dt.date) -> dict[str, Any]:
    """The night's hotspots as proactive tasks in the streets' queues (open tasks are updated)."""
    from triage import notify
    from triage.hotspots.proactive import run_proactive

    def run() -> dict[str, Any]:
        since = utcnow()
        counts = run_proactive(night)
        return {**counts, "alerts": notify.proactive_created(since)}

    return record_stage(night, "proactive", -1, run)


def report_stage(night: dt.date, out: Path | str | None = None) -> dict[str, Any]:
    from triage.report.nightly import write_nightly_report

    def run() -> dict[str, Any]:
        path = write_nightly_report(night, out)
        return {"report": str(path), "alerts": notify_sweep()}

    return record_stage(night, "report", -1, run)


def notify_sweep() -> dict[str, Any]:
    """Overdue items become alerts, and the alerts due are delivered (never raises)."""
    from triage import notify

    return {**notify.overdue_items(), **notify.deliver_pending()}


# --- intra-day dispatch (接诉即办 within minutes) ---------------------------------------------------
def settled(path: Path, settle_s: float, now: float | None = None) -> bool:
    """The rule for files still being written: a file is taken once it has not changed (size and
    modification time) for ``settle_s`` seconds. Writers that can should write under a hidden
    name (``.x.part``; hidden files are never read) and rename it into place when complete."""
    st = path.stat()
    return (now if now is not None else time.time()) - st.st_mtime >= settle_s


def _ledger_has(path: Path) -> bool:
    """The ledger already holds this path, same size, finished after the file last changed: it
    was ingested and is skipped without hashing it again (a changed file is hashed and compared)."""
    from sqlalchemy import select

    from triage.store import IngestFile

    st = path.stat()
    with get_engine().connect() as conn:
        done = conn.execute(
            select(IngestFile.finished_at).where(
                IngestFile.source == str(path), IngestFile.size_bytes == st.st_size,
                IngestFile.status.in_(("ingested", "empty")),
            )
        ).scalars().all()  # fmt: skip
    return any(f is not None and f.timestamp() >= st.st_mtime for f in done)


def dispatch_folders(
    inbox: Path | str | None = None, today: dt.date | None = None
) -> list[tuple[dt.date, Path]]:
    """Today's night folder, and yesterday's until the night run has ingested it (a file landing
    at 23:59 is dispatched at once, not at 01:30)."""
    from sqlalchemy import select

    from triage.ingest.loader import local_today

    today = today or local_today()
    yesterday = today - dt.timedelta(days=1)
    out = []
    root = Path(inbox) if inbox else get_settings().inbox_dir
    if not root.is_dir():  # today's folder may not exist yet; the inbox itself must
        raise InputFileError(f"inbox {root} does not exist (set TRIAGE_INBOX_DIR or pass --inbox)")
    if (root / yesterday.isoformat()).is_dir():
        with get_engine().connect() as conn:
            night_done = conn.execute(
                select(PipelineRun.id).where(PipelineRun.night == yesterday, PipelineRun.stage == "ingest")
            ).first()
        if not night_done:
            out.append((yesterday, root / yesterday.isoformat()))
    out.append((today, night_inbox(today, inbox)))
    return out


def ingest_new_files(files: list[tuple[dt.date, Path]], settle_s: float) -> list[dict[str, Any]]:
    """Each file that is settled and not in the ledger, ingested for its night. A file that cannot
    be read (removed meanwhile, rejected) is reported with its name; the others still load."""
    from triage.ingest import ingest_file

    reports: list[dict[str, Any]] = []
    for night, f in files:
        try:
            if not settled(f, settle_s):
                reports.append(
                    {
                        "source": str(f),
                        "status": "waiting",
                        "message": f"changed less than {settle_s:g} s ago",
                    }
                )
                continue
            if _ledger_has(f):
                reports.append({"source": str(f), "status": "skipped"})
                continue
            before = f.stat()
            r = ingest_file(f, night=night)
            out = {**r.as_dict(), "ledger_id": r.ledger_id}
            after = f.stat() if f.exists() else None
            if after is None or (after.st_size, after.st_mtime) != (before.st_size, before.st_mtime):
                out["message"] = "; ".join(
                    filter(
                        None,
                        [out.get("message"), "the file changed while it was read: it is read again next run"],
                    )
                )
            reports.append(out)
        except (InputFileError, FileSchemaError, OSError) as exc:
            msg = str(exc) if str(f) in str(exc) else f"{f}: {type(exc).__name__}: {exc}"
            reports.append({"source": str(f), "status": "rejected", "message": msg})
    return reports


def _ledger_ids(nights: list[dt.date]) -> list[int]:
    from sqlalchemy import select

    from triage.store import IngestFile

    with get_engine().connect() as conn:
        return list(conn.execute(
            select(IngestFile.id).where(IngestFile.night.in_(nights), IngestFile.status == "ingested")
        ).scalars())  # fmt: skip


def _waiting_tickets(files: list[int]) -> bool:
    """Whether any ticket of these ledger files still lacks a prediction or a queue item."""
    from sqlalchemy import and_, exists, select

    from triage.store import Prediction, QueueItem, Ticket

    of_files = Ticket.source_file_id.in_(files)
    unclassified = ~exists().where(Prediction.ticket_id == Ticket.ticket_id)
    unrouted = ~exists().where(and_(QueueItem.ticket_id == Ticket.ticket_id, QueueItem.kind == "ticket"))
    with get_engine().connect() as conn:
        return (
            conn.execute(select(Ticket.ticket_id).where(of_files, unclassified | unrouted).limit(1)).first()
            is not None
        )


def dispatch_stage(inbox: Path | str | None = None, today: dt.date | None = None) -> dict[str, Any]:
    """The intra-day path: the inbox files that arrived since the last run are ingested, and just
    their tickets classified and routed with the current champion — the same ledger, quarantine and
    idempotency as the night, which then finds them done. Emergencies dispatched raise alerts."""
    from triage import notify

    folders = dispatch_folders(inbox, today)

    def run() -> dict[str, Any]:
        since = utcnow()
        files = [(night, f) for night, folder in folders if folder.exists() for f in expand_paths([folder])]
        reports = ingest_new_files(files, get_settings().intraday_settle_seconds)
        # the tickets of all of these nights' files: a run stopped after ingesting is finished by the next
        day_files = _ledger_ids([night for night, _ in folders])
        counts: dict[str, Any] = {"classified": 0, "to_street": 0, "to_centre": 0}
        if day_files and _waiting_tickets(day_files):  # else the model is not even loaded
            from triage.classify.batch import classify_pending
            from triage.route import route_pending

            c = classify_pending(source_files=day_files)
            r = route_pending(source_files=day_files)
            counts = {"classified": c["classified"], "model_version": c["model_version"],
                      "to_street": r["to_street"], "to_centre": r["to_centre"]}  # fmt: skip
        alerts = notify.emergencies_dispatched(since)
        by = lambda st: sum(r["status"] == st for r in reports)  # noqa: E731
        out = {
            "folders": [str(f) for _, f in folders],
            "files": len(files),
            "ingested_files": by("ingested") + by("empty"),
            "skipped_files": by("skipped"),
            "waiting_files": by("waiting"),
            "rejected_files": by("rejected"),
            "rows_new": sum(r.get("rows_new", 0) for r in reports),
            "rows_quarantined": sum(r.get("rows_quarantined", 0) for r in reports),
            **counts,
            "alerts": {**alerts, **notify_sweep()},
            "reports": [r for r in reports if r["status"] != "skipped"],
        }
        # PostgreSQL, after the dispatch: merge the search entries of the tickets inserted since the
        # last run (Open311) out of the GIN pending list, which may hold 256 MB (migration 0016)
        with get_engine().begin() as conn:
            out["search_pages_merged"] = clean_search_index(conn)
        return out

    return record_stage(folders[-1][0], "dispatch", -1, run)


def run_nightly(
    night: dt.date,
    inbox: Path | str | None = None,
    progress: Callable[[str, dict], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """All stages in order, in this process (the CLI's path; the DAG runs them as tasks), holding
    the night's lock throughout (``notify`` hears why it waits, if another run holds it)."""
    from triage.store import require_schema
    from triage.store.db import require_writable
    from triage.store.locks import night_lock

    require_writable()  # first: even reading the schema revision opens SQLite's -shm file
    require_schema()
    out: dict[str, Any] = {"night": night.isoformat()}
    with night_lock(night, "run-nightly", notify=notify):
        for name, fn in (
            ("ingest", lambda: ingest_stage(night, inbox)),
            ("classify", lambda: classify_stage(night)),
            ("route", lambda: route_stage(night)),
            ("hotspots", lambda: hotspots_stage(night)),
            ("proactive", lambda: proactive_stage(night)),
            ("report", lambda: report_stage(night)),
        ):
            out[name] = fn()
            if progress:
                progress(name, out[name])
    return out


def night_status(night: dt.date) -> dict[str, Any]:
    """What the database holds for a night: files, rows, tickets by state, queues, the report."""
    from sqlalchemy import func, select

    from triage.store import IngestFile, Prediction, Quarantine, QueueItem, Ticket

    engine = get_engine()
    with engine.connect() as conn:
        files = conn.execute(
            select(IngestFile.source, IngestFile.status, IngestFile.rows_read, IngestFile.rows_new,
                   IngestFile.rows_unchanged, IngestFile.rows_quarantined, IngestFile.message)
            .where(IngestFile.night == night, IngestFile.status != "superseded")  # a fixed file's aborted try
            .order_by(IngestFile.id)
        ).mappings().all()  # fmt: skip
        base = select(func.count()).select_from(Ticket).where(Ticket.night == night)
        n_tickets = conn.execute(base).scalar_one()
        n_classified = conn.execute(
            base.join(Prediction, Prediction.ticket_id == Ticket.ticket_id)
        ).scalar_one()
        n_review = conn.execute(
            base.join(Prediction, Prediction.ticket_id == Ticket.ticket_id).where(Prediction.needs_review)
        ).scalar_one()
        queues = dict(
            conn.execute(
                select(QueueItem.queue, func.count())
                .join(Ticket, Ticket.ticket_id == QueueItem.ticket_id)
                .where(Ticket.night == night, QueueItem.kind == "ticket")
                .group_by(QueueItem.queue)
            ).all()
        )
        no_deadline = conn.execute(
            select(func.count()).select_from(QueueItem).join(Ticket, Ticket.ticket_id == QueueItem.ticket_id)
            .where(Ticket.night == night, QueueItem.due_at.is_(None))
        ).scalar_one()  # fmt: skip
        quarantine = dict(
            conn.execute(
                select(Quarantine.reason_code, func.count())
                .where(Quarantine.night == night)
                .group_by(Quarantine.reason_code)
            ).all()
        )
        top_streets = conn.execute(
            select(QueueItem.street_code, func.count().label("n"))
            .join(Ticket, Ticket.ticket_id == QueueItem.ticket_id)
            .where(Ticket.night == night, QueueItem.queue == "street")
            .group_by(QueueItem.street_code).order_by(func.count().desc()).limit(5)
        ).all()  # fmt: skip
    hotspots = _hotspot_status(engine, night)
    from triage.store import PipelineRun

    with engine.connect() as conn:  # the report file holds no time (re-runs are identical): the ledger does
        report_at = conn.execute(
            select(PipelineRun.finished_at).where(PipelineRun.night == night, PipelineRun.stage == "report")
        ).scalar()
    rows_read = sum(f["rows_read"] for f in files)
    upserted = sum(f["rows_new"] + f["rows_unchanged"] for f in files)
    report = get_settings().reports_dir / f"nightly-{night.isoformat()}.html"
    routed = sum(queues.values())
    return {
        "night": night.isoformat(),
        "files": [dict(f) for f in files],
        "rows_read": rows_read,
        "rows_upserted": upserted,
        "rows_quarantined": sum(quarantine.values()),
        "quarantine": quarantine,
        "tickets": n_tickets,
        "classified": n_classified,
        "needs_review": n_review,
        "to_street": queues.get("street", 0),
        "to_centre": queues.get("centre", 0),
        "without_deadline": no_deadline,
        "unaccounted": n_tickets - routed,
        "top_streets": [(s, n) for s, n in top_streets],
        "report": str(report) if report.exists() else None,
        "report_written_at": report_at,
        **hotspots,
    }


def _hotspot_status(engine: Any, night: dt.date) -> dict[str, Any]:
    """Significant surges (street and district level), events stored and open proactive tasks —
    counted as the report counts them (all significant signals of the night, all its events)."""
    from sqlalchemy import func, select

    from triage.store.models import HotspotEvent, HotspotSignal, QueueItem
    from triage.workflow import load_workflow

    with engine.connect() as conn:
        surges = conn.execute(
            select(HotspotSignal.unit_code, HotspotSignal.category, HotspotSignal.observed, HotspotSignal.expected)
            .where(HotspotSignal.night == night, HotspotSignal.significant)
            .order_by(HotspotSignal.q_value, HotspotSignal.observed.desc())
        ).all()  # fmt: skip
        levels = dict(
            conn.execute(
                select(HotspotSignal.level, func.count())
                .where(HotspotSignal.night == night, HotspotSignal.significant)
                .group_by(HotspotSignal.level)
            ).all()
        )
        n_events = conn.execute(
            select(func.count()).select_from(HotspotEvent).where(HotspotEvent.night == night)
        ).scalar_one()
        open_tasks = conn.execute(
            select(func.count()).select_from(QueueItem)
            .where(QueueItem.kind == "proactive", QueueItem.status.in_(load_workflow().open_statuses))
        ).scalar_one()  # fmt: skip
    return {
        "surges": [(u, c, o, round(e, 1)) for u, c, o, e in surges],
        "surges_by_level": levels,
        "events": n_events,
        "open_proactive_tasks": open_tasks,
    }
