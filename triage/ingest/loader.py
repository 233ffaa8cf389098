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
- For every file: rows read = tickets upserted (new + unchanged) + rows quarantined. A row that
  cannot even be validated (an unexpected error) is quarantined (``invalid_row``), not the night.
- Every sheet of a workbook is read, each with its own header; rows of a sheet without the
  required columns are quarantined (``unmapped_columns``) and the file's message names the sheet.
- A new version of a path for the same night (the file was corrected and delivered again: a new
  checksum) marks the path's earlier entries of that night — unfinished, rejected or ingested —
  ``superseded`` and removes their quarantine rows; their tickets stay and are counted (and taken
  over) by the new version as unchanged. The night accounts for the latest version of each file:
  rows read = tickets upserted + quarantined, over the files that count.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import multiprocessing as mp
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Connection

from triage.config import Settings, get_settings
from triage.ingest.readers import (
    FORMATS,
    SHEET_ROW_BASE,
    BadCell,
    InputFileError,
    RawBatch,
    detect_encoding,
    detect_format,
    read_batches,
)
from triage.ingest.schema import (
    CleanRow,
    FileSchemaError,
    Rejection,
    map_columns,
    masked_raw,
    masked_text,
    validate_row,
)
from triage.store import (
    IngestFile,
    Quarantine,
    Ticket,
    clean_search_index,
    get_engine,
    insert_ignore,
    search_index_in_bulk,
)
from triage.store.models import utcnow

_TICKET_COLS = [c.name for c in Ticket.__table__.columns]
_LOOKUP_CHUNK = 900  # stays under SQLite's bound-parameter limit on any build
_PARALLEL_MIN_BYTES = 8 << 20  # smaller files are cleaned in the task itself (a process start costs ~1 s)
_NIGHT_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
log = logging.getLogger(__name__)


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
    superseded: list[int] = field(default_factory=list)  # earlier versions of this file this one replaces

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


class FileChangedError(InputFileError):
    """The file's size or time changed while it was read (still being written, truncated, replaced):
    what was read is stored, the ledger says ``failed``, and the next run reads it again."""


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return _sha256_of(fh)


def _sha256_of(fh: Any) -> str:
    fh.seek(0)
    h = hashlib.sha256()
    while chunk := fh.read(1 << 22):
        h.update(chunk)
    return h.hexdigest()


