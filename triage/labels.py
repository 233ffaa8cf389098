"""Human labels for retraining: imported files and analysts' corrections go to ``labels``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from triage.ingest.readers import detect_format
from triage.store import Label, Ticket, get_engine, read_frame, upsert
from triage.store.models import utcnow
from triage.tables import read_table, require_columns
from triage.taxonomy import load_taxonomy


def import_labels(path: Path | str, source: str = "import") -> dict[str, Any]:
    """Rows need ticket_id and category (code or Chinese name); labeled_by defaults to the file
    name. Unknown tickets or categories are rejected with their row number; the rest are stored
    (a newer label by the same person replaces the older). One person labelling a ticket twice in
    the same file with different categories is a conflict: both rows are rejected; an identical
    repeat is stored once (``repeated``)."""
    df = read_table(path)
    require_columns(df, ["ticket_id", "category"], str(path))
    tax = load_taxonomy()
    engine = get_engine()
    ids = df["ticket_id"].astype(str).str.strip().tolist()
    with engine.connect() as conn:
        known: set[str] = set()
        for i in range(0, len(ids), 900):
            known.update(
                r[0]
                for r in conn.execute(select(Ticket.ticket_id).where(Ticket.ticket_id.in_(ids[i : i + 900])))
            )
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    first_row: dict[tuple[str, str], int] = {}
    problems = []
    default_by = Path(path).name
    now = utcnow()
    # row numbers as a person sees them: CSV/TSV/XLSX count the header line, JSONL lines do not
    start = 1 if detect_format(Path(path)) in ("jsonl", "parquet") else 2
    for n, (tid, cat, by) in enumerate(
        zip(ids, df["category"].astype(str), df.get("labeled_by", [default_by] * len(df)), strict=True),
        start=start,
    ):
        code = tax.code_for(cat.strip())
        by = str(by or "").strip() or default_by
        key = (tid, by)
        if not tid:
            problems.append(f"{path}, row {n}, field 'ticket_id': empty")
        elif tid not in known:
            problems.append(f"{path}, row {n}: ticket_id {tid!r} is not in the database")
        elif not cat.strip():
            problems.append(f"{path}, row {n}, field 'category': empty")
        elif code is None:
            problems.append(f"{path}, row {n}, field 'category': {cat!r} is not a category code or name")
        elif key in rows and rows[key]["category"] != code:
            problems.append(
                f"{path}, row {n}: {by!r} labels ticket {tid!r} {code}, but {rows[key]['category']} in row "
                f"{first_row[key]}; neither is stored — keep one"
            )
            rows[key]["conflict"] = True
        else:
            first_row.setdefault(key, n)
            rows[key] = {
                "ticket_id": tid,
                "category": code,
                "labeled_by": by,
                "source": source,
                "labeled_at": now,
            }
    stored = [r for r in rows.values() if not r.get("conflict")]
    conflicted = sum(1 for r in rows.values() if r.get("conflict"))
    with engine.begin() as conn:
        upsert(
            conn, Label.__table__, stored, ["ticket_id", "labeled_by"], ["category", "source", "labeled_at"]
        )
    rejected = len(problems) + conflicted  # a conflict also withholds the row it conflicts with
    return {"rows": len(df), "imported": len(stored), "rejected": rejected,
            "repeated": len(df) - len(stored) - rejected, "problems": problems}  # fmt: skip


class LabelError(ValueError):
    """A label that cannot be stored: unknown ticket or category, or no labeller given."""


def record_correction(ticket_id: str, category: str, labeled_by: str) -> dict[str, Any]:
    """Store an analyst's correction of a ticket's category (for the API).

    ``category`` is a code or Chinese name of the built-in taxonomy. One row per (ticket,
    labeller): a later correction by the same person replaces the earlier one. Corrections win
    over imported labels when training data is gathered. Raises :class:`LabelError` for an unknown
    ticket, an unknown category or an empty ``labeled_by``; returns the stored row."""
    tid, by = str(ticket_id).strip(), str(labeled_by or "").strip()
    if not by:
        raise LabelError("labeled_by is required (who made the correction)")
    code = load_taxonomy().code_for(str(category).strip())
    if code is None:
        raise LabelError(f"{category!r} is not a category code or name of the taxonomy")
    engine = get_engine()
    with engine.begin() as conn:
        if conn.execute(select(Ticket.ticket_id).where(Ticket.ticket_id == tid)).first() is None:
            raise LabelError(f"ticket_id {tid!r} is not in the database")
        row = {
            "ticket_id": tid,
            "category": code,
            "labeled_by": by,
            "source": "correction",
            "labeled_at": utcnow(),
        }
        upsert(
            conn, Label.__table__, [row], ["ticket_id", "labeled_by"], ["category", "source", "labeled_at"]
        )
    return row


def labeled_tickets() -> pd.DataFrame:
    """One row per labelled ticket (ticket_id, title, text, category, labeled_at) for training.

    When several people labelled a ticket, an analyst's correction beats an imported label and,
    within the same kind, the newest label wins."""
    engine = get_engine()
    with engine.connect() as conn:
        df = read_frame(
            conn,
            select(Label.ticket_id, Ticket.title, Ticket.text, Label.category, Label.source, Label.labeled_at)
            .join(Ticket, Ticket.ticket_id == Label.ticket_id),
        )  # fmt: skip
    if df.empty:
        return df.drop(columns="source")
    df["_rank"] = (df["source"] == "correction").astype(int)
    df = df.sort_values(["ticket_id", "_rank", "labeled_at"]).drop_duplicates("ticket_id", keep="last")
    return df.drop(columns=["_rank", "source"]).sort_values("ticket_id").reset_index(drop=True)
