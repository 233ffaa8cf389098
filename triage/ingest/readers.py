"""Read ticket files of any supported format into batches of raw string rows.

Every reader yields :class:`RawBatch` objects: the file's header (as written), a list of
``(row_number, values)`` pairs, and a list of rows that could not even be split into fields
(broken CSV quoting, invalid JSON lines) with the reason. Row numbers are what a person sees: the
line number in a text editor for CSV/TSV/JSONL (header = line 1), the Excel row number for XLSX,
and the 1-based record number for Parquet.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triage.text import mask_pii

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}
csv.field_size_limit(64 * 1024 * 1024)  # a hostile 1 MB+ cell must reach validation, not crash csv
DEFAULT_MAX_ROW_BYTES = 4_000_000


class InputFileError(ValueError):
    """A file that cannot be read at all. The message names the file and what to do."""


@dataclass
class BrokenRow:
    row_number: int
    reason: str
    raw: str
    code: str = "broken_row"


@dataclass
class RawBatch:
    header: list[str]
    rows: list[tuple[int, list[Any]]] = field(default_factory=list)
    broken: list[BrokenRow] = field(default_factory=list)
    sheet: str | None = None  # the workbook sheet the rows come from (XLSX)
    row_base: int = 0  # row_number - row_base = the row a person sees in that sheet


@dataclass(frozen=True)
class BadCell:
    """A cell whose value cannot be text (undecodable bytes): validation quarantines its row."""

    problem: str


# Quarantine rows are keyed by (file, row number): the n-th sheet of a workbook (0-based) numbers
# its rows n × SHEET_ROW_BASE + the Excel row (Excel has at most 1,048,576 rows).
SHEET_ROW_BASE = 10_000_000
MAX_RAW_CHARS = 2000


def bounded(text: str, limit: int = MAX_RAW_CHARS) -> str:
    """At most ``limit`` characters of a raw value, saying how long it was."""
    return text if len(text) <= limit else text[:limit] + f"…[{len(text):,} chars]"


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(sorted(set(FORMATS)))}"
        )
    return fmt


def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030; anything else is refused."""
    with open(path, "rb") as fh:
        head = fh.read(4)
        if head.startswith(codecs.BOM_UTF8):
            enc = "utf-8-sig"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            fh.seek(0)
            offset = _first_bad_offset(fh, "utf-16")  # e.g. a broken surrogate pair
            if offset is None:
                return "utf-16"
            raise InputFileError(
                f"{path}: text starts as UTF-16 but is not valid UTF-16 (undecodable bytes at offset "
                f"{offset}); re-export the file as UTF-8"
            )
        else:
            enc = "utf-8"
        fh.seek(0)
        if _decodes(fh, "utf-8"):
            return enc
        fh.seek(0)
        offset = _first_bad_offset(fh, "gb18030")
        if offset is None:
            return "gb18030"
    raise InputFileError(
        f"{path}: text is neither UTF-8 nor GB18030 (undecodable byte at offset {offset}); "
        "re-export the file as UTF-8"
    )


def _decodes(fh: io.BufferedReader, encoding: str) -> bool:
    return _first_bad_offset(fh, encoding) is None


def _first_bad_offset(fh: io.BufferedReader, encoding: str) -> int | None:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    pos = 0
    while chunk := fh.read(1 << 22):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            return pos + exc.start
        pos += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return pos
    return None


def read_batches(
    path: Path, fmt: str, encoding: str | None, batch_rows: int, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
) -> Iterator[RawBatch]:
    """The file's batches. Whatever a reader library raises on a malformed file becomes an
    InputFileError naming the file, so one bad file is rejected instead of failing the night.
    A text line longer than ``max_row_bytes`` is quarantined as a broken row, read in pieces and
    never held whole."""
    try:
        yield from _read_any(path, fmt, encoding, batch_rows, max_row_bytes)
    except InputFileError:
        raise
    except UnicodeDecodeError as exc:  # the decoder's offset is within its buffer, not the file: not shown
        raise InputFileError(
            f"{path}: undecodable bytes ({exc.encoding}: {exc.reason}); re-export the file as UTF-8"
        ) from None
    except MemoryError:
        raise
    except Exception as exc:  # library messages may quote cells: masked like any raw value
        detail = mask_pii(str(exc)[:300])
        raise InputFileError(f"{path}: cannot be read ({type(exc).__name__}: {detail})") from None


