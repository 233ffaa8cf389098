"""Report tables as data: one spec per table, rendered by the ``data_table`` macro
(templates/_tables.html.j2) and offered as CSV and XLSX downloads inside the same self-contained
file (``data:`` URIs — no server, no CDN). Long tables are collapsed with their row count.

Everything here is deterministic — same data, same bytes — so a re-run of a night's report
writes an identical file (the workbook's creation date is the night, not the clock).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any

COLLAPSE_ROWS = 15  # longer tables start folded: the summary line says how many rows they hold
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Col:
    label: str
    kind: str = "text"  # text | num | pct | code | bar (bar: drawn from a 0–1 share, not downloaded)


@dataclass
class Table:
    id: str
    title: str
    cols: list[Col]
    rows: list[list[Any]]
    empty: str = "无 none"
    note: str = ""
    row_class: str = ""  # a class on every data row, for pages and tests that pick rows out
    downloads: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def collapsed(self) -> bool:
        return self.n > COLLAPSE_ROWS


def build(tables: list[Table], night: dt.date, prefix: str) -> dict[str, Table]:
    """Attach each table's CSV and XLSX as data: URIs; tables by id for the template."""
    created = dt.datetime.combine(night, dt.time())
    for t in tables:
        frame = _frame(t)
        name = f"{prefix}-{t.id}"
        t.downloads = {
            "csv": f"data:text/csv;charset=utf-8;base64,{_b64(_csv(frame))}",
            "xlsx": f"data:{XLSX_MIME};base64,{_b64(_xlsx(frame, created))}",
            "name": name,
        }
    return {t.id: t for t in tables}


def _frame(t: Table):
    import pandas as pd

    from triage.exports import defuse_formula

    keep = [i for i, c in enumerate(t.cols) if c.kind != "bar"]
    rows = [[defuse_formula(_plain(r[i], t.cols[i].kind)) for i in keep] for r in t.rows]
    return pd.DataFrame(rows, columns=[t.cols[i].label for i in keep])


def _plain(v: Any, kind: str) -> Any:
    if kind == "pct" and isinstance(v, int | float):
        return round(100 * v, 1)  # a percentage people can sort and sum
    return "" if v is None else v


def _csv(frame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")  # BOM: Excel reads UTF-8


def _xlsx(frame, created: dt.datetime) -> bytes:
    import pandas as pd

    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="xlsxwriter") as writer:
        writer.book.set_properties({"created": created})  # not the clock: same data, same bytes
        frame.to_excel(writer, index=False, sheet_name="data")
    return buf.getvalue()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")
