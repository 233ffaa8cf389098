"""Ingest stage alone on N generated tickets: where the search indexes' cost goes.

    .venv/bin/python bench/ingest.py --db sqlite --n 200000 [--runs 2] [--profile]
    .venv/bin/python bench/ingest.py --db postgresql --n 200000 --revision 0014

The night's Parquet files (bench/run_pipeline.py's generator, seed 1) are generated once into
$TMPDIR/bench-ingest-<n> and reused, so variants compare on the same input back to back. Each run
migrates a fresh database (SQLite file; PostgreSQL schema ``fts_bench_<hex>``, dropped afterwards)
to ``--revision`` (default head: compare with an earlier revision to see a migration's effect),
times ``pipeline.ingest_stage`` and then reports the search index's state: SQLite FTS5 segments
per level, PostgreSQL GIN pending-list pages and index size, and a few searches of the night's own
text (p50 / p95). ``--sql`` runs statements after the migration (to try a setting before it
becomes one). Prints one JSON line per run and the load average; nothing is written to results.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
PG_URL = os.environ.get("TRIAGE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _inbox(n: int) -> Path:
    from run_pipeline import NIGHT, generate_in_child

    inbox = Path(tempfile.gettempdir()) / f"bench-ingest-{n}"
    done = inbox / "done"
    if not done.exists():
        generate_in_child(n, 1, inbox, 100_000)
        done.touch()
    assert (inbox / NIGHT.isoformat()).is_dir()
    return inbox


def _configure(db: str, work: Path, inbox: Path) -> str | None:
    from triage.config import reset_settings
    from triage.store import dispose_engines

    os.environ["TRIAGE_VAR_DIR"] = str(work / "var")
    os.environ["TRIAGE_INBOX_DIR"] = str(inbox)
    schema = None
    if db == "postgresql":
        schema = f"fts_bench_{uuid.uuid4().hex[:8]}"
        os.environ["TRIAGE_DATABASE_URL"], os.environ["TRIAGE_DB_SCHEMA"] = PG_URL, schema
    else:
        os.environ["TRIAGE_DATABASE_URL"] = f"sqlite:///{work / 'var' / 'triage.db'}"
        os.environ.pop("TRIAGE_DB_SCHEMA", None)
    reset_settings()
    dispose_engines()
    return schema


def index_state(conn) -> dict:
    from sqlalchemy import text

    if conn.dialect.name == "sqlite":
        # FTS5 segments (a MATCH reads every one) and the index's size in pages
        segs = conn.execute(text("SELECT count(DISTINCT segid) FROM tickets_fts_idx")).scalar_one()
        pages = conn.execute(text("SELECT count(*) FROM tickets_fts_data")).scalar_one()
        return {"fts_segments": segs, "fts_data_rows": pages}
    pending = None
    if conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'pgstattuple'")).scalar_one():
        schema = conn.execute(
            text("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                 "WHERE e.extname = 'pgstattuple'")
        ).scalar_one()  # fmt: skip
        pending = conn.execute(
            text(f"SELECT pending_pages FROM \"{schema}\".pgstatginindex('ix_tickets_search_trgm'::regclass)")
        ).scalar_one()
    size = conn.execute(text("SELECT pg_relation_size('ix_tickets_search_trgm')")).scalar_one()
    return {"gin_mb": round(size / 2**20, 1), "gin_pending_pages": pending}


def search_sample(k: int) -> dict:
    """k phrases of 4–6 characters cut from stored texts, and k stored ticket ids, through
    search_tickets as an analyst: p50 / p95 ms (the index path is what the settings change)."""
    from sqlalchemy import text

    from triage.auth import Principal
    from triage.search import search_tickets
    from triage.store import get_engine

    rnd = random.Random(5)
    with get_engine().connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM tickets")).scalar_one()
        picks = [rnd.randrange(n) for _ in range(k)]
        rows = [
            conn.execute(text("SELECT ticket_id, text FROM tickets LIMIT 1 OFFSET :o"), {"o": o}).one()
            for o in picks
        ]
    phrases = []
    for _, t in rows:
        s = t.replace(" ", "")
        size = rnd.randint(4, 6)
        at = rnd.randrange(max(1, len(s) - size))
        phrases.append(s[at : at + size])
    who = Principal(0, "bench", "analyst", None)
    out = {}
    for kind, qs in (("ticket_id", [r[0] for r in rows]), ("phrase", phrases)):
        search_tickets(who, qs[0], 20)
        lat, hits = [], 0
        for q in qs:
            t0 = time.perf_counter()
            hits += bool(search_tickets(who, q, 20)["items"])
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        out[kind] = {"p50_ms": round(statistics.median(lat), 1), "p95_ms": round(lat[int(0.95 * len(lat)) - 1], 1),
                     "found": f"{hits}/{len(qs)}"}  # fmt: skip
    return out


_GIN_PENDING = None


def _cpu_self() -> float:
    """CPU seconds of this process and of its finished children (ingest's validation workers)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _cpu_of(pids: list[int]) -> float:
    """CPU seconds (user + system) of processes on this machine: the PostgreSQL backends."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a backend that has exited (its time is lost: reported as a lower bound)
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _calibration() -> float:
    from run_pipeline import cpu_calibration

    return cpu_calibration()


def run_once(args, inbox: Path) -> dict:
    import resource
    import shutil

    from run_pipeline import NIGHT
    from sqlalchemy import text

    import triage.store.db as store_db
    from triage import pipeline
    from triage.store import dispose_engines, get_engine, upgrade

    work = Path(tempfile.mkdtemp(prefix="fts-bench-"))
    schema = _configure(args.db, work, inbox)
    revision = "0014" if args.before else args.revision
    store_db.GIN_MERGE_MEMORY = None if args.before else _GIN_PENDING
    backends: list[int] = []
    try:
        upgrade(revision=revision)
        if args.db == "postgresql":  # the server's CPU time for this ingest: its backends' /proc times
            from sqlalchemy import event

            @event.listens_for(get_engine(), "connect")
            def _pid(dbapi_conn, _record) -> None:
                backends.append(dbapi_conn.info.backend_pid)

            get_engine().dispose()
        if args.sql:
            with get_engine().begin() as conn:
                for stmt in args.sql:
                    conn.execute(text(stmt))
        if args.session:  # every connection of the ingest (a per-session SET, to try one)
            from sqlalchemy import event

            @event.listens_for(get_engine(), "connect")
            def _session(dbapi_conn, _record) -> None:
                cur = dbapi_conn.cursor()
                for setting in args.session:
                    cur.execute(f"SET {setting}")
                cur.close()
                dbapi_conn.commit()

            get_engine().dispose()
        load = [round(x, 2) for x in os.getloadavg()]
        cpu0, pg0 = _cpu_self(), _cpu_of(backends)
        prof = cProfile.Profile() if args.profile else None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        out = pipeline.ingest_stage(NIGHT)
        if prof:
            prof.disable()
        seconds = time.perf_counter() - t0
        cpu, pg_cpu = _cpu_self() - cpu0, _cpu_of(backends) - pg0
        assert out["rows_read"] == args.n and out["rows_new"] == args.n, out
        with get_engine().connect() as conn:
            state = index_state(conn)
        result = {"db": args.db, "n": args.n, "revision": revision, "sql": args.sql, "session": args.session,
                  "ingest_s": round(seconds, 1), "cpu_main_s": round(cpu, 1),
                  "cpu_pg_backends_s": round(pg_cpu, 1) if backends else None, "load_at_start": load,
                  "calibration_s": _calibration(), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "before": args.before, **state}  # fmt: skip
        if args.after:  # e.g. a cleanup step to time separately
            t0 = time.perf_counter()
            with get_engine().begin() as conn:
                for stmt in args.after:
                    conn.execute(text(stmt))
            result["after_s"] = round(time.perf_counter() - t0, 1)
            with get_engine().connect() as conn:
                result["after"] = index_state(conn)
        if args.searches:
            result["search"] = search_sample(args.searches)
        result["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
        if prof:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
            pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return result
    finally:
        dispose_engines()
        if schema:
            import sqlalchemy as sa

            eng = sa.create_engine(PG_URL)
            with eng.begin() as c:
                c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            eng.dispose()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--before", action="store_true",
                    help="the code as before this change: migrate to 0014, no PostgreSQL session settings")  # fmt: skip
    ap.add_argument("--revision", default="head", help="migrate to this revision (default head)")
    ap.add_argument(
        "--sql", action="append", default=[], help="a statement to run after migrating (repeatable)"
    )
    ap.add_argument(
        "--session", action="append", default=[], help="SET this on every connection (repeatable)"
    )
    ap.add_argument("--after", action="append", default=[], help="a statement to time after the ingest")
    ap.add_argument("--searches", type=int, default=50, help="searches per kind after ingest (0: none)")
    ap.add_argument("--profile", action="store_true", help="cProfile the ingest (main process only)")
    args = ap.parse_args()
    import triage.store.db as store_db

    global _GIN_PENDING
    _GIN_PENDING = store_db.GIN_MERGE_MEMORY
    inbox = _inbox(args.n)
    for _ in range(args.runs):
        print(json.dumps(run_once(args, inbox), ensure_ascii=False), flush=True)
    print(f"{dt.datetime.now().isoformat(timespec='seconds')} load {os.getloadavg()}")


if __name__ == "__main__":
    main()
