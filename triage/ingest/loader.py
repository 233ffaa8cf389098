"""Load ticket files into the database: validate, quarantine, upsert idempotently, keep a ledger.

Rules (also in docs/architecture.md):

- A file is identified by its SHA-256. A file already in the ledger as ingested is skipped, so
  re-running a night changes nothing. A run cut off half-way is simply run again: every write is
  keyed (ticket_id; file + row for quarantine), so it converges.
- A required column missing → the whole file is rejected before any row is written.
- Inside one file, a repeated ticket_id keeps the first row; later rows are quarantined
  (``duplicate_in_file``, naming the kept row).
- Across files, the same ticket_id with the same content counts as unchanged; with different
  content it is quarantined (``conflicting_duplicate``, naming where the stored version came
  from) — a dispatched ticket is never silently rewritten.
- For every file: rows read = tickets upserted (new + unchanged) + rows quarantined.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from triage.config import Settings, get_settings
from triage.ingest.readers import (
    FORMATS,
    InputFileError,
    RawBatch,
    detect_encoding,
    detect_format,
    read_batches,
)
from triage.ingest.schema import CleanRow, FileSchemaError, Rejection, map_columns, masked_raw, validate_row
from triage.store import IngestFile, Quarantine, Ticket, get_engine, insert_ignore
from triage.store.models import utcnow

_TICKET_COLS = [c.name for c in Ticket.__table__.columns]
_LOOKUP_CHUNK = 900  # stays under SQLite's bound-parameter limit on any build
_PARALLEL_MIN_BYTES = 8 << 20  # smaller files are cleaned in the task itself (a process start costs ~1 s)


@dataclass
class IngestReport:
    source: str
    sha256: str = ""
    status: str = "pending"  # ingested | skipped | rejected | empty
    file_format: str = ""
    encoding: str | None = None
    rows_read: int = 0
    rows_new: int = 0
    rows_unchanged: int = 0
    rows_quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)
    ignored_columns: list[str] = field(default_factory=list)
    message: str | None = None
    seconds: float = 0.0
    ledger_id: int | None = None

    @property
    def rows_upserted(self) -> int:
        return self.rows_new + self.rows_unchanged

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_upserted + self.rows_quarantined

    def summary(self) -> str:
        if self.status == "skipped":
            return f"{self.source}: already ingested (ledger #{self.ledger_id}), nothing to do"
        if self.status == "rejected":
            return f"{self.source}: REJECTED: {self.message}"
        text = (
            f"{self.source}: {self.rows_read} rows read = {self.rows_upserted} tickets upserted "
            f"({self.rows_new} new, {self.rows_unchanged} unchanged) + {self.rows_quarantined} quarantined"
        )
        if self.reasons:
            text += " [" + ", ".join(f"{k}: {v}" for k, v in self.reasons.most_common()) + "]"
        if self.warnings:
            text += " warnings: " + ", ".join(f"{k}: {v}" for k, v in self.warnings.most_common())
        if self.message:
            text += f" ({self.message})"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "rows_read": self.rows_read,
            "rows_new": self.rows_new,
            "rows_unchanged": self.rows_unchanged,
            "rows_quarantined": self.rows_quarantined,
            "reasons": dict(self.reasons),
            "warnings": dict(self.warnings),
            "message": self.message,
            "seconds": round(self.seconds, 3),
        }


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given, and the supported files inside any directory (sorted, not recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in FORMATS))
        else:
            out.append(p)
    return out


def local_today(settings: Settings | None = None) -> dt.date:
    return dt.datetime.now((settings or get_settings()).tz).date()


def ingest_file(
    path: Path | str, night: dt.date | None = None, settings: Settings | None = None
) -> IngestReport:
    """Ingest one file. Raises InputFileError / FileSchemaError for files that cannot be read at
    all (after recording the rejection in the ledger when the file exists)."""
    s = settings or get_settings()
    path = Path(path)
    night = night or local_today(s)
    report = IngestReport(source=str(path))
    t0 = time.perf_counter()
    if not path.exists():
        raise InputFileError(f"{path}: no such file")
    if not path.is_file():
        raise InputFileError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
        report.file_format = detect_format(path)
        report.sha256 = file_sha256(path)
    except PermissionError:
        raise InputFileError(f"{path}: permission denied; check the file's owner and mode") from None
    engine = get_engine(s)

    with engine.begin() as conn:
        existing = conn.execute(
            select(IngestFile.id, IngestFile.status).where(IngestFile.sha256 == report.sha256)
        ).first()
        if existing and existing.status in ("ingested", "empty"):
            report.status, report.ledger_id = "skipped", existing.id
            report.seconds = time.perf_counter() - t0
            return report

    try:
        if size > s.max_file_bytes:
            raise InputFileError(
                f"{path}: {size:,} bytes is over the {s.max_file_bytes:,}-byte limit (TRIAGE_MAX_FILE_BYTES)"
            )
        if report.file_format in ("csv", "tsv", "jsonl"):
            report.encoding = detect_encoding(path)
        batches = read_batches(path, report.file_format, report.encoding, s.batch_rows)
        first = next(batches)
        mapping, report.ignored_columns = map_columns(first.header, str(path))
    except (InputFileError, FileSchemaError) as exc:
        _record_rejection(engine, report, night, size, str(exc))
        raise

    ledger_id = _open_ledger(engine, report, night, size)
    report.ledger_id = ledger_id
    seen_in_file: dict[str, int] = {}
    now = dt.datetime.now(dt.UTC)

    def all_batches() -> Iterator[RawBatch]:
        yield first
        yield from batches

    processes = s.ingest_processes if size >= _PARALLEL_MIN_BYTES else 1
    try:
        for batch, results in _validated(all_batches(), mapping, now, s, processes):
            with engine.begin() as conn:
                _load_batch(conn, batch, results, mapping, report, ledger_id, night, seen_in_file, now)
    except (InputFileError, FileSchemaError) as exc:  # e.g. a reader error deep in the file
        report.message = str(exc)
        _close_ledger(engine, report, "rejected")
        raise

    report.status = "ingested" if report.rows_read else "empty"
    if not report.rows_read:
        report.message = "the file has a header but no data rows"
    if report.ignored_columns:
        extra = f"ignored columns: {', '.join(report.ignored_columns)}"
        report.message = f"{report.message}; {extra}" if report.message else extra
    report.seconds = time.perf_counter() - t0
    _close_ledger(engine, report, report.status)
    return report


def _validate_rows(
    rows: list[tuple[int, list[Any]]], mapping: dict[str, int], now: dt.datetime, s: Settings
) -> list[CleanRow | Rejection]:
    return [
        validate_row(cells, mapping, tz=s.tz, now=now, max_text_chars=s.max_text_chars, salt=s.pii_salt)
        for _, cells in rows
    ]


def _validate_packed(
    rows: list[tuple[int, list[Any]]], mapping: dict[str, int], now: dt.datetime, s: Settings
) -> tuple[tuple[str, ...], list[Rejection | tuple[tuple[Any, ...], list[str]]]]:
    """``_validate_rows`` in a worker process. Clean rows travel back as tuples of values plus the
    field names once: unpickling 50k dicts cost the writing process ~1 s per batch, tuples ~0.3 s."""
    fields: tuple[str, ...] = ()
    packed: list[Rejection | tuple[tuple[Any, ...], list[str]]] = []
    for result in _validate_rows(rows, mapping, now, s):
        if isinstance(result, CleanRow):
            fields = fields or tuple(result.values)
            packed.append((tuple(result.values.values()), result.warnings))
        else:
            packed.append(result)
    return fields, packed


def _unpack(done: tuple[tuple[str, ...], list[Any]]) -> list[CleanRow | Rejection]:
    fields, packed = done
    return [
        r if isinstance(r, Rejection) else CleanRow(dict(zip(fields, r[0], strict=True)), r[1])
        for r in packed
    ]


def _validated(
    batches: Iterator[RawBatch], mapping: dict[str, int], now: dt.datetime, s: Settings, processes: int
) -> Iterator[tuple[RawBatch, list[CleanRow | Rejection]]]:
    """Each batch with its rows validated and cleaned (normalisation and PII masking are ~70 % of
    ingest time). With several processes, a batch's rows are cleaned in parallel while the
    previous batch is being written, so the writes (one writer, in order) overlap the cleaning."""
    if processes > 1 and mp.current_process().daemon:
        processes = 1  # a daemonic process (e.g. some executors' task processes) may not start children
    if processes <= 1:
        for batch in batches:
            yield batch, _validate_rows(batch.rows, mapping, now, s)
        return
    # spawn: a fresh interpreter, safe inside an Airflow task process whatever threads it runs
    with ProcessPoolExecutor(processes, mp_context=mp.get_context("spawn")) as pool:

        def submit(batch: RawBatch) -> list[Future]:
            step = max(1, -(-len(batch.rows) // (processes * 2)))
            return [
                pool.submit(_validate_packed, batch.rows[i : i + step], mapping, now, s)
                for i in range(0, len(batch.rows), step)
            ]

        pending: tuple[RawBatch, list[Future]] | None = None
        for batch in batches:
            current = (batch, submit(batch))
            if pending is not None:
                yield pending[0], [r for f in pending[1] for r in _unpack(f.result())]
            pending = current
        if pending is not None:
            yield pending[0], [r for f in pending[1] for r in _unpack(f.result())]


def _load_batch(
    conn: Connection,
    batch: RawBatch,
    results: list[CleanRow | Rejection],
    mapping: dict[str, int],
    report: IngestReport,
    ledger_id: int,
    night: dt.date,
    seen_in_file: dict[str, int],
    now: dt.datetime,
) -> None:
    quarantine: list[dict[str, Any]] = []
    source = report.source

    def reject(
        row_number: int, code: str, fld: str | None, msg: str, raw: dict, tid: str | None = None
    ) -> None:
        report.reasons[code] += 1
        quarantine.append(
            {
                "source_sha256": report.sha256,
                "source": source,
                "row_number": row_number,
                "ticket_id": tid,
                "field": fld,
                "reason_code": code,
                "reason": f"{source}, row {row_number}" + (f", field '{fld}'" if fld else "") + f": {msg}",
                "raw": raw,
                "night": night,
                "created_at": now,
            }
        )

    for b in batch.broken:
        report.rows_read += 1
        reject(b.row_number, "broken_row", None, b.reason, {"_line": b.raw[:2000]})

    candidates: list[tuple[int, dict[str, Any]]] = []
    for (row_number, cells), result in zip(batch.rows, results, strict=True):
        report.rows_read += 1
        if isinstance(result, Rejection):
            # keep the row's id where it has a usable one, so the quarantine can be looked up by it
            raw_id = cells[mapping["ticket_id"]] if mapping["ticket_id"] < len(cells) else None
            tid = str(raw_id).strip()[:256] if raw_id is not None and str(raw_id).strip() else None
            reject(
                row_number, result.code, result.field, result.message, masked_raw(batch.header, cells), tid
            )
            continue
        assert isinstance(result, CleanRow)
        report.warnings.update(result.warnings)
        tid = result.values["ticket_id"]
        if tid in seen_in_file and seen_in_file[tid] != row_number:
            reject(
                row_number, "duplicate_in_file", "ticket_id",
                f"ticket_id {tid} already appears in row {seen_in_file[tid]} of this file (the first row is kept)",
                masked_raw(batch.header, cells), tid,
            )  # fmt: skip
            continue
        seen_in_file[tid] = row_number
        candidates.append((row_number, result.values))

    stored = _existing(conn, [v["ticket_id"] for _, v in candidates])
    new_rows: list[dict[str, Any]] = []
    for row_number, values in candidates:
        tid = values["ticket_id"]
        prev = stored.get(tid)
        if prev is None:
            values.update(night=night, source_file_id=ledger_id, source_row=row_number, ingested_at=now)
            new_rows.append(values)
        elif prev[0] == values["content_hash"]:
            report.rows_unchanged += 1
        else:
            where = f"file #{prev[1]} row {prev[2]}" if prev[1] else "an earlier load"
            reject(
                row_number, "conflicting_duplicate", "ticket_id",
                f"ticket_id {tid} was already ingested from {where} with different content; "
                "the stored ticket is kept (correct it in the source system or re-issue under a new id)",
                {"ticket_id": tid}, tid,
            )  # fmt: skip

    if new_rows:
        rows = [{c: v.get(c) for c in _TICKET_COLS} for v in new_rows]
        inserted = insert_ignore(conn, Ticket.__table__, rows, ["ticket_id"])
        report.rows_new += inserted
        if inserted < len(rows):  # another writer stored some of these ids between lookup and insert
            _settle_lost_races(conn, rows, ledger_id, report, reject)
    if quarantine:
        insert_ignore(conn, Quarantine.__table__, quarantine, ["source_sha256", "row_number"])
        report.rows_quarantined += len(quarantine)


def _settle_lost_races(
    conn: Connection, rows: list[dict[str, Any]], ledger_id: int, report: IngestReport, reject: Any
) -> None:
    """Rows whose insert was ignored because a concurrent load stored the id first: identical
    content is unchanged, different content is a conflicting duplicate (never silently lost)."""
    stored = _existing(conn, [r["ticket_id"] for r in rows])
    for r in rows:
        h, file_id, row = stored[r["ticket_id"]]
        if (file_id, row) == (ledger_id, r["source_row"]):
            continue  # ours
        if h == r["content_hash"]:
            report.rows_unchanged += 1
        else:
            reject(
                r["source_row"], "conflicting_duplicate", "ticket_id",
                f"ticket_id {r['ticket_id']} was stored by a concurrent load (file #{file_id} row {row}) "
                "with different content; the stored ticket is kept",
                {"ticket_id": r["ticket_id"]}, r["ticket_id"],
            )  # fmt: skip


def _existing(conn: Connection, ids: list[str]) -> dict[str, tuple[str, int | None, int | None]]:
    out: dict[str, tuple[str, int | None, int | None]] = {}
    for i in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[i : i + _LOOKUP_CHUNK]
        q = select(Ticket.ticket_id, Ticket.content_hash, Ticket.source_file_id, Ticket.source_row).where(
            Ticket.ticket_id.in_(chunk)
        )
        for tid, h, f, r in conn.execute(q):
            out[tid] = (h, f, r)
    return out


def _open_ledger(engine: Any, report: IngestReport, night: dt.date, size: int) -> int:
    values = {
        "source": report.source,
        "size_bytes": size,
        "file_format": report.file_format,
        "encoding": report.encoding,
        "night": night,
        "status": "running",
        "started_at": utcnow(),
        "rows_read": 0,
        "rows_new": 0,
        "rows_unchanged": 0,
        "rows_quarantined": 0,
        "warnings": {},
        "message": None,
    }
    with engine.begin() as conn:
        row = conn.execute(select(IngestFile.id).where(IngestFile.sha256 == report.sha256)).first()
        if row:  # an interrupted or previously rejected attempt: reuse its ledger entry
            conn.execute(update(IngestFile).where(IngestFile.id == row[0]).values(**values))
            return row[0]
        return conn.execute(
            IngestFile.__table__.insert().values(sha256=report.sha256, **values)
        ).inserted_primary_key[0]


def _close_ledger(engine: Any, report: IngestReport, status: str) -> None:
    report.status = status
    with engine.begin() as conn:
        conn.execute(
            update(IngestFile)
            .where(IngestFile.id == report.ledger_id)
            .values(
                status=status,
                rows_read=report.rows_read,
                rows_new=report.rows_new,
                rows_unchanged=report.rows_unchanged,
                rows_quarantined=report.rows_quarantined,
                warnings={"rows": dict(report.warnings), "quarantined": dict(report.reasons)},
                message=report.message,
                finished_at=utcnow(),
            )
        )


def _record_rejection(engine: Any, report: IngestReport, night: dt.date, size: int, message: str) -> None:
    """A rejected file gets a ledger entry (status rejected, the reason) but no ticket or quarantine row."""
    report.status, report.message = "rejected", message
    report.ledger_id = _open_ledger(engine, report, night, size)
    _close_ledger(engine, report, "rejected")
