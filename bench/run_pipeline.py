"""End-to-end benchmark of the nightly pipeline (`make bench BENCH_N=100000 BENCH_DB=sqlite`).

Generates its own input with the project's generator (N tickets of one night, written as Parquet
files the way the hotline's export drops them), migrates a fresh database (SQLite file in a temp
folder, or a fresh schema on the local PostgreSQL), and runs the stages exactly as the DAG does:
ingest → classify and route (each sharded over processes, one per core) → hotspots → proactive → report.
The night has no history here, so hotspots measures the stage's cost on the night itself; the
90-day-window cost is measured by bench/hotspots.py. Prints a table and
writes ``bench/results/pipeline-<db>-<n>.json``.

Peak memory is reported per process: the parent (ingest, route, hotspots, report) and the largest
classify worker; the input is generated in a separate process so it does not count.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NIGHT = dt.date(2026, 11, 20)
PG_URL = os.environ.get("TRIAGE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def generate_inbox(n: int, seed: int, inbox: Path, file_rows: int) -> float:
    from triage.synth import generate_tickets
    from triage.tables import write_table

    t0 = time.perf_counter()
    folder = inbox / NIGHT.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    df = generate_tickets(n, seed=seed, start=NIGHT, end=NIGHT, labeled=False).tickets
    for i, start in enumerate(range(0, n, file_rows)):
        write_table(df.iloc[start : start + file_rows], folder / f"export-{i:03d}.parquet")
    return time.perf_counter() - t0


def cpu_calibration() -> float:
    """Seconds for a fixed pure-Python loop. Machines of the same kind differ in speed (the same
    code ran the 100k bench in 76 s on one 2-core machine and ~190 s on another), so every
    result carries this figure to compare machines by."""
    t0 = time.perf_counter()
    total = 0
    for i in range(20_000_000):
        total += i
    return round(time.perf_counter() - t0, 2)


def database_mb(schema: str | None, work: Path) -> float:
    """Space the night takes in the database: tables and indexes (PostgreSQL) or the file (SQLite)."""
    if schema is None:
        return round((work / "var" / "triage.db").stat().st_size / 2**20)
    import sqlalchemy as sa

    from triage.store import get_engine

    with get_engine().connect() as c:
        size = c.execute(
            sa.text("SELECT sum(pg_total_relation_size(format('%I.%I', schemaname, tablename))) "
                    "FROM pg_tables WHERE schemaname = :s"), {"s": schema},
        ).scalar_one()  # fmt: skip
    return round(int(size) / 2**20)


def _shard_worker(stage: str, shard: int, n_shards: int, queue: mp.Queue) -> None:
    from triage import pipeline

    out = getattr(pipeline, f"{stage}_stage")(NIGHT, shard, n_shards)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(out)


def _generate_worker(n: int, seed: int, inbox: str, file_rows: int, queue: mp.Queue) -> None:
    queue.put(generate_inbox(n, seed, Path(inbox), file_rows))


def generate_in_child(n: int, seed: int, inbox: Path, file_rows: int) -> float:
    """Generate in a separate process so the pipeline's own peak memory is what gets measured."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_generate_worker, args=(n, seed, str(inbox), file_rows, queue))
    p.start()
    seconds = queue.get()
    p.join()
    return seconds