def _read_any(
    path: Path, fmt: str, encoding: str | None, batch_rows: int, max_row_bytes: int
) -> Iterator[RawBatch]:
    if fmt in ("csv", "tsv"):
        delimiter = "\t" if fmt == "tsv" else ","
        yield from _read_delimited(path, encoding or "utf-8", delimiter, batch_rows, max_row_bytes)
    elif fmt == "jsonl":
        yield from _read_jsonl(path, encoding or "utf-8", batch_rows, max_row_bytes)
    elif fmt == "parquet":
        yield from _read_parquet(path, batch_rows)
    elif fmt == "xlsx":
        yield from _read_xlsx(path, batch_rows)
    else:  # pragma: no cover - detect_format guards this
        raise InputFileError(f"{path}: no reader for format {fmt}")


class RowTooLong(Exception):
    """A line or record over the row limit; it has been skipped (read in pieces, never held whole)."""

    def __init__(self, size: int, limit: int, excerpt: str) -> None:
        super().__init__(
            f"the row is {size:,} bytes or more, over the {limit:,}-byte limit (TRIAGE_MAX_ROW_BYTES)"
        )
        self.excerpt = excerpt


def bounded_lines(fh: io.TextIOBase, limit: int) -> Iterator[str | RowTooLong]:
    """The file's lines, or a RowTooLong in place of a line over ``limit`` bytes of UTF-8."""
    while line := fh.readline(limit + 1):
        # a character is at most 4 bytes: shorter lines are surely within the limit (no encoding cost)
        if len(line) * 4 <= limit or len(line.encode("utf-8", "surrogatepass")) <= limit:
            yield line
            continue
        size, excerpt = len(line.encode("utf-8", "surrogatepass")), bounded(line[:MAX_RAW_CHARS])
        while not line.endswith("\n") and (line := fh.readline(1 << 20)):  # skip the rest of the line
            size += len(line.encode("utf-8", "surrogatepass"))
        yield RowTooLong(size, limit, excerpt)


class _Lines:
    """The physical lines of a text file as the csv reader takes them. The lines of the record being
    read are kept, so a broken record can be quarantined with its text, and everything after its
    first line handed back: an unclosed quote then costs one row, not the rest of the file. A line,
    or a record of several lines, over the row limit raises RowTooLong (the csv reader passes it on)."""

    def __init__(self, fh: io.TextIOBase, limit: int = DEFAULT_MAX_ROW_BYTES) -> None:
        self._lines = bounded_lines(fh, limit)
        self._limit = limit
        self._back: list[str] = []  # handed-back lines, last one first
        self.taken: list[str] = []
        self._taken_chars = 0
        self.number = 0  # physical lines taken so far

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._back.pop() if self._back else next(self._lines)
        self.number += 1
        if isinstance(line, RowTooLong):
            self.taken = []
            raise line
        self.taken.append(line)
        self._taken_chars += len(line)
        if self._taken_chars > self._limit:  # a quoted record running on over many lines
            raise RowTooLong(self._taken_chars, self._limit, bounded(self.taken[0]))
        return line

    def start_record(self) -> None:
        self.taken = []
        self._taken_chars = 0

    def give_back_all_but_first(self) -> str:
        """The record's first line; its later lines will be read again as records of their own."""
        first, rest = (self.taken[0] if self.taken else ""), self.taken[1:]
        self._back.extend(reversed(rest))
        self.number -= len(rest)
        self.taken = []
        self._taken_chars = 0
        return first


