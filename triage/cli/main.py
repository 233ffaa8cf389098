"""Pipeline commands: db upgrade, ingest, classify, route, run-nightly, dispatch, synth, report, label import."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from triage.cli import beijing, console, err_console, handle_errors, new_typer, print_error, print_problems

TRUTH_COLUMNS = ("category", "true_street_code", "true_community_code")

db_app = new_typer()
label_app = new_typer()

# One spelling everywhere: --date (the night, a Beijing date). --night still works, unlisted, for
# scripts written against the older commands that used it.
NightOpt = Annotated[
    str | None,
    typer.Option("--date", help="夜间批次日期 the night, YYYY-MM-DD (Beijing date); default today"),
]
NightAlias = Annotated[str | None, typer.Option("--night", hidden=True, help="the same as --date")]


def parse_night(value: str | None, alias: str | None = None) -> dt.date:
    from triage.ingest import local_today

    if value and alias and value != alias:
        raise typer.BadParameter(f"--date {value} and --night {alias} disagree: give one")
    value = value or alias
    if not value:
        return local_today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-11-20") from None


@db_app.command("upgrade")
@handle_errors
def db_upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """建表或迁移 Create or migrate the database schema (SQLite file by default, or TRIAGE_DATABASE_URL)."""
    from triage.config import get_settings
    from triage.store import upgrade
    from triage.store.db import redact_url

    rev = upgrade(revision=revision)
    console.print(f"database {redact_url(get_settings().database_url)} at revision {rev}")


@db_app.command("current")
@handle_errors
def db_current() -> None:
    """数据库版本 Show the schema revision of the database and of the code."""
    from triage.store.db import current_revision, head_revision

    console.print(f"database: {current_revision() or 'none'}  code: {head_revision()}")


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def ingest(
        paths: Annotated[list[Path], typer.Argument(help="files or folders (CSV/TSV, JSONL, Parquet, XLSX)")],
        night: NightOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the reports as JSON")] = False,
        night_alias: NightAlias = None,
    ) -> None:
        """导入工单文件 Ingest ticket files: validate, quarantine bad rows with a reason, upsert by ticket_id."""
        from triage.ingest import FileSchemaError, InputFileError, expand_paths, ingest_file
        from triage.store import require_schema
        from triage.store.db import require_writable
        from triage.store.locks import night_lock

        require_writable(reports=False)
        require_schema()
        n = parse_night(night, night_alias)
        files = expand_paths(paths)
        if not files:
            raise InputFileError(f"no supported files in {', '.join(map(str, paths))}")
        failed = 0
        reports = []
        with night_lock(n, "triage ingest", notify=lambda m: err_console.print(m, highlight=False)):
            for f in files:
                try:
                    with console.status(f"ingesting {f} …"):
                        r = ingest_file(f, night=n)
                    reports.append(r.as_dict())
                    if not as_json:
                        console.print(r.summary(), highlight=False)
                except (InputFileError, FileSchemaError) as exc:
                    failed += 1
                    reports.append({"source": str(f), "status": "rejected", "message": str(exc)})
                    print_error(exc)
        if as_json:
            console.print_json(json.dumps(reports, ensure_ascii=False))
        else:
            read = sum(r.get("rows_read", 0) for r in reports)
            up = sum(r.get("rows_new", 0) + r.get("rows_unchanged", 0) for r in reports)
            quar = sum(r.get("rows_quarantined", 0) for r in reports)
            console.print(
                f"[bold]total[/]: {read} rows read = {up} tickets upserted + {quar} quarantined; {failed} file(s) rejected",
                markup=True,
            )
        if failed:
            raise typer.Exit(1)

    @app.command("ingest-sql")
    @handle_errors
    def ingest_sql_cmd(
        url: Annotated[str, typer.Option(help="SQLAlchemy URL of the source database")],
        table: Annotated[str, typer.Option(help="table or view holding tickets")],
        watermark_col: Annotated[str, typer.Option(help="received/updated time column")] = "received_at",
        name: Annotated[
            str | None, typer.Option(help="source name for the watermark (default: table)")
        ] = None,
        night: NightOpt = None,
        night_alias: NightAlias = None,
    ) -> None:
        """增量抽取 Pull new tickets incrementally from a SQL source (watermark on received/updated time)."""
        from triage.ingest import ingest_sql
        from triage.store import require_schema

        require_schema()
        r = ingest_sql(
            url, table, name=name, watermark_column=watermark_col, night=parse_night(night, night_alias)
        )
        console.print(r.summary(), highlight=False)

    @app.command()
    @handle_errors
    def classify(
        shard: Annotated[int, typer.Option(help="this worker's shard")] = 0,
        shards: Annotated[int, typer.Option(help="number of shards")] = 1,
    ) -> None:
        """分类 Classify every ticket that has no prediction yet, with the champion model."""
        from triage.classify.batch import classify_pending
        from triage.store import require_schema

        require_schema()
        with console.status("classifying …"):
            r = classify_pending(shard, shards)
        console.print(f"classified {r['classified']} tickets with {r['model_version']} "
                      f"({r['needs_review']} need review) in {r['seconds']} s")  # fmt: skip

    @app.command()
    @handle_errors
    def route() -> None:
        """派单 Route every classified ticket without a queue item to a street or the centre."""
        from triage.route import route_pending
        from triage.store import require_schema

        require_schema()
        with console.status("routing …"):
            r = route_pending()
        console.print(
            f"routed {r['to_street']} tickets to street queues, {r['to_centre']} to the centre in {r['seconds']} s"
        )

    @app.command("run-nightly")
    @handle_errors
    def run_nightly_cmd(
        night: NightOpt = None,
        inbox: Annotated[
            Path | None,
            typer.Option(help="inbox folder (default TRIAGE_INBOX_DIR; <inbox>/<date>/ if present)"),
        ] = None,
        night_alias: NightAlias = None,
    ) -> None:
        """跑一夜 Run the whole night in this process: ingest → classify → route → hotspots → report."""
        from triage.pipeline import run_nightly

        n = parse_night(night, night_alias)

        def progress(stage: str, counts: dict) -> None:
            console.print(
                f"[bold green]✓[/] {stage}: " + escape(summarize_stage(stage, counts)),
                highlight=False,
                markup=True,
            )

        run_nightly(n, inbox, progress, notify=lambda m: err_console.print(m, highlight=False))

    @app.command()
    @handle_errors
    def dispatch(
        inbox: Annotated[
            Path | None,
            typer.Option(help="inbox folder (default TRIAGE_INBOX_DIR; today's <inbox>/<date>/ if present)"),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """日间派单 intra-day dispatch: ingest the inbox files that arrived since the last run and
        classify and route just their tickets (what the intraday_dispatch DAG runs every 10 minutes)."""
        from triage.pipeline import dispatch_stage
        from triage.store import require_schema

        require_schema()
        c = dispatch_stage(inbox)
        if as_json:
            print(json.dumps(c, ensure_ascii=False, default=str))
            return
        for r in c["reports"]:
            if r["status"] in ("rejected", "waiting"):
                console.print(f"  {r['status']}: {r['source']}: {r.get('message')}", highlight=False)
        console.print(
            f"dispatch: {c['files']} files ({c['ingested_files']} new, {c['skipped_files']} already done, "
            f"{c['waiting_files']} still being written, {c['rejected_files']} rejected); {c['rows_new']} new tickets, "
            f"{c['rows_quarantined']} quarantined; {c['to_street']} to street queues, {c['to_centre']} to the centre "
            f"in {c['seconds']} s",
            highlight=False,
        )

    @app.command()
    @handle_errors
    def status(
        night: NightOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
        night_alias: NightAlias = None,
    ) -> None:
        """夜间状态 What the database holds for a night: files, rows, tickets, queues, the report."""
        from triage.geo import get_gazetteer
        from triage.pipeline import night_status
        from triage.store import require_schema

        require_schema()
        st = night_status(parse_night(night, night_alias))
        if as_json:
            print(json.dumps(st, ensure_ascii=False, default=str))
            return
        gaz = get_gazetteer()
        console.print(f"[bold]night {st['night']}[/]", highlight=False, markup=True)
        for f in st["files"]:
            console.print(f"  file {f['source']}: {f['status']}, {f['rows_read']} rows read, "
                          f"{f['rows_new']} new, {f['rows_unchanged']} unchanged, {f['rows_quarantined']} quarantined"
                          + (f" — {f['message']}" if f["status"] in ("rejected", "failed") else ""), highlight=False)  # fmt: skip
        console.print(
            f"  rows read {st['rows_read']} = {st['rows_upserted']} tickets upserted + {st['rows_quarantined']} quarantined"
            + (
                f" ({', '.join(f'{k} {v}' for k, v in st['quarantine'].items())})" if st["quarantine"] else ""
            ),
            highlight=False,
        )
        console.print(
            f"  tickets {st['tickets']}: classified {st['classified']} ({st['needs_review']} need review); "
            f"street queues {st['to_street']}, centre queue {st['to_centre']}; "
            f"not yet routed {st['unaccounted']}; without deadline {st['without_deadline']}",
            highlight=False,
        )
        if st["top_streets"]:
            busiest = ", ".join(f"{gaz.unit(s).name if gaz.unit(s) else s} {n}" for s, n in st["top_streets"])
            console.print(f"  busiest streets: {busiest}", highlight=False)
        surges = ", ".join(
            f"{gaz.unit(u).name if gaz.unit(u) else u}×{c} {o} (expected {e})"
            for u, c, o, e in st["surges"][:5]
        )
        by_level = ", ".join(f"{n} {lvl}" for lvl, n in sorted(st["surges_by_level"].items(), reverse=True))
        console.print(
            f"  hotspots: {len(st['surges'])} surges{f' ({by_level})' if by_level else ''}"
            f"{': ' + surges if surges else ''}; "
            f"{st['events']} events; {st['open_proactive_tasks']} open proactive tasks",
            highlight=False,
        )
        written = (
            f" (written {beijing(st['report_written_at'])})"
            if st["report"] and st["report_written_at"]
            else ""
        )
        console.print(
            f"  report: {st['report'] or 'not written yet (triage report --date …)'}{written}",
            highlight=False,
        )

    @app.command()
    @handle_errors
    def report(
        night: NightOpt = None,
        out: Annotated[Path | None, typer.Option(help="output HTML file")] = None,
        month: Annotated[
            str | None, typer.Option("--month", help="write the monthly edition for YYYY-MM instead")
        ] = None,
        night_alias: NightAlias = None,
    ) -> None:
        """生成报告 Write the night's HTML report (with the analysts' hotspot sections), or the monthly edition."""
        from triage.store import require_schema

        require_schema()
        if month:
            from triage.report.analysts import write_monthly_report

            try:
                dt.date.fromisoformat(f"{month}-01")
            except ValueError:
                raise typer.BadParameter(f"{month!r} is not a month like 2026-11") from None
            path = write_monthly_report(month, out)
        else:
            from triage.pipeline import report_stage

            # through the ledger, as run-nightly does: the time it was written is kept there
            path = report_stage(parse_night(night, night_alias), out)["report"]
        console.print(f"report written to {path}")

    @app.command()
    @handle_errors
    def synth(
        n: Annotated[int, typer.Option("--n", help="number of tickets")] = 1000,
        seed: Annotated[int, typer.Option(help="random seed (same seed, same file)")] = 0,
        out: Annotated[Path, typer.Option(help="output file: .csv .jsonl .parquet .xlsx")] = Path(
            "tickets.csv"
        ),
        labeled: Annotated[
            bool, typer.Option("--labeled/--unlabeled", help="include the true category")
        ] = False,
        start: Annotated[str | None, typer.Option(help="first day YYYY-MM-DD")] = None,
        end: Annotated[str | None, typer.Option(help="last day YYYY-MM-DD")] = None,
        encoding: Annotated[str, typer.Option(help="text encoding for CSV: utf-8 or gb18030")] = "utf-8",
    ) -> None:
        """生成模拟工单 Generate realistic synthetic Beijing tickets (seeded)."""
        from triage.synth import generate_tickets
        from triage.tables import write_table

        res = generate_tickets(
            n, seed, start=dt.date.fromisoformat(start) if start else None,
            end=dt.date.fromisoformat(end) if end else None, labeled=labeled,
        )  # fmt: skip
        cols = [c for c in res.tickets.columns if labeled or c not in TRUTH_COLUMNS]
        write_table(res.tickets[cols], out, encoding=encoding)
        console.print(f"wrote {len(res.tickets)} tickets to {out}")


def summarize_stage(stage: str, c: dict) -> str:
    if stage == "ingest":
        return (f"{c['files']} files, {c['rows_read']} rows read = {c['rows_new'] + c['rows_unchanged']} upserted "
                f"({c['rows_new']} new) + {c['rows_quarantined']} quarantined; {c['rejected_files']} rejected"
                + (f", {c['failed_files']} changed while read (run again)" if c.get("failed_files") else ""))  # fmt: skip
    if stage == "classify":
        return f"{c['classified']} classified with {c['model_version']}, {c['needs_review']} need review"
    if stage == "route":
        return f"{c['to_street']} to street queues, {c['to_centre']} to the centre"
    if stage == "hotspots":
        return (f"{c['surges']} surges (of {c['series_tested']} series tested), {c['events']} events, "
                f"{c['scan_clusters']} space-time clusters over {c['tickets_in_window']} tickets in the window "
                f"({c['places_read']} read for place names, the others' kept from earlier nights)"
                + (f"; note: {'; '.join(c['notes'][:3])}" if c.get("notes") else ""))  # fmt: skip
    if stage == "proactive":
        return (f"{c['tasks_created']} proactive tasks created, {c['tasks_updated']} updated, "
                f"{c['tasks_unchanged']} unchanged (of {c['tasks_planned']} planned)")  # fmt: skip
    if stage == "report":
        return f"report at {c['report']}"
    # a stage added later without a summary here: its counts as "key value", never raw JSON
    return ", ".join(f"{k} {v}" for k, v in c.items() if not isinstance(v, dict | list))


@label_app.command("import")
@handle_errors
def label_import(
    path: Annotated[Path, typer.Argument(help="file with ticket_id, category, labeled_by")],
) -> None:
    """导入人工标注 Import human labels (ticket_id, category, labeled_by) for retraining."""
    from triage.labels import import_labels

    r = import_labels(path)
    for w in r["warnings"]:
        err_console.print(f"warning: {w}", highlight=False)
    console.print(
        f"{r['rows']} rows: {r['new']} new, {r['unchanged']} unchanged, {r['changed']} changed, "
        f"{r['rejected']} rejected"
        + (f"; {r['repeated']} identical repeats stored once" if r["repeated"] else ""),
        highlight=False,
    )
    print_problems(r["problems"])
    if any("is not a category code or name" in p for p in r["problems"]):
        from triage.taxonomy import load_taxonomy

        cats = load_taxonomy().categories.values()
        console.print("  categories (code or name): " + ", ".join(f"{c.code} {c.name}" for c in cats))
    if r["rejected"]:
        raise typer.Exit(1)
