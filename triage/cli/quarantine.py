"""`triage quarantine list --date D [--reason R] [--json]`: the rows a night could not use."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from triage.cli import console, handle_errors, new_typer
from triage.cli.main import NightAlias, NightOpt, parse_night

app = new_typer(help="隔离行 quarantined rows a night could not use")


def quarantined_rows(
    night: Any, reason: str | None = None, limit: int | None = None
) -> tuple[int, list[dict]]:
    """(total, rows) of a night's quarantine, in file and row order. Raw values were masked when
    stored; they are masked again on the way out (older rows, text typed by staff)."""
    from sqlalchemy import func, select

    from triage.store import Quarantine, get_engine
    from triage.text import mask_text

    q = Quarantine.__table__
    where = [q.c.night == night] + ([q.c.reason_code == reason] if reason else [])
    with get_engine().connect() as conn:
        total = conn.execute(select(func.count()).select_from(q).where(*where)).scalar_one()
        rows = conn.execute(
            select(q.c.source, q.c.row_number, q.c.ticket_id, q.c.field, q.c.reason_code, q.c.reason, q.c.raw)
            .where(*where).order_by(q.c.source, q.c.row_number, q.c.id).limit(limit)
        ).mappings().all()  # fmt: skip
    out = [
        {
            "source": r["source"], "row": r["row_number"], "ticket_id": mask_text(r["ticket_id"]),
            "field": r["field"], "reason_code": r["reason_code"], "reason": mask_text(r["reason"]),
            "raw": {str(k): mask_text(v) if isinstance(v, str) else v for k, v in (r["raw"] or {}).items()},
        }
        for r in rows
    ]  # fmt: skip
    return total, out


@app.command("list")
@handle_errors
def list_(
    night: NightOpt = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="隔离原因 only this reason code (empty_text, bad_timestamp, …)"),
    ] = None,
    limit: Annotated[int, typer.Option(help="显示行数 rows to show (0 = all)")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON print JSON lines, one row each")] = False,
    night_alias: NightAlias = None,
) -> None:
    """隔离行 Rows of a night that were quarantined: file, row, field, reason and masked values."""
    from triage.store import require_schema

    require_schema()
    n = parse_night(night, night_alias)
    total, rows = quarantined_rows(n, reason, limit or None)
    if as_json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False, default=str))
        return
    what = f"night {n}" + (f", reason {reason}" if reason else "")
    if not total:
        console.print(f"no quarantined rows for {what}", highlight=False)
        return
    console.print(f"{total} quarantined row(s) for {what}:", highlight=False)
    for r in rows:
        values = ", ".join(f"{k}={v}" for k, v in r["raw"].items() if v not in (None, ""))
        where = f"{r['source']}, row {r['row']}" + (f", field '{r['field']}'" if r["field"] else "")
        reason = r["reason"] or ""
        reason = reason[len(where) + 2 :] if reason.startswith(where + ": ") else reason  # said once
        console.print(
            f"  {where}: [{r['reason_code']}] {reason}" + (f"\n      {values[:300]}" if values else ""),
            highlight=False,
        )
    if total > len(rows):
        console.print(f"  … and {total - len(rows)} more (--limit 0 shows all)", highlight=False)