def in_parallel(stage: str, n_shards: int) -> list[dict]:
    """One process per shard, like one Airflow task per shard on a worker."""
    ctx = mp.get_context("spawn")  # a fresh interpreter per worker, as Airflow's task runner has
    queue = ctx.Queue()
    procs = [ctx.Process(target=_shard_worker, args=(stage, k, n_shards, queue)) for k in range(n_shards)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"{stage} worker failed with exit code {p.exitcode}")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="tickets in the night")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--shards", type=int, default=os.cpu_count() or 2, help="classify processes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--file-rows", type=int, default=100_000, help="rows per generated Parquet file")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder / PostgreSQL schema")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="triage-bench-"))
    os.environ["TRIAGE_VAR_DIR"] = str(work / "var")
    os.environ["TRIAGE_INBOX_DIR"] = str(work / "inbox")
    schema = None
    if args.db == "postgresql":
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        os.environ["TRIAGE_DATABASE_URL"] = PG_URL
        os.environ["TRIAGE_DB_SCHEMA"] = schema
    else:
        os.environ["TRIAGE_DATABASE_URL"] = f"sqlite:///{work / 'var' / 'triage.db'}"
        os.environ.pop("TRIAGE_DB_SCHEMA", None)

    from triage import pipeline
    from triage.store import upgrade

    load_at_start = [round(x, 2) for x in os.getloadavg()]  # before our own processes add to it
    calibration_s = cpu_calibration()
    gen_s = generate_in_child(args.n, args.seed, work / "inbox", args.file_rows)
    upgrade()
    stages: dict[str, dict] = {}

    def timed(name: str, fn):
        t0 = time.perf_counter()
        out = fn()
        stages[name] = {
            "seconds": round(time.perf_counter() - t0, 2),
            # the main process's high-water mark so far: the stage that raises it sets the peak
            "main_peak_rss_mb_after": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        print(f"  {name:<9} {stages[name]['seconds']:>8.1f} s", flush=True)
        return out

    print(f"bench: {args.n:,} tickets, {args.db}, {args.shards} classify process(es), work dir {work}")
    ing = timed("ingest", lambda: pipeline.ingest_stage(NIGHT))
    cls = timed("classify", lambda: in_parallel("classify", args.shards))
    routes = timed("route", lambda: in_parallel("route", args.shards))
    rte = {k: sum(r[k] for r in routes) for k in ("to_street", "to_centre")}
    timed("hotspots", lambda: pipeline.hotspots_stage(NIGHT))
    timed("proactive", lambda: pipeline.proactive_stage(NIGHT))
    timed("report", lambda: pipeline.report_stage(NIGHT))
    total = sum(s["seconds"] for s in stages.values())
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_child = max(r["peak_rss_mb"] for r in [*cls, *routes])

    assert ing["rows_read"] == args.n, ing  # every generated row was read
    classified = sum(r["classified"] for r in cls)
    result = {
        "n": args.n,
        "db": args.db,
        "shards": args.shards,
        "generated_in_s": round(gen_s, 1),
        "stages": stages,
        "total_s": round(total, 1),
        "tickets_per_s": round(args.n / total),
        "rows_new": ing["rows_new"],
        "rows_quarantined": ing["rows_quarantined"],
        "classified": classified,
        "routed": {"street": rte.get("to_street"), "centre": rte.get("to_centre")},
        "peak_rss_mb": {"main": round(rss_self), "largest_worker": round(rss_child)},
        "database_mb": database_mb(schema, work),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "python_loop_20M_s": calibration_s,
            "python_loop_20M_s_at_end": cpu_calibration(),
            "load_average_at_start": load_at_start,
        },
        "measured_at": dt.datetime.now().isoformat(timespec="seconds"),
    }
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"pipeline-{args.db}-{args.n}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")

    print()
    print("| stage | seconds | tickets/s |\n|---|---:|---:|")
    for name, s in stages.items():
        print(f"| {name} | {s['seconds']:.1f} | {args.n / max(s['seconds'], 1e-9):,.0f} |")
    print(f"| **total** | **{total:.1f}** | **{args.n / total:,.0f}** |")
    print(f"peak RSS: main {rss_self:,.0f} MB, largest worker {rss_child:,.0f} MB; "
          f"{ing['rows_new']:,} new, {ing['rows_quarantined']:,} quarantined, {classified:,} classified; "
          f"database {result['database_mb']:,} MB")  # fmt: skip
    print(f"written {out}")

    if schema and not args.keep:
        import sqlalchemy as sa

        from triage.store import dispose_engines

        dispose_engines()
        eng = sa.create_engine(PG_URL)
        with eng.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        eng.dispose()
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
