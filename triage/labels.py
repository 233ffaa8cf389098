"""Human labels for retraining: imported files and analysts' corrections go to ``labels``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from triage.store import Label, Ticket, get_engine, read_frame, upsert
from triage.store.models import utcnow
from triage.tables import cell_text, read_table, require_columns, row_numbers
from triage.taxonomy import load_taxonomy


def import_labels(path: Path | str, source: str = "import") -> dict[str, Any]:
    """Rows need ticket_id, category (code or Chinese name) and labeled_by. Unknown tickets or
    categories and an empty labeled_by cell are rejected with their row number; a file without a
    labeled_by column is stored as labelled by the file's name, and ``warnings`` says so. The rest
    are stored: ``new`` labels, ``changed`` ones (the same person's earlier label of the ticket
    replaced) and ``unchanged`` ones (already stored as they are: not rewritten, so importing a
    file twice changes nothing). One person labelling a ticket twice in the same file with
    different categories is a conflict: all those rows are rejected; an identical repeat is stored
    once (``repeated``)."""
    df = read_table(path)
    require_columns(df, ["ticket_id", "category"], str(path))
    tax = load_taxonomy()
    engine = get_engine()
    ids = [cell_text(v) for v in df["ticket_id"]]
    with engine.connect() as conn:
        known: set[str] = set()
        for i in range(0, len(ids), 900):
            known.update(
                r[0]
                for r in conn.execute(select(Ticket.ticket_id).where(Ticket.ticket_id.in_(ids[i : i + 900])))
            )
    problems, warnings = [], []
    now = utcnow()
    cats = [cell_text(v) for v in df["category"]]
    if "labeled_by" in df.columns:
        bys = [cell_text(v) for v in df["labeled_by"]]
    else:  # a whole file from one source: say who the labels will be credited to
        bys = [Path(path).name] * len(df)
        warnings.append(f"{path}: no 'labeled_by' column; labels stored as labelled by {Path(path).name!r}")
    usable: dict[tuple[str, str], list[tuple[int, str]]] = {}  # (ticket, labeller) → [(row, code)]
    for n, tid, cat, by in zip(row_numbers(Path(path), len(df)), ids, cats, bys, strict=True):
        code = tax.code_for(cat) if cat else None
        if not tid:
            problems.append(f"{path}, row {n}, field 'ticket_id': empty")
        elif tid not in known:
            problems.append(f"{path}, row {n}: ticket_id {tid!r} is not in the database")
        elif not cat:
            problems.append(f"{path}, row {n}, field 'category': empty")
        elif code is None:
            problems.append(f"{path}, row {n}, field 'category': {cat!r} is not a category code or name")
        elif not by:  # who labelled it decides which label wins later: never guessed
            problems.append(f"{path}, row {n}, field 'labeled_by': empty (who gave this label?)")
        else:
            usable.setdefault((tid, by), []).append((n, code))
    stored, rejected, repeated = [], len(problems), 0
    for (tid, by), seen in usable.items():
        if len({code for _, code in seen}) > 1:  # one person, two answers: ask, do not guess
            problems.append(
                f"{path}, rows {', '.join(str(n) for n, _ in seen)}: {by!r} labels ticket {tid!r} "
                f"{' / '.join(code for _, code in seen)}; none is stored — keep one"
            )
            rejected += len(seen)
            continue
        repeated += len(seen) - 1
        stored.append(
            {"ticket_id": tid, "category": seen[0][1], "labeled_by": by, "source": source, "labeled_at": now}
        )
    with engine.begin() as conn:
        before: dict[tuple[str, str], str] = {}
        tids = sorted({r["ticket_id"] for r in stored})
        for i in range(0, len(tids), 900):
            before.update(
                ((t, b), c)
                for t, b, c in conn.execute(
                    select(Label.ticket_id, Label.labeled_by, Label.category).where(
                        Label.ticket_id.in_(tids[i : i + 900])
                    )
                )
            )
        write = [r for r in stored if before.get((r["ticket_id"], r["labeled_by"])) != r["category"]]
        upsert(
            conn, Label.__table__, write, ["ticket_id", "labeled_by"], ["category", "source", "labeled_at"]
        )
    new = sum((r["ticket_id"], r["labeled_by"]) not in before for r in write)
    return {"rows": len(df), "imported": len(stored), "new": new, "changed": len(write) - new,
            "unchanged": len(stored) - len(write), "rejected": rejected, "repeated": repeated,
            "problems": problems, "warnings": warnings}  # fmt: skip


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
    # an operator's decision at the review desk is a correction too (whether it agreed or not)
    df["_rank"] = df["source"].isin(("correction", "review")).astype(int)
    df = df.sort_values(["ticket_id", "_rank", "labeled_at"]).drop_duplicates("ticket_id", keep="last")
    return df.drop(columns=["_rank", "source"]).sort_values("ticket_id").reset_index(drop=True)
