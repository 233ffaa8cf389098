"""`triage queue show|export --street CODE|NAME`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from triage.cli import console, handle_errors, new_typer, print_problems

app = new_typer()
StreetOpt = Annotated[
    str, typer.Option("--street", help="street code or name (望京街道, 沙河镇), or 'centre'")
]


def _street(value: str) -> str:
    from triage.queues import UnknownStreet, street_code_for

    try:
        return street_code_for(value)
    except UnknownStreet as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
@handle_errors
def show(
    street: StreetOpt,
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="only overdue items")] = False,
    limit: Annotated[int, typer.Option(help="rows to show")] = 30,
) -> None:
    """查看队列 Print a street's queue, soonest deadline first."""
    from rich.table import Table
    from rich.text import Text

    from triage.config import get_settings
    from triage.geo import get_gazetteer
    from triage.queues import list_queue
    from triage.store import require_schema

    require_schema()
    code = _street(street)
    total, items = list_queue(code, status=status, overdue=True if overdue else None, limit=limit)
    unit = get_gazetteer().unit(code)
    tz = get_settings().tz
    table = Table(title=f"{unit.name if unit else code} ({code}) — {total} items", show_lines=False)
    for col in ("id", "ticket", "category", "tier", "due (Beijing)", "status", "text"):
        table.add_column(col)
    for it in items:
        due = it["due_at"].astimezone(tz).strftime("%m-%d %H:%M")
        table.add_row(
            str(it["id"]), it["ticket_id"] or "", it["category"] or "", it["sla_tier"],
            Text(f"{due} 超期", style="red") if it["overdue"] else due, it["status"], (it["text"] or "")[:40],
        )  # fmt: skip
    console.print(table)


@app.command()
@handle_errors
def export(
    street: StreetOpt,
    out: Annotated[Path, typer.Option(help="output .csv or .xlsx")],
) -> None:
    """导出队列 Export a street's whole queue as a spreadsheet (CSV or XLSX)."""
    from triage.queues import export_queue
    from triage.store import require_schema

    require_schema()
    n = export_queue(_street(street), out)
    console.print(f"{n} items → {out}")


@app.command("import-closed")
@handle_errors
def import_closed(
    path: Annotated[
        Path, typer.Argument(help="CSV/XLSX/JSONL with ticket_id, status, resolved_at, satisfaction")
    ],
) -> None:
    """导入结案 Apply a closed-ticket extract (tickets handled outside the API) in bulk, with audit events."""
    from triage.lifecycle import ingest_closed_extract
    from triage.store import require_schema

    require_schema()
    r = ingest_closed_extract(path, actor=f"import:{path.name}")
    console.print(
        f"{r['rows']} rows: {r['updated']} updated, {r['unchanged']} unchanged, {r['rejected']} rejected"
    )
    print_problems(r["problems"])
    if r["rejected"]:
        raise typer.Exit(1)
