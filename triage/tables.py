"""Read any tabular file the CLI accepts (CSV/TSV, JSONL, Parquet, XLSX) into a DataFrame of
strings, with the same encoding detection as ingest. Used by the model, geo and hotspot commands,
which take arbitrary files with user-named columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from triage.ingest.readers import InputFileError, detect_encoding, detect_format


def read_table(path: Path | str) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file")
    if p.is_dir():
        raise InputFileError(f"{p}: is a directory; give a file")
    fmt = detect_format(p)
    try:
        if fmt in ("csv", "tsv"):
            enc = detect_encoding(p)
            with open(p, encoding=enc, newline="") as fh:
                first = fh.readline()
            sep = "\t" if fmt == "tsv" or first.count("\t") > first.count(",") else ","
            df = pd.read_csv(p, encoding=enc, sep=sep, dtype=str, keep_default_na=False)
        elif fmt == "jsonl":
            df = _read_json_records(p)
        elif fmt == "parquet":
            df = pd.read_parquet(p, dtype_backend="numpy_nullable")  # int columns with nulls stay int
            # nullable integer/boolean columns (Int64 …) hold pd.NA, which "" cannot replace; as
            # plain values a label 3 stays "3"
            df = df.astype(object).where(df.notna(), None)
        else:
            sheets = {k: v for k, v in pd.read_excel(p, engine="calamine", dtype=str, sheet_name=None).items()
                      if not v.dropna(how="all").empty}  # fmt: skip
            if len(sheets) > 1:  # never read one and silently leave the others
                raise InputFileError(
                    f"{p}: {len(sheets)} sheets hold data ({', '.join(map(repr, sheets))}); "
                    "put the rows in one sheet, or save each sheet as its own file"
                )
            df = next(iter(sheets.values()), pd.DataFrame())
    except InputFileError:
        raise
    except Exception as exc:
        where = _bad_json_line(p) if fmt == "jsonl" else ""
        raise InputFileError(
            f"{p}: cannot be read as {fmt}{where} ({exc.__class__.__name__}: {exc})"
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _read_json_records(p: Path) -> pd.DataFrame:
    """JSON Lines (or one JSON array) as objects, values as written: pandas' own reader makes a
    column of whole numbers with one null into floats, so label 1 came back as "1.0"."""
    import json

    with open(p, encoding=detect_encoding(p)) as fh:
        text = fh.read()
    stripped = text.lstrip()
    if stripped.startswith("[") and not stripped.rstrip().endswith("}"):  # a JSON array file
        records = json.loads(text)
    else:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not all(isinstance(r, dict) for r in records):
        raise ValueError("every record must be a JSON object")
    keys = list(dict.fromkeys(k for r in records for k in r))
    return pd.DataFrame({k: pd.Series([r.get(k) for r in records], dtype=object) for k in keys})


def _bad_json_line(p: Path) -> str:
    """ ", line N" for the first line of a JSON Lines file that is not a JSON object ("" if none)."""
    import json

    with open(p, encoding=detect_encoding(p)) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                ok = isinstance(json.loads(line), dict)
            except ValueError:
                ok = False
            if not ok:
                return f", line {n}"
    return ""


def require_columns(df: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [c for c in columns if c and c not in df.columns]
    if missing:
        raise InputFileError(
            f"{source}: column(s) {', '.join(repr(m) for m in missing)} not found; "
            f"the file has: {', '.join(map(repr, df.columns))}"
        )


def cell_text(value: Any) -> str:
    """A cell as stripped text; missing (None, NaN, JSON null) is ""."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()


def row_numbers(path: Path, n_rows: int) -> list[int]:
    """Where each record is, as a person finds it: the line of a JSON Lines file (blank lines
    skipped by the reader still count), the spreadsheet row for CSV/TSV/XLSX (header = row 1),
    the record number for Parquet."""
    fmt = detect_format(path)
    if fmt == "jsonl":
        with open(path, encoding=detect_encoding(path)) as fh:
            lines = [k for k, line in enumerate(fh, start=1) if line.strip()]
        if len(lines) == n_rows:
            return lines
    return list(range(1, n_rows + 1)) if fmt in ("jsonl", "parquet") else list(range(2, n_rows + 2))


def join_text(df: pd.DataFrame, cols: list[str]) -> pd.Series:
    """Several text columns joined in order (empty cells skipped)."""
    parts = df[cols].fillna("").astype(str)
    return parts.apply(lambda r: "\n".join(x.strip() for x in r if x and x.strip()), axis=1)


def check_output_path(path: Path | str) -> Path:
    """An output path the writers accept: a supported extension, not an existing directory."""
    p = Path(path)
    if p.is_dir():
        raise InputFileError(f"{p}: is a directory; give a file name for the output")
    detect_format(p)  # raises for an unsupported extension
    return p


def write_table(
    df: pd.DataFrame, path: Path | str, *, encoding: str = "utf-8", parquet_compression_level: int = 3
) -> Path:
    """Write a DataFrame as CSV/TSV (UTF-8 or GB18030), JSONL, Parquet or XLSX, by extension.
    Parquet is zstd-compressed; level 3 is fast, 19 is for files shipped in git."""
    p = check_output_path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fmt = detect_format(p)
    if fmt in ("csv", "tsv"):
        df.to_csv(p, index=False, encoding=encoding, sep="\t" if fmt == "tsv" else ",")
    elif fmt == "jsonl":
        df.to_json(p, orient="records", lines=True, force_ascii=False, date_format="iso")
    elif fmt == "parquet":
        df.to_parquet(p, index=False, compression="zstd", compression_level=parquet_compression_level)
    else:
        # citizens' text is data: a message starting with "=" must not become a live formula,
        # nor a URL a hyperlink, in the sheet an analyst opens
        opts = {"strings_to_formulas": False, "strings_to_urls": False}
        df.to_excel(p, index=False, engine="xlsxwriter", engine_kwargs={"options": opts})
    return p