def _unhashed_key(path: Path, st: os.stat_result) -> str:
    """The ledger key of a file refused without reading it (too big, unsupported type): its path,
    size and time, so the same refused file is one ledger row however often it is offered."""
    return hashlib.sha256(f"unread:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()


def _read_whole(path: Path, fmt: str) -> bool:
    """Formats whose reader holds the whole file in memory: workbooks and JSON arrays."""
    if fmt == "xlsx":
        return True
    if fmt != "jsonl":
        return False
    with open(path, "rb") as fh:
        # any byte-order mark and UTF-16's zero bytes aside, the first character
        head = fh.read(4096).replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf\xff\xfe \t\r\n")
    return head.startswith(b"[")


def _changed_while_read(path: Path, fh: Any, before: os.stat_result) -> str | None:
    """Why the file read is not the file hashed, or None. Size and modification time of the open
    file, and the path still naming the same file (a file deleted while read is fine: its open
    handle kept every byte)."""
    now = os.fstat(fh.fileno())
    if (now.st_size, now.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        change = (
            f"{before.st_size:,} → {now.st_size:,} bytes" if now.st_size != before.st_size else "rewritten"
        )
    else:
        try:
            current = os.stat(path)
        except FileNotFoundError:
            return None
        if (current.st_dev, current.st_ino) == (before.st_dev, before.st_ino):
            return None
        change = "replaced by another file"
    return (
        f"{path}: the file changed while it was read ({change}); the rows read so far are kept and "
        "the file is marked failed: run the night again once the file is complete"
    )


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given, and every file inside a directory and its subfolders (sorted), supported or
    not: an unsupported file is rejected in the ledger rather than silently left behind. Hidden
    files (.DS_Store, ~$ Office lock files) and other nights' folders (YYYY-MM-DD) are passed
    over with a log line."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(_files_under(p))
        else:
            out.append(p)
    return out


def _files_under(folder: Path) -> list[Path]:
    out: list[Path] = []
    for f in sorted(folder.iterdir()):
        if f.name.startswith((".", "~$")):
            log.info("ingest: ignoring hidden or lock file %s", f)
        elif f.is_dir():
            if _NIGHT_DIR.match(f.name):  # a flat inbox holding dated folders: those are other nights
                log.info("ingest: not reading %s: a folder of another night", f)
            else:
                out.extend(_files_under(f))
        elif f.is_file():
            if f.suffix.lower() not in FORMATS:
                log.warning("ingest: %s is not a supported file type; it is recorded as rejected", f)
            out.append(f)
        else:
            log.warning("ingest: ignoring %s: not a regular file", f)
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
    engine = get_engine(s)
    try:
        fd = os.open(path, os.O_RDONLY)
    except PermissionError:
        raise InputFileError(f"{path}: permission denied; check the file's owner and mode") from None
    with open(fd, "rb") as fh:  # held open while the file is read: its size and time are checked at the end
        return _ingest_open_file(path, fh, night, s, engine, report, t0)


def _ingest_open_file(
    path: Path, fh: Any, night: dt.date, s: Settings, engine: Any, report: IngestReport, t0: float
) -> IngestReport:
    before = os.fstat(fh.fileno())
    size = before.st_size
    try:
        report.file_format = detect_format(path)
    except InputFileError as exc:  # recorded, so a file left in the inbox is never just ignored
        report.file_format = "unsupported"
        report.sha256 = _unhashed_key(path, before)
        _record_rejection(engine, report, night, size, str(exc))
        raise
    limit = s.max_workbook_bytes if _read_whole(path, report.file_format) else s.max_file_bytes
    if size > limit:  # refused by its size alone: a file too big for a worker is never read or hashed
        setting = "TRIAGE_MAX_WORKBOOK_BYTES" if limit == s.max_workbook_bytes else "TRIAGE_MAX_FILE_BYTES"
        message = f"{path}: {size:,} bytes is over the {limit:,}-byte limit ({setting}); split the export"
        report.sha256 = _unhashed_key(path, before)
        _record_rejection(engine, report, night, size, message)
        raise InputFileError(message)
    report.sha256 = _sha256_of(fh)

    with engine.begin() as conn:
        existing = conn.execute(
            select(IngestFile.id, IngestFile.status).where(IngestFile.sha256 == report.sha256)
        ).first()
        if existing and existing.status in ("ingested", "empty"):
            report.status, report.ledger_id = "skipped", existing.id
            report.seconds = time.perf_counter() - t0
            return report

    try:
        if report.file_format in ("csv", "tsv", "jsonl"):
            report.encoding = detect_encoding(path)
        batches = read_batches(path, report.file_format, report.encoding, s.batch_rows, s.max_row_bytes)
        mappings, head = _first_mapping(batches, str(path))
    except (InputFileError, FileSchemaError) as exc:
        changed = _changed_while_read(path, fh, before)
        _record_rejection(
            engine, report, night, size, changed or str(exc), "failed" if changed else "rejected"
        )
        if changed:
            raise FileChangedError(changed) from None
        raise

    ledger_id = _open_ledger(engine, report, night, size)
    report.ledger_id = ledger_id
    seen_in_file: dict[str, int] = {}
    now = dt.datetime.now(dt.UTC)

    def all_batches() -> Iterator[RawBatch]:
        yield from head
        yield from batches

    processes = s.ingest_processes if size >= _PARALLEL_MIN_BYTES else 1
    try:
        for batch, mapping, results in _validated(all_batches(), mappings.of, now, s, processes):
            with engine.begin() as conn:
                _load_batch(conn, batch, results, mapping, report, ledger_id, night, seen_in_file, now)
    except (InputFileError, FileSchemaError) as exc:  # e.g. a reader error deep in the file
        changed = _changed_while_read(path, fh, before)  # a cut mid-character is a change, not bad bytes
        report.message = changed or str(exc)
        _close_ledger(engine, report, "failed" if changed else "rejected")
        if changed:
            raise FileChangedError(changed) from None
        raise
    except BaseException as exc:  # the database went away, the task was stopped…: say so, re-raise
        report.message = f"failed after {report.rows_read} rows: {type(exc).__name__}: {str(exc)[:300]}"
        with contextlib.suppress(Exception):
            _close_ledger(engine, report, "failed")
        raise

    if report.rows_new:  # PostgreSQL: merge the search index's pending list now (search_index_in_bulk)
        with engine.begin() as conn:
            clean_search_index(conn)
    changed = _changed_while_read(path, fh, before)
    if changed:  # the rows read so far are stored; the ledger must not call the file done
        report.message = changed
        report.seconds = time.perf_counter() - t0
        _close_ledger(engine, report, "failed")
        raise FileChangedError(changed)
    report.status = "ingested" if report.rows_read else "empty"
    report.ignored_columns = mappings.ignored
    notes = (["the file has a header but no data rows"] if not report.rows_read else []) + mappings.notes
    if report.superseded:
        versions = ", ".join(f"#{i}" for i in report.superseded)
        notes.append(f"supersedes earlier versions of this file (ledger {versions})")
        if gone := _left_behind(engine, report.superseded, seen_in_file):
            notes.append(f"{gone} ticket(s) stored from them are not in this version and are kept")
    if report.ignored_columns:
        notes.append(f"ignored columns: {', '.join(report.ignored_columns)}")
    report.message = "; ".join(notes) or None
    report.seconds = time.perf_counter() - t0
    _close_ledger(engine, report, report.status)
    return report


class _Mappings:
    """Column mapping per header. The first batch's header must map (else the file is rejected
    before anything is written); a later header — another workbook sheet, JSON keys first seen
    after the first batch — is mapped on its own, and if it cannot be, its rows are quarantined
    with the reason (a note in the file's message names it)."""

    def __init__(self, first: RawBatch, source: str) -> None:
        self.source = source
        self.ignored: list[str] = []
        self.notes: list[str] = []
        self._by_header: dict[tuple[str, ...], dict[str, int] | Rejection] = {}
        label = f"{source}, {self._label(first)}" if first.sheet is not None else source
        mapping, ignored = map_columns(first.header, label)  # FileSchemaError rejects the file
        self._remember(first, mapping, ignored)

    def _label(self, batch: RawBatch) -> str:
        return f"sheet {batch.sheet!r}" if batch.sheet is not None else self.source

    def _remember(self, batch: RawBatch, mapping: dict[str, int] | Rejection, ignored: list[str]) -> None:
        self._by_header[tuple(batch.header)] = mapping
        self.ignored.extend(c for c in ignored if c not in self.ignored)

    def of(self, batch: RawBatch) -> dict[str, int] | Rejection:
        key = tuple(batch.header)
        if key not in self._by_header:
            try:
                mapping, ignored = map_columns(batch.header, self._label(batch))
            except FileSchemaError as exc:
                self.notes.append(f"rows quarantined (unmapped_columns): {exc}")
                self._remember(batch, Rejection("unmapped_columns", None, str(exc)), [])
            else:
                self._remember(batch, mapping, ignored)
        return self._by_header[key]


def _first_mapping(batches: Iterator[RawBatch], source: str) -> tuple[_Mappings, list[RawBatch]]:
    """The file's column mapping, and the batches read to find it. A workbook may open with a cover
    or notes sheet: the first sheet whose header maps sets the file's mapping, and the sheets before
    it have their rows quarantined (unmapped_columns) like any later unmappable sheet. A file none of
    whose headers map is rejected with the first one's reason."""
    head = [next(batches)]
    try:
        return _Mappings(head[0], source), head
    except FileSchemaError as exc:
        if head[0].sheet is None:
            raise
        first_error = exc
    for batch in batches:
        head.append(batch)
        try:
            return _Mappings(batch, source), head
        except FileSchemaError:
            continue
    raise first_error


def _validate_rows(
    rows: list[tuple[int, list[Any]]], mapping: dict[str, int], now: dt.datetime, s: Settings
) -> list[CleanRow | Rejection]:
    return [_validate_one(cells, mapping, now, s) for _, cells in rows]


def _validate_one(
    cells: list[Any], mapping: dict[str, int], now: dt.datetime, s: Settings
) -> CleanRow | Rejection:
    try:
        return validate_row(
            cells, mapping, tz=s.tz, now=now, max_text_chars=s.max_text_chars, salt=s.pii_salt
        )
    except Exception as exc:  # last resort: one unforeseen value costs its row, not the night
        detail = masked_text(f"{type(exc).__name__}: {exc}", 300)
        return Rejection("invalid_row", None, f"the row could not be validated ({detail})")


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
    batches: Iterator[RawBatch],
    mapping_of: Callable[[RawBatch], dict[str, int] | Rejection],
    now: dt.datetime,
    s: Settings,
    processes: int,
) -> Iterator[tuple[RawBatch, dict[str, int], list[CleanRow | Rejection]]]:
    """Each batch with its column mapping and its rows validated and cleaned (normalisation and
    PII masking are ~70 % of ingest time). With several processes, a batch's rows are cleaned in
    parallel while the previous batch is being written, so the writes (one writer, in order)
    overlap the cleaning. A batch whose header cannot be mapped has every row rejected."""
    if processes > 1 and mp.current_process().daemon:
        processes = 1  # a daemonic process (e.g. some executors' task processes) may not start children
    if processes <= 1:
        for batch in batches:
            mapping = mapping_of(batch)
            if isinstance(mapping, Rejection):
                yield batch, {}, [mapping] * len(batch.rows)
            else:
                yield batch, mapping, _validate_rows(batch.rows, mapping, now, s)
        return
    # spawn: a fresh interpreter, safe inside an Airflow task process whatever threads it runs
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(
        processes, mp_context=ctx, initializer=_die_with_parent, initargs=(os.getpid(),)
    ) as pool:

        def submit(batch: RawBatch, mapping: dict[str, int]) -> list[Future]:
            step = max(1, -(-len(batch.rows) // (processes * 2)))
            return [
                pool.submit(_validate_packed, batch.rows[i : i + step], mapping, now, s)
                for i in range(0, len(batch.rows), step)
            ]

        def results(futures: list[Future] | Rejection, n: int) -> list[CleanRow | Rejection]:
            if isinstance(futures, Rejection):
                return [futures] * n
            return [r for f in futures for r in _unpack(f.result())]

        pending: tuple[RawBatch, dict[str, int], list[Future] | Rejection] | None = None
        for batch in batches:
            mapping = mapping_of(batch)
            if isinstance(mapping, Rejection):
                current = (batch, {}, mapping)
            else:
                current = (batch, mapping, submit(batch, mapping))
            if pending is not None:
                yield pending[0], pending[1], results(pending[2], len(pending[0].rows))
            pending = current
        if pending is not None:
            yield pending[0], pending[1], results(pending[2], len(pending[0].rows))


def _die_with_parent(parent: int) -> None:
    """Worker initializer: a worker exits when the ingest that started it is gone (killed with
    SIGKILL it cannot stop its pool, and orphans would live on under PID 1). A watchdog thread,
    not PR_SET_PDEATHSIG: that fires when the *thread* that started the worker ends."""
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


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
    where = f"{source}, sheet {batch.sheet!r}" if batch.sheet is not None else source

    def reject(
        row_number: int, code: str, fld: str | None, msg: str, raw: dict, tid: str | None = None
    ) -> None:
        report.reasons[code] += 1
        reason = (
            f"{where}, row {row_number - batch.row_base}" + (f", field '{fld}'" if fld else "") + f": {msg}"
        )
        quarantine.append(
            {
                "source_sha256": report.sha256,
                "source": source,
                "row_number": row_number,
                "ticket_id": _storable(tid) if tid else tid,
                "field": fld,
                "reason_code": code,
                "reason": _storable(reason),
                "raw": {_storable(k): _storable(v) for k, v in raw.items()},
                "night": night,
                "created_at": now,
            }
        )

    for b in batch.broken:
        report.rows_read += 1
        reject(b.row_number, b.code, None, b.reason, {"_line": masked_text(b.raw)})

    id_index = mapping.get("ticket_id")
    candidates: list[tuple[int, dict[str, Any]]] = []
    for (row_number, cells), result in zip(batch.rows, results, strict=True):
        report.rows_read += 1
        if isinstance(result, Rejection):
            # keep the row's id where it has a usable one, so the quarantine can be looked up by it
            raw_id = cells[id_index] if id_index is not None and id_index < len(cells) else None
            raw_id = (
                "" if raw_id is None or isinstance(raw_id, (dict, list, BadCell)) else str(raw_id).strip()
            )
            tid = masked_text(raw_id, 256)[:256] or None
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
                f"ticket_id {tid} already appears in {row_label(seen_in_file[tid])} of this file (the first row is kept)",
                masked_raw(batch.header, cells), tid,
            )  # fmt: skip
            continue
        seen_in_file[tid] = row_number
        candidates.append((row_number, result.values))

    stored = _existing(conn, [v["ticket_id"] for _, v in candidates])
    new_rows: list[dict[str, Any]] = []
    moved: list[tuple[str, int]] = []
    for row_number, values in candidates:
        tid = values["ticket_id"]
        prev = stored.get(tid)
        if prev is None:
            values.update(night=night, source_file_id=ledger_id, source_row=row_number, ingested_at=now)
            new_rows.append(values)
        elif prev[0] == values["content_hash"]:
            report.rows_unchanged += 1
            if prev[1] in report.superseded:
                moved.append((tid, row_number))
        else:
            stored_from = f"file #{prev[1]} {row_label(prev[2])}" if prev[1] else "an earlier load"
            reject(
                row_number, "conflicting_duplicate", "ticket_id",
                f"ticket_id {tid} was already ingested from {stored_from} with different content; "
                "the stored ticket is kept (correct it in the source system or re-issue under a new id)",
                {"ticket_id": tid}, tid,
            )  # fmt: skip

    if moved:
        _take_over(conn, ledger_id, moved)
    if new_rows:
        rows = [{c: v.get(c) for c in _TICKET_COLS} for v in new_rows]
        with search_index_in_bulk(conn):  # one index statement per batch, not a trigger per row
            inserted = insert_ignore(conn, Ticket.__table__, rows, ["ticket_id"])
        report.rows_new += inserted
        if inserted < len(rows):  # another writer stored some of these ids between lookup and insert
            _settle_lost_races(conn, rows, ledger_id, report, reject)
    if quarantine:
        insert_ignore(conn, Quarantine.__table__, quarantine, ["source_sha256", "row_number"])
        report.rows_quarantined += len(quarantine)


def row_label(row_number: int) -> str:
    """A stored row number as a person finds it: rows of a workbook's later sheets are numbered
    sheet index × SHEET_ROW_BASE + the Excel row."""
    sheet, row = divmod(row_number, SHEET_ROW_BASE)
    return f"row {row} of sheet {sheet + 1}" if sheet else f"row {row}"


def _storable(value: Any) -> Any:
    """Text any database accepts: lone surrogates (from JSON "\\ud83d" escapes) and NUL characters
    in quarantined raw values and messages are written as visible escapes instead of failing the insert."""
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value.replace("\x00", "\\x00") if "\x00" in value else value


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
            ledger_id = row[0]
            conn.execute(update(IngestFile).where(IngestFile.id == ledger_id).values(**values))
        else:
            ledger_id = conn.execute(
                IngestFile.__table__.insert().values(sha256=report.sha256, **values)
            ).inserted_primary_key[0]
        report.superseded = _supersede_earlier_attempts(conn, report.source, night, ledger_id)
        return ledger_id


def _supersede_earlier_attempts(conn: Connection, source: str, night: dt.date, ledger_id: int) -> list[int]:
    """Earlier versions of this path for this night — unfinished, rejected, or ingested and since
    corrected and delivered again — are marked superseded and their quarantine rows removed: the
    latest version accounts for every row of the file, so the night adds up as it now stands. Their
    stored tickets stay (they were real rows, maybe dispatched); the latest version counts them as
    unchanged and takes them over. Returns the superseded ledger ids."""
    stale = conn.execute(
        select(IngestFile.id, IngestFile.sha256, IngestFile.status, IngestFile.message).where(
            IngestFile.source == source,
            IngestFile.night == night,
            IngestFile.id != ledger_id,
            IngestFile.status != "superseded",
        )
    ).all()
    for old_id, old_sha, old_status, old_message in stale:
        conn.execute(delete(Quarantine).where(Quarantine.source_sha256 == old_sha))
        was = f"; was {old_status}" + (f": {old_message}" if old_message else "")
        conn.execute(
            update(IngestFile)
            .where(IngestFile.id == old_id)
            .values(
                status="superseded", message=f"superseded by ledger #{ledger_id}{was}", finished_at=utcnow()
            )
        )
    return [old_id for old_id, *_ in stale]


def _take_over(conn: Connection, ledger_id: int, moved: list[tuple[str, int]]) -> None:
    """Tickets a superseded version of this file stored, found unchanged in this one: their source
    becomes this version (file and row), so the night's tickets point at the ledger that counts them."""
    conn.execute(
        update(Ticket.__table__)
        .where(Ticket.__table__.c.ticket_id == bindparam("tid"))
        .values(source_file_id=ledger_id, source_row=bindparam("row")),
        [{"tid": tid, "row": row} for tid, row in moved],
    )


def _left_behind(engine: Any, superseded: list[int], seen_in_file: dict[str, int]) -> int:
    """Tickets stored from a superseded version that this version no longer has (kept, not lost)."""
    if not superseded:
        return 0
    with engine.connect() as conn:
        ids = conn.execute(select(Ticket.ticket_id).where(Ticket.source_file_id.in_(superseded))).scalars()
        return sum(1 for tid in ids if tid not in seen_in_file)


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


def _record_rejection(
    engine: Any, report: IngestReport, night: dt.date, size: int, message: str, status: str = "rejected"
) -> None:
    """A rejected file gets a ledger entry (status rejected, the reason) but no ticket or quarantine row."""
    report.status, report.message = status, message
    report.ledger_id = _open_ledger(engine, report, night, size)
    _close_ledger(engine, report, status)