def _read_delimited(
    path: Path, encoding: str, delimiter: str, batch_rows: int, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
) -> Iterator[RawBatch]:
    with open(path, encoding=encoding, newline="") as fh:
        if delimiter == "," and path.suffix.lower() == ".csv":
            sample = fh.read(8192)
            fh.seek(0)
            first_line = sample.splitlines()[0] if sample else ""
            if first_line.count("\t") > first_line.count(","):
                delimiter = "\t"  # a .csv that is really tab-separated (common in hotline exports)
        lines = _Lines(fh, max_row_bytes)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise InputFileError(f"{path}: file is empty (no header line)") from None
        except (csv.Error, RowTooLong) as exc:
            raise InputFileError(f"{path}, line 1: cannot read the header: {exc}") from None
        width = len(header)
        batch = RawBatch(header)
        while True:
            start = lines.number + 1
            lines.start_record()
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # bad quoting: quarantine the first line, re-read the others
                raw = lines.give_back_all_but_first()
                reader = csv.reader(lines, delimiter=delimiter, strict=True)
                reason = f"unreadable CSV record: {exc}"
                batch.broken.append(BrokenRow(start, reason, bounded(raw.rstrip("\r\n"))))
                continue
            except RowTooLong as exc:  # skipped in pieces; a record over several lines: its others re-read
                lines.give_back_all_but_first()
                reader = csv.reader(lines, delimiter=delimiter, strict=True)
                batch.broken.append(BrokenRow(start, str(exc), exc.excerpt.rstrip("\r\n"), "row_too_long"))
                if len(batch.rows) + len(batch.broken) >= batch_rows:
                    yield batch
                    batch = RawBatch(header)
                continue
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # blank line: not a record
            if len(values) != width:
                # a record over several lines with the wrong width is an unbalanced quote that
                # swallowed the lines after it: those are read again as records of their own
                multi = len(lines.taken) > 1
                raw = lines.give_back_all_but_first() if multi else "".join(lines.taken)
                reason = f"has {len(values)} fields, the header has {width}"
                if multi:
                    reason += " (an unclosed quote? its next lines are read as rows of their own)"
                batch.broken.append(BrokenRow(start, reason, bounded(raw.rstrip("\r\n"))))
            else:
                batch.rows.append((start, values))
            if len(batch.rows) + len(batch.broken) >= batch_rows:
                yield batch
                batch = RawBatch(header)
        yield batch


def _read_jsonl(
    path: Path, encoding: str, batch_rows: int, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
) -> Iterator[RawBatch]:
    with open(path, encoding=encoding) as fh:
        if _is_json_array(fh):
            try:
                records = json.load(fh)
            except json.JSONDecodeError as exc:
                raise InputFileError(f"{path}, line {exc.lineno}: invalid JSON: {exc.msg}") from None
            lines = ((i, r) for i, r in enumerate(records, start=1))
            yield from _json_records(lines, batch_rows, parsed=True)
            return
        yield from _json_records(
            enumerate(bounded_lines(fh, max_row_bytes), start=1), batch_rows, parsed=False
        )


def _is_json_array(fh: io.TextIOBase) -> bool:
    """A file starting with "[" is a JSON array only if its first line is not a whole JSON value
    followed by more lines: JSON Lines may begin with a (bad) array line. Rewinds the file."""
    first: str | RowTooLong = ""
    lines = bounded_lines(fh, DEFAULT_MAX_ROW_BYTES)
    for line in lines:
        if isinstance(line, RowTooLong) or line.strip():
            first = line
            break
    try:
        if isinstance(first, RowTooLong):  # a long first line: an array on one line, or a long bad row
            return first.excerpt.lstrip().startswith("[")
        if not first.lstrip().startswith("["):
            return False
        try:
            json.loads(first)
        except (ValueError, RecursionError):
            return True  # e.g. "[" alone or a pretty-printed array
        # "[...]" on one line, nothing after: an array
        return not any(isinstance(x, RowTooLong) or x.strip() for x in lines)
    finally:
        fh.seek(0)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that names a key twice is ambiguous (json.loads would keep the last silently):
    the line is quarantined rather than one of its values guessed."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the key {dup!r} appears twice in one record")
    return d


