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


class InputFileError(ValueError):
    """A file that cannot be read at all. The message names the file and what to do."""


@dataclass
class BrokenRow:
    row_number: int
    reason: str
    raw: str


@dataclass
class RawBatch:
    header: list[str]
    rows: list[tuple[int, list[Any]]] = field(default_factory=list)
    broken: list[BrokenRow] = field(default_factory=list)


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
            return "utf-16"
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


def read_batches(path: Path, fmt: str, encoding: str | None, batch_rows: int) -> Iterator[RawBatch]:
    if fmt in ("csv", "tsv"):
        yield from _read_delimited(path, encoding or "utf-8", "\t" if fmt == "tsv" else ",", batch_rows)
    elif fmt == "jsonl":
        yield from _read_jsonl(path, encoding or "utf-8", batch_rows)
    elif fmt == "parquet":
        yield from _read_parquet(path, batch_rows)
    elif fmt == "xlsx":
        yield from _read_xlsx(path, batch_rows)
    else:  # pragma: no cover - detect_format guards this
        raise InputFileError(f"{path}: no reader for format {fmt}")


def _read_delimited(path: Path, encoding: str, delimiter: str, batch_rows: int) -> Iterator[RawBatch]:
    with open(path, encoding=encoding, newline="") as fh:
        if delimiter == "," and path.suffix.lower() == ".csv":
            sample = fh.read(8192)
            fh.seek(0)
            first_line = sample.splitlines()[0] if sample else ""
            if first_line.count("\t") > first_line.count(","):
                delimiter = "\t"  # a .csv that is really tab-separated (common in hotline exports)
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise InputFileError(f"{path}: file is empty (no header line)") from None
        except csv.Error as exc:
            raise InputFileError(f"{path}, line 1: cannot read the header: {exc}") from None
        width = len(header)
        batch = RawBatch(header)
        line = reader.line_num
        while True:
            start = line + 1
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                batch.broken.append(BrokenRow(start, f"unreadable CSV record: {exc}", ""))
                line = reader.line_num
                continue
            line = reader.line_num
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # blank line: not a record
            if len(values) != width:
                batch.broken.append(
                    BrokenRow(
                        start, f"has {len(values)} fields, the header has {width}", delimiter.join(values)
                    )
                )
            else:
                batch.rows.append((start, values))
            if len(batch.rows) >= batch_rows:
                yield batch
                batch = RawBatch(header)
        yield batch


def _read_jsonl(path: Path, encoding: str, batch_rows: int) -> Iterator[RawBatch]:
    with open(path, encoding=encoding) as fh:
        first = fh.read(1)
        while first and first.isspace():
            first = fh.read(1)
        fh.seek(0)
        if first == "[":  # a JSON array file, not JSON Lines
            try:
                records = json.load(fh)
            except json.JSONDecodeError as exc:
                raise InputFileError(f"{path}, line {exc.lineno}: invalid JSON: {exc.msg}") from None
            lines = ((i, r) for i, r in enumerate(records, start=1))
            yield from _json_records(lines, batch_rows, parsed=True)
            return
        yield from _json_records(enumerate(fh, start=1), batch_rows, parsed=False)


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
        else:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                broken.append(BrokenRow(n, f"invalid JSON: {exc.msg} (column {exc.colno})", line[:2000]))
                continue
        if not isinstance(rec, dict):
            broken.append(BrokenRow(n, f"expected a JSON object, got {type(rec).__name__}", str(rec)[:2000]))
            continue
        for k in rec:
            if k not in keys:
                keys[k] = len(header)
                header.append(k)
        pending.append((n, rec))
        if len(pending) >= batch_rows:
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
    from python_calamine import CalamineWorkbook

    try:
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
    except Exception as exc:
        raise InputFileError(f"{path}: not a readable Excel workbook ({exc})") from None
    rows_iter = iter(sheet.iter_rows())
    try:
        header = [str(_cell(h) or "") for h in next(rows_iter)]
    except StopIteration:
        raise InputFileError(f"{path}: the first sheet is empty (no header row)") from None
    batch = RawBatch(header)
    for excel_row, values in enumerate(rows_iter, start=2):
        cells = [_cell(v) for v in values]
        if all(c in (None, "") for c in cells):
            continue
        cells = (cells + [None] * len(header))[: len(header)]
        batch.rows.append((excel_row, cells))
        if len(batch.rows) >= batch_rows:
            yield batch
            batch = RawBatch(header)
    yield batch


def _cell(v: Any) -> Any:
    """Spreadsheet and Parquet cells → strings, keeping datetimes as datetimes."""
    if v is None or isinstance(v, (str, dt.datetime)):
        return v
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day)
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)
