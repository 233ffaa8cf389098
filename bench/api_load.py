"""Street queue API under load: 1,000,000 tickets in PostgreSQL, uvicorn with 2 workers, wrk.

    .venv/bin/python bench/api_load.py [--tickets 1000000] [--connections 50] [--duration 30]
                                       [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]

1. Seeds a dedicated schema (``bench_api``) with N tickets and N queue items by COPY (texts from
   triage/synth, streets weighted like the synthetic city, deadlines spread over ±10 days), then
   ANALYZE. Re-running reuses the seed if the row count matches (``--reseed`` to force).
2. Starts ``uvicorn triage.api.app:asgi_app --workers 2`` on a free port.
3. Measures a street's first queue page (GET /api/v1/queue, 50 items sorted by due_at, with total):
   sequential latency (one client, 500 requests) and then wrk with N connections (2 threads),
   reporting req/s and latency percentiles (p50/p90/p95/p99 from wrk's own histogram).
Writes bench/results/api_load.json. Load generator, server and database share this machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
SCHEMA = os.environ.get("TRIAGE_BENCH_SCHEMA", "bench_api")  # engineers sharing a server pick their own
WRK_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"errors\\": %d, \\"non2xx\\": %d, "
    .. "\\"p50_ms\\": %.2f, \\"p90_ms\\": %.2f, \\"p95_ms\\": %.2f, \\"p99_ms\\": %.2f, \\"max_ms\\": %.2f}\\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50)/1000, latency:percentile(90)/1000, latency:percentile(95)/1000,
    latency:percentile(99)/1000, latency.max/1000))
end
"""


def _copy(conn, table: str, cols: list[str], rows_iter) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
        for chunk in rows_iter:
            cp.write(chunk)


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ").replace("\r", " ")


