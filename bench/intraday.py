"""Intra-day dispatch benchmark (issue 18), through the CLI as an operator's cron would run it.

Generates its input with the project's generator, migrates a fresh database (SQLite file in a temp
folder, or a fresh schema on the local PostgreSQL), loads ``--history`` tickets of earlier nights
(so the tables are not empty), then measures, each as a `triage dispatch --json` process (start-up
included):

1. nothing new (empty folder of today);
2. **landing → street queue:** a file of ``--landing`` tickets (a tenth reporting a gas leak, so
   emergency) is written under a hidden name and renamed into today's folder at t0; `triage
   dispatch` is run back to back until its emergency tickets are in the street queue. The figure
   includes the settle rule's wait (TRIAGE_INTRADAY_SETTLE_SECONDS, default 10 s);
3. nothing new again (the day's file is in the ledger, every ticket routed);
4. one run with ``--big`` new tickets (a settled file).

Prints the figures with the machine's load and writes ``bench/results/intraday-<db>.json``.
Usage: ``.venv/bin/python bench/intraday.py --db sqlite``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_URL = os.environ.get("TRIAGE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TRIAGE = Path(sys.executable).with_name("triage")


def tickets(n: int, seed: int, prefix: str, day: dt.date, emergency_every: int = 0):
    from triage.synth import generate_tickets

    df = generate_tickets(n, seed=seed, start=day, end=day, labeled=False, id_prefix=prefix).tickets
    if emergency_every:
        hit = df.index[::emergency_every]
        df.loc[hit, "text"] = df.loc[hit, "text"] + "，楼道里有燃气泄漏的味道，请马上处理"
    return df


CPU: dict[str, float] = {}  # CPU seconds (user + sys) of the last dispatch process: load-independent


def dispatch(inbox: Path, env: dict[str, str]) -> tuple[float, dict]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(TRIAGE), "dispatch", "--inbox", str(inbox), "--json"], env=env, capture_output=True, text=True
    )
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["last"] = round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return took, json.loads(out.stdout)


def emergencies_queued(prefix: str) -> int:
    from sqlalchemy import func, select

    from triage.store import QueueItem, get_engine

    with get_engine().connect() as c:
        return c.execute(
            select(func.count()).select_from(QueueItem)
            .where(QueueItem.ticket_id.like(f"{prefix}%"), QueueItem.sla_tier == "emergency",
                   QueueItem.queue == "street")
        ).scalar_one()  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--history", type=int, default=20_000, help="tickets of earlier nights loaded first")
    ap.add_argument("--landing", type=int, default=500)
    ap.add_argument("--big", type=int, default=5_000)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-intraday-"))
    env = {**os.environ, "TRIAGE_VAR_DIR": str(work / "var")}
    schema = None
    if args.db == "postgresql":
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        env.update(TRIAGE_DATABASE_URL=PG_URL, TRIAGE_DB_SCHEMA=schema)
    else:
        env.update(TRIAGE_DATABASE_URL=f"sqlite:///{work / 'var' / 'triage.db'}")
        env.pop("TRIAGE_DB_SCHEMA", None)
    os.environ.update({k: v for k, v in env.items() if k.startswith("TRIAGE_")})
    if schema is None:
        os.environ.pop("TRIAGE_DB_SCHEMA", None)

    from triage.ingest.loader import local_today
    from triage.pipeline import classify_stage, ingest_stage, route_stage
    from triage.store import upgrade
    from triage.tables import write_table

    upgrade()
    today = local_today()
    yesterday = today - dt.timedelta(days=1)
    inbox = work / "inbox"
    load0 = os.getloadavg()
    if args.history:  # earlier nights, through the night's own stages
        past = today - dt.timedelta(days=3)
        write_table(tickets(args.history, 1, "H", past), inbox / past.isoformat() / "history.parquet")
        ingest_stage(past, inbox)
        classify_stage(past)
        route_stage(past)
    folder = inbox / today.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    res: dict = {"db": args.db, "history": args.history, "cores": os.cpu_count(), "machine": platform.node()}

    res["nothing_new_empty_s"], _ = dispatch(inbox, env)
    res["nothing_new_empty_cpu_s"] = CPU["last"]

    # a file lands (written under a hidden name, renamed into place) and is dispatched
    part = write_table(tickets(args.landing, 2, "L", yesterday, emergency_every=10), folder / ".landing.csv")
    t0 = time.perf_counter()
    part.rename(folder / "landing.csv")
    runs = []
    while True:
        took, out = dispatch(inbox, env)
        runs.append({"seconds": round(took, 2), "cpu_s": CPU["last"], "new": out["rows_new"], "waiting": out["waiting_files"],
                     "to_street": out["to_street"]})  # fmt: skip
        if emergencies_queued("L") and out["waiting_files"] == 0:
            break
        if time.perf_counter() - t0 > 300:
            raise SystemExit(f"the landing file was not dispatched within 300 s: {runs}")
    res["landing_to_queue_s"] = round(time.perf_counter() - t0, 2)
    res["landing_runs"] = runs
    res["landing_emergencies_in_street_queue"] = emergencies_queued("L")

    res["nothing_new_after_s"], _ = dispatch(inbox, env)
    res["nothing_new_after_cpu_s"] = CPU["last"]

    big = write_table(tickets(args.big, 3, "B", yesterday), folder / "big.parquet")
    t = time.time() - 60
    os.utime(big, (t, t))  # settled: this figure is the run itself
    took, out = dispatch(inbox, env)
    res["big_run_s"], res["big_new"], res["big_routed"] = (
        took,
        out["rows_new"],
        out["to_street"] + out["to_centre"],
    )
    res["big_run_cpu_s"] = CPU["last"]
    res["loadavg_before"], res["loadavg_after"] = (
        [round(x, 2) for x in load0],
        [round(x, 2) for x in os.getloadavg()],
    )
    for k in ("nothing_new_empty_s", "nothing_new_after_s", "big_run_s"):
        res[k] = round(res[k], 2)
    print(json.dumps(res, indent=1, ensure_ascii=False))
    out_path = ROOT / "bench" / "results" / f"intraday-{args.db}.json"
    out_path.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if schema:
        import sqlalchemy as sa

        eng = sa.create_engine(PG_URL)
        with eng.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
