"""`triage hotspots …`: events on any ticket file, and the nightly/monthly hotspot stages by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from triage.cli import console, handle_errors, new_typer
from triage.cli.main import NightAlias, NightOpt

app = new_typer()


@app.command()
@handle_errors
def events(
    input: Annotated[Path, typer.Option("--input", help="CSV/TSV, JSONL, Parquet or XLSX file of tickets")],
    id_col: Annotated[str, typer.Option("--id-col", help="ticket id column")],
    text_col: Annotated[str, typer.Option("--text-col", help="complaint text column")],
    time_col: Annotated[str, typer.Option("--time-col", help="received time column")],
    title_col: Annotated[str | None, typer.Option("--title-col", help="title column")] = None,
    votes_col: Annotated[str | None, typer.Option("--votes-col", help="likes/support column")] = None,
    caller_col: Annotated[str | None, typer.Option("--caller-col", help="caller / user id column")] = None,
    window_days: Annotated[int, typer.Option("--window-days", help="sliding window in days")] = 90,
    top: Annotated[int, typer.Option("--top", help="how many events to print")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list sorted by score")] = False,
) -> None:
    """热点事件 Group tickets about the same place and problem into events, ranked by heat score."""
    import time

    from triage.hotspots.events import EventParams, cluster_events
    from triage.tables import read_table, require_columns
    from triage.text import clean_text

    t0 = time.perf_counter()
    df = read_table(input)
    require_columns(df, [id_col, text_col, time_col, title_col, votes_col, caller_col], str(input))
    # a file straight from a message board: normalise and mask phone/ID numbers before anything is
    # printed (the title shown is a member's title, or the start of its text)
    for col in (text_col, title_col):
        if col:
            df[col] = df[col].map(lambda v: clean_text(v) if isinstance(v, str) else v)
    ev, _ = cluster_events(
        df, id_col, text_col, time_col, title_col=title_col, votes_col=votes_col, caller_col=caller_col,
        params=EventParams(window_days=window_days),
    )  # fmt: skip
    ev = ev.head(top)
    if as_json:
        cols = ["event_id", "score", "size", "first_seen", "last_seen", "days_active", "growth", "recent_7d",
                "callers", "repeat_callers", "votes", "place", "title", "member_ids", "kind", "voices",
                "baseline_7d", "surprise"]  # fmt: skip
        recs = json.loads(ev[cols].to_json(orient="records", force_ascii=False))
        typer.echo(json.dumps(recs, ensure_ascii=False, indent=1))
        return
    console.print(f"{len(df)} rows, {ev.attrs.get('skipped', 0)} without a usable time; "
                  f"{len(ev)} events shown in {time.perf_counter() - t0:.1f} s", highlight=False)  # fmt: skip
    for i, e in enumerate(ev.itertuples(), 1):
        console.print(
            f"{i:>3}. [bold]{e.score:.2f}[/] {e.size:>4} 件 {e.first_seen[:10]}–{e.last_seen[:10]} "
            f"{'[机构] ' if e.kind == 'org' else ''}{escape(e.place if isinstance(e.place, str) else '-')} | "
            f"{escape(e.title)}", highlight=False, markup=True,
        )  # fmt: skip


@app.command()
@handle_errors
def run(
    night: NightOpt = None,
    proactive: Annotated[
        bool, typer.Option("--proactive/--no-proactive", help="also write proactive tasks")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the stages' counts as JSON")] = False,
    night_alias: NightAlias = None,
) -> None:
    """热点阶段 Run the nightly hotspot stage (and the proactive-task stage) for a night, as the DAG does."""
    from triage.cli.main import parse_night, summarize_stage
    from triage.pipeline import hotspots_stage, proactive_stage
    from triage.store import require_schema

    require_schema()
    n = parse_night(night, night_alias)
    out = {"hotspots": hotspots_stage(n)}
    if proactive:
        out["proactive"] = proactive_stage(n)
    for stage, counts in out.items():
        if not as_json:
            console.print(f"[bold green]✓[/] {stage}: " + escape(summarize_stage(stage, counts)), markup=True)
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))


@app.command()
@handle_errors
def surges(
    night: NightOpt = None,
    all_series: Annotated[bool, typer.Option("--all", help="every stored series, not only signals")] = False,
    night_alias: NightAlias = None,
) -> None:
    """激增信号 The stored surge signals of a night: observed, expected, p, q."""
    from sqlalchemy import select

    from triage.cli.main import parse_night
    from triage.store import HotspotSignal, get_engine, require_schema

    require_schema()
    q = (
        select(HotspotSignal)
        .where(HotspotSignal.night == parse_night(night, night_alias))
        .order_by(HotspotSignal.q_value)
    )
    if not all_series:
        q = q.where(HotspotSignal.significant)
    with get_engine().connect() as conn:
        rows = conn.execute(q).all()
    for r in rows:
        console.print(f"{r.level:<8} {r.unit_code:<10} {r.category:<28} obs {r.observed:>4} exp {r.expected:>7.2f} "
                      f"p {r.p_value:.2e} q {r.q_value:.2e} {r.method}", highlight=False)  # fmt: skip
    console.print(f"{len(rows)} row(s)")


@app.command()
@handle_errors
def governance(
    month: Annotated[str, typer.Option("--month", help="YYYY-MM")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """治理清单与三率 治理类街乡镇 candidates, 每月一题 themes and the three-rates scoreboard of a month."""
    from triage.hotspots.governance import month_bounds
    from triage.report.analysts import scoreboard
    from triage.store import require_schema

    require_schema()
    start, end = month_bounds(month)
    b = scoreboard(start, end, month)
    if as_json:
        typer.echo(json.dumps(b, ensure_ascii=False, indent=1, default=str))
        return
    console.print(
        f"[bold]{b['month']}[/] candidates: {len(b['candidates'])}, themes: {len(b['themes'])}", markup=True
    )
    for c in b["candidates"]:
        console.print(
            f"  治理类候选 {c['name']} ({c['district']}) {c['volume']} 件, trend {c['trend']}",
            highlight=False,
        )
    for t in b["themes"]:
        console.print(
            f"  每月一题候选 {t['name']}: {t['volume']} 件, {t['streets']} 个街乡镇", highlight=False
        )
