"""Human labels for retraining: imported files and analysts' corrections go to ``labels``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from triage.store import Label, Ticket, get_engine, upsert
from triage.store.models import utcnow
from triage.tables import read_table, require_columns
from triage.taxonomy import load_taxonomy


def import_labels(path: Path | str, source: str = "import") -> dict[str, Any]:
    """Rows need ticket_id and category (code or Chinese name); labeled_by defaults to the file
    name. Unknown tickets or categories are rejected with their row number; the rest are stored
    (a newer label by the same person replaces the older)."""
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
    rows, problems = [], []
    default_by = Path(path).name
    now = utcnow()
    for n, (tid, cat, by) in enumerate(
        zip(ids, df["category"].astype(str), df.get("labeled_by", [default_by] * len(df)), strict=True),
        start=2,
    ):
        code = tax.code_for(cat.strip())
        if tid not in known:
            problems.append(f"{path}, row {n}: ticket_id {tid!r} is not in the database")
        elif code is None:
            problems.append(f"{path}, row {n}, field 'category': {cat!r} is not a category code or name")
        else:
            rows.append(
                {
                    "ticket_id": tid,
                    "category": code,
                    "labeled_by": str(by or default_by),
                    "source": source,
                    "labeled_at": now,
                }
            )
    with engine.begin() as conn:
        upsert(conn, Label.__table__, rows, ["ticket_id", "labeled_by"], ["category", "source", "labeled_at"])
    return {"rows": len(df), "imported": len(rows), "rejected": len(problems), "problems": problems}