def _json_records(lines: Any, batch_rows: int, parsed: bool) -> Iterator[RawBatch]:
    header: list[str] = []
    keys: dict[str, int] = {}
    pending: list[tuple[int, dict[str, Any]]] = []
    broken: list[BrokenRow] = []

    def flush() -> RawBatch:
        rows = [(n, [rec.get(k) for k in header]) for n, rec in pending]
        return RawBatch(list(header), rows, list(broken))

    for n, line in lines:
        if parsed:
            rec = line
        elif isinstance(line, RowTooLong):
            broken.append(BrokenRow(n, str(line), line.excerpt.rstrip("\r\n"), "row_too_long"))
            if len(pending) + len(broken) >= batch_rows:
                yield flush()
                pending.clear()
                broken.clear()
            continue
        else:
            if not line.strip():
                continue
            try:
                rec = json.loads(line, object_pairs_hook=_no_duplicate_keys)
            except (ValueError, RecursionError) as exc:  # also absurd nesting or 5,000-digit numbers
                where = f"{exc.msg} (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else exc
                reason = f"invalid JSON: {where}"
                broken.append(BrokenRow(n, reason, bounded(line.rstrip("\r\n"))))
                continue
        if not isinstance(rec, dict):
            got = type(rec).__name__
            raw = line.rstrip("\r\n") if not parsed else json.dumps(rec, ensure_ascii=False)
            broken.append(BrokenRow(n, f"expected a JSON object, got {got}", bounded(raw)))
            continue
        for k in rec:
            if k not in keys:
                keys[k] = len(header)
                header.append(k)
        pending.append((n, rec))
        if len(pending) + len(broken) >= batch_rows:
            yield flush()
            pending.clear()
            broken.clear()
    yield flush()


def _read_parquet(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise InputFileError(f"{path}: not a readable Parquet file ({exc})") from None
    header = pf.schema_arrow.names
    n = 0
    for rb in pf.iter_batches(batch_size=batch_rows):
        cols = [rb.column(i).to_pylist() for i in range(rb.num_columns)]
        rows = [(n + i + 1, [_cell(c[i]) for c in cols]) for i in range(rb.num_rows)]
        n += rb.num_rows
        yield RawBatch(header, rows)
    if n == 0:
        yield RawBatch(header)


def _read_xlsx(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    """Every sheet with data, each with its own header row (the loader maps each header; a sheet
    whose columns cannot be mapped is reported, never skipped). Empty sheets are passed over."""
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        names = list(book.sheet_names)
    except Exception as exc:
        raise InputFileError(f"{path}: not a readable Excel workbook ({exc})") from None
    if len(names) * SHEET_ROW_BASE > 2**31:
        raise InputFileError(f"{path}: {len(names)} sheets; at most {2**31 // SHEET_ROW_BASE} are read")
    found = False
    for index, name in enumerate(names):
        sheet = book.get_sheet_by_index(index)
        rows_iter = iter(sheet.iter_rows())
        header, header_row = None, 0
        for number, values in enumerate(rows_iter, start=1):  # blank rows above the header skipped
            if any(_cell(v) not in (None, "") for v in values):
                header, header_row = [str(_cell(h) or "") for h in values], number
                break
        if header is None:
            continue
        found = True
        base = index * SHEET_ROW_BASE
        batch = RawBatch(header, sheet=name, row_base=base)
        for excel_row, values in enumerate(rows_iter, start=header_row + 1):
            cells = [_cell(v) for v in values]
            if all(c in (None, "") for c in cells):
                continue
            cells = (cells + [None] * len(header))[: len(header)]
            batch.rows.append((base + excel_row, cells))
            if len(batch.rows) >= batch_rows:
                yield batch
                batch = RawBatch(header, sheet=name, row_base=base)
        yield batch
    if not found:
        raise InputFileError(f"{path}: every sheet is empty (no header row)")


def _cell(v: Any) -> Any:
    """Spreadsheet and Parquet cells → strings, keeping datetimes as datetimes. Binary is UTF-8
    text or a :class:`BadCell`; lists and structs stay as they are (validation refuses them)."""
    if v is None or isinstance(v, (str, dt.datetime)):
        return v
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day)
    if isinstance(v, float):
        if math.isnan(v):
            return None
        # an id a spreadsheet stored as a number: whole numbers print as integers up to 2^53 (the
        # largest a float holds exactly), so "2026112012345678" matches the same id sent as text
        return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
    if isinstance(v, bool):  # no column of a ticket is a yes/no: a TRUE cell is a shifted or wrong column
        return BadCell(f"a true/false value ({str(v).lower()})")
    if isinstance(v, (bytes, bytearray, memoryview)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError as exc:
            return BadCell(f"binary data that is not UTF-8 text (bad byte at offset {exc.start})")
    if isinstance(v, (dict, list, tuple)):
        return v
    return str(v)