def seed(n: int, url: str, reseed: bool) -> dict:
    import psycopg

    from triage.config import reset_settings
    from triage.geo import get_gazetteer
    from triage.store import dispose_engines, upgrade
    from triage.synth.generator import generate_tickets
    from triage.text import clean_text

    pg = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(pg, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema=%s AND table_name='queue_items'",
            (SCHEMA,),
        ).fetchone()
        if exists and not reseed:
            have = conn.execute(f"SELECT count(*) FROM {SCHEMA}.queue_items").fetchone()[0]
            if have == n:
                # reused: bring its schema up to the code's (later migrations are additive)
                os.environ["TRIAGE_DATABASE_URL"], os.environ["TRIAGE_DB_SCHEMA"] = url, SCHEMA
                reset_settings()
                dispose_engines()
                upgrade()
                return {"seeded": False, "rows": have}
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    os.environ["TRIAGE_DATABASE_URL"], os.environ["TRIAGE_DB_SCHEMA"] = url, SCHEMA
    reset_settings()
    dispose_engines()
    upgrade()

    t0 = time.perf_counter()
    pool = generate_tickets(5000, seed=99).tickets
    texts = [_esc(clean_text(t)) for t in pool["text"]]
    addrs = [_esc(clean_text(a)) if isinstance(a, str) else "\\N" for a in pool["address"]]
    gaz = get_gazetteer()
    streets = sorted(c for c, u in gaz.units.items() if u.level == "street")
    rng = np.random.default_rng(7)
    w = rng.pareto(1.2, len(streets)) + 1  # some streets are much busier than others
    street_idx = rng.choice(len(streets), size=n, p=w / w.sum())
    now = dt.datetime.now(dt.UTC)
    recv_off = rng.integers(0, 40 * 86400, size=n)
    due_off = rng.integers(-10 * 86400, 10 * 86400, size=n)
    statuses = np.array(["dispatched", "acknowledged", "in_progress", "fixed", "closed"])
    st_idx = rng.choice(len(statuses), size=n, p=[0.4, 0.2, 0.15, 0.15, 0.1])
    cats = [
        "street_vending",
        "group_rental",
        "property_management",
        "environment_nuisance",
        "traffic_parking",
    ]

    def ticket_rows():
        buf = io.StringIO()
        for i in range(n):
            r = now - dt.timedelta(seconds=int(recv_off[i]))
            j = i % len(texts)
            buf.write(
                f"B{i:08d}\t{r.isoformat()}\t{r.date()}\t{r.date()}\t{texts[j]}\t{addrs[j]}\tphone\t138****0000\tx\t{i % 1024}\t{now.isoformat()}\n"
            )
            if i % 20000 == 19999:
                yield buf.getvalue()
                buf = io.StringIO()
        yield buf.getvalue()

    def item_rows():
        buf = io.StringIO()
        for i in range(n):
            sc = streets[street_idx[i]]
            due = now + dt.timedelta(seconds=int(due_off[i]))
            st = statuses[st_idx[i]]
            res = due.isoformat() if st in ("fixed", "closed") else "\\N"
            buf.write(
                f"ticket\tB{i:08d}\tstreet\t{sc}\t{sc[:6]}\t{cats[i % 5]}\tstreet_office\t[]\tgeneral\t3\t{due.isoformat()}\t{st}\t"
                f"address:street\t0.95\t0\tf\t{res}\t1\t{now.isoformat()}\t{now.isoformat()}\n"
            )
            if i % 20000 == 19999:
                yield buf.getvalue()
                buf = io.StringIO()
        yield buf.getvalue()

    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {SCHEMA}")
        _copy(
            conn,
            "tickets",
            [
                "ticket_id",
                "received_at",
                "received_date",
                "night",
                "text",
                "address",
                "channel",
                "caller_masked",
                "content_hash",
                "shard",
                "ingested_at",
            ],
            ticket_rows(),
        )
        _copy(
            conn,
            "queue_items",
            [
                "kind",
                "ticket_id",
                "queue",
                "street_code",
                "district_code",
                "category",
                "lead_unit",
                "departments",
                "sla_tier",
                "priority",
                "due_at",
                "status",
                "route_method",
                "route_confidence",
                "return_count",
                "escalated",
                "resolved_at",
                "version",
                "created_at",
                "updated_at",
            ],
            item_rows(),
        )
        # steady state as autovacuum leaves it: statistics and visibility map (index-only counts)
        conn.execute("VACUUM ANALYZE tickets")
        conn.execute("VACUUM ANALYZE queue_items")
    return {"seeded": True, "rows": n, "seed_seconds": round(time.perf_counter() - t0, 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--url",
        default=os.environ.get("TRIAGE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    ap.add_argument("--reseed", action="store_true")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")

    info = seed(args.tickets, args.url, args.reseed)
    print("seed:", info, flush=True)
    os.environ["TRIAGE_DATABASE_URL"], os.environ["TRIAGE_DB_SCHEMA"] = args.url, SCHEMA
    from triage.auth import create_token
    from triage.config import reset_settings
    from triage.store import dispose_engines, get_engine

    reset_settings()
    dispose_engines()
    with get_engine().connect() as conn:
        busiest, busiest_n = conn.exec_driver_sql(
            "SELECT street_code, count(*) FROM queue_items GROUP BY street_code ORDER BY 2 DESC LIMIT 1"
        ).one()
        median_street, median_n = conn.exec_driver_sql(
            "SELECT street_code, n FROM (SELECT street_code, count(*) n FROM queue_items GROUP BY street_code) s "
            "ORDER BY n LIMIT 1 OFFSET (SELECT count(DISTINCT street_code)/2 FROM queue_items)"
        ).one()
    results = {
        "tickets": info["rows"],
        "seed": info,
        "workers": args.workers,
        "connections": args.connections,
        "duration_s": args.duration,
        "load_generator": "wrk 4.1 (2 threads)",
        "note": "server, PostgreSQL and wrk on the same 2-core machine, shared with other engineers' jobs",
    }
    port = free_port()
    log = open(Path(tempfile.gettempdir()) / "api_load_server.log", "wb")  # noqa: SIM115
    env = {**os.environ, "TRIAGE_API_TOKEN_CACHE_SECONDS": "30", "TRIAGE_PII_SALT": "bench-salt"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "triage.api.app:asgi_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        for label, street, count in (
            ("median_street", median_street, median_n),
            ("busiest_street", busiest, busiest_n),
        ):
            secret, _ = create_token(f"bench-{street}", "street", street)
            path = "/api/v1/queue?page=1&page_size=50"
            headers = {"Authorization": f"Bearer {secret}"}
            with httpx.Client(base_url=base, headers=headers) as c:
                first = c.get(path)
                assert first.status_code == 200 and first.json()["total"] == count, first.text[:300]
                for _ in range(50):
                    c.get(path)  # warm both workers' pools and caches
                lat = []
                for _ in range(500):
                    t = time.perf_counter()
                    r = c.get(path)
                    lat.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200
            lat.sort()
            seq = {
                "p50_ms": round(statistics.median(lat), 2),
                "p95_ms": round(lat[int(0.95 * len(lat)) - 1], 2),
                "p99_ms": round(lat[int(0.99 * len(lat)) - 1], 2),
            }
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
                fh.write(WRK_LUA)
            out = subprocess.run(
                [
                    "wrk",
                    "-t2",
                    f"-c{args.connections}",
                    f"-d{args.duration}s",
                    "--timeout",
                    "10s",
                    "-H",
                    f"Authorization: Bearer {secret}",
                    "-s",
                    fh.name,
                    base + path,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            line = next(x for x in out.splitlines() if x.startswith("JSON "))
            w = json.loads(line[5:])
            w["requests_per_s"] = round(w["requests"] / (w["duration_us"] / 1e6), 1)
            results[label] = {
                "street_code": street,
                "items_in_queue": count,
                "sequential_1_client": seq,
                "wrk": w,
            }
            print(label, json.dumps(results[label], ensure_ascii=False), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    Path(REPO / "bench/results").mkdir(parents=True, exist_ok=True)
    (REPO / "bench/results/api_load.json").write_text(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
