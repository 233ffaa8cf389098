"""Review desk latency: 1,000,000 queue items in PostgreSQL, 50,000 of them in the centre's queue.

    nice -n 5 .venv/bin/python bench/review_desk.py [--items 1000000] [--centre 50000] [--reseed]

1. Seeds its own schema ``bench_review``: the street items and tickets as bench/api_load.py seeds
   them (COPY), plus ``--centre`` centre items (90 % pending_dispatch, 70 % of those with a located
   street; 10 % returned, a fifth of those escalated) with their tickets and stored predictions
   (top-3), then VACUUM ANALYZE. Re-running reuses the seed when the counts match.
2. Starts uvicorn (2 workers) on a free port, signs in an admin token, and measures one client,
   sequentially: the review API page (GET /api/v1/review, 50 items with top3, street candidates,
   reason counts), the desk page (/web/review), a ticket page (/web/review/{id}), a decision
   (POST /api/v1/review/{id}/decide, each on a different ticket) and, for information, the
   ``order=learn`` page. p50/p95/p99 in ms.
Writes bench/results/review_desk.json. Server and database share the 2-core machine with other jobs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import api_load  # noqa: E402

SCHEMA = "bench_review"
URL = os.environ.get("TRIAGE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CATS = ["street_vending", "group_rental", "property_management", "environment_nuisance", "traffic_parking",
        "sanitation", "safety_hazard"]  # fmt: skip


def seed(items: int, centre: int, reseed: bool) -> dict:
    import psycopg

    from triage.geo import get_gazetteer

    api_load.SCHEMA = SCHEMA  # the street part exactly as the API bench seeds it, in our own schema
    pg = URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(pg, autocommit=True) as conn:
        have = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema=%s AND table_name='queue_items'",
            (SCHEMA,),
        ).fetchone()
        if have and not reseed:
            n, c = conn.execute(
                f"SELECT count(*), count(*) FILTER (WHERE queue='centre') FROM {SCHEMA}.queue_items"
            ).fetchone()
            # reuse it (each run decides a few hundred centre items), its schema brought up to the code's
            if n == items and c >= centre * 0.95:
                from triage.config import reset_settings
                from triage.store import dispose_engines, upgrade

                os.environ["TRIAGE_DATABASE_URL"], os.environ["TRIAGE_DB_SCHEMA"] = URL, SCHEMA
                reset_settings()
                dispose_engines()
                upgrade()
                return {"seeded": False, "items": n, "centre": c}
    t0 = time.perf_counter()
    info = api_load.seed(items - centre, URL, True)
    streets = sorted(c for c, u in get_gazetteer().units.items() if u.level == "street")
    rng = np.random.default_rng(11)
    now = dt.datetime.now(dt.UTC)
    kind = rng.choice(3, size=centre, p=[0.63, 0.27, 0.10])  # low confidence, no street, returned
    esc = rng.random(centre) < 0.2
    due_off = rng.integers(-5 * 86400, 7 * 86400, size=centre)
    p1 = rng.uniform(0.25, 0.6, size=centre)

    def tickets():
        buf = io.StringIO()
        for i in range(centre):
            r = now - dt.timedelta(hours=int(i % 200))
            buf.write(f"C{i:08d}\t{r.isoformat()}\t{r.date()}\t{r.date()}\t朝阳区望京街道花家地西里{i % 97}号楼门口占道摆摊"
                      f"\t朝阳区望京街道花家地西里{i % 97}号楼\tphone\t138****0000\tx\t{i % 1024}\t{now.isoformat()}\n")  # fmt: skip
        yield buf.getvalue()

    def queue():
        buf = io.StringIO()
        for i in range(centre):
            k, sc = kind[i], streets[i % len(streets)]
            located = "\\N" if k == 1 else sc
            status = "returned" if k == 2 else "pending_dispatch"
            returned = json.dumps([streets[(i + 1) % len(streets)]]) if k == 2 else "\\N"
            e = "t" if k == 2 and esc[i] else "f"
            due = now + dt.timedelta(seconds=int(due_off[i]))
            buf.write(f"ticket\tC{i:08d}\tcentre\t\\N\t{sc[:6]}\t{located}\t{CATS[i % 7]}\tstreet_office\t[]\tgeneral\t3\t"
                      f"{due.isoformat()}\t{status}\taddress:street\t0.9\t{int(k == 2)}\t{e}\t{returned}\t1\t"
                      f"{now.isoformat()}\t{now.isoformat()}\n")  # fmt: skip
        yield buf.getvalue()

    def predictions():
        buf = io.StringIO()
        for i in range(centre):
            a, b, c = CATS[i % 7], CATS[(i + 1) % 7], CATS[(i + 3) % 7]
            top = json.dumps([[a, round(p1[i], 3)], [b, round(p1[i] * 0.6, 3)], [c, 0.05]])
            buf.write(f"C{i:08d}\t{a}\t{p1[i]:.3f}\t{top}\tt\tbench\t{now.isoformat()}\n")
        yield buf.getvalue()

    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {SCHEMA}")
        api_load._copy(conn, "tickets", ["ticket_id", "received_at", "received_date", "night", "text", "address",
                       "channel", "caller_masked", "content_hash", "shard", "ingested_at"], tickets())  # fmt: skip
        api_load._copy(conn, "queue_items", ["kind", "ticket_id", "queue", "street_code", "district_code",
                       "located_street_code", "category", "lead_unit", "departments", "sla_tier", "priority",
                       "due_at", "status", "route_method", "route_confidence", "return_count", "escalated",
                       "returned_from", "version", "created_at", "updated_at"], queue())  # fmt: skip
        api_load._copy(conn, "predictions", ["ticket_id", "category", "confidence", "top3", "needs_review",
                       "model_version", "predicted_at"], predictions())  # fmt: skip
        for t in ("tickets", "queue_items", "predictions"):
            conn.execute(f"VACUUM ANALYZE {t}")
    return {
        **info,
        "seeded": True,
        "items": items,
        "centre": centre,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def timed(c: httpx.Client, n: int, request) -> dict:
    lat = []
    for i in range(n):
        t = time.perf_counter()
        r = request(c, i)
        lat.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text[:300]
    lat.sort()
    return {"n": n, "p50_ms": round(statistics.median(lat), 1), "p95_ms": round(lat[int(0.95 * n) - 1], 1),
            "p99_ms": round(lat[max(0, int(0.99 * n) - 1)], 1)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--centre", type=int, default=50_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--reseed", action="store_true")
    args = ap.parse_args()
    info = seed(args.items, args.centre, args.reseed)
    print("seed:", info, flush=True)
    os.environ["TRIAGE_DATABASE_URL"], os.environ["TRIAGE_DB_SCHEMA"] = URL, SCHEMA
    from triage.auth import create_token
    from triage.config import reset_settings
    from triage.store import dispose_engines

    reset_settings()
    dispose_engines()
    secret, _ = create_token("bench-operator", "admin")
    port = api_load.free_port()
    log = open(Path(tempfile.gettempdir()) / "review_desk_server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "triage.api.app:asgi_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2", "--log-level", "warning", "--no-access-log"],
        cwd=REPO, env={**os.environ, "TRIAGE_API_TOKEN_CACHE_SECONDS": "30", "TRIAGE_PII_SALT": "bench-salt"}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    n = args.requests
    res: dict = {"seed": info, "load_avg_before": os.getloadavg(), "workers": 2,
                 "note": "one client, sequential; server and PostgreSQL on the same 2-core machine, shared"}  # fmt: skip
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=60) as c:
            first = c.get("/api/v1/review", params={"page_size": 50}).json()
            assert first["total"] == args.centre - 0 or first["total"] > 0
            res["centre_total"] = first["total"]
            for _ in range(20):  # warm both workers
                c.get("/api/v1/review")
                c.get("/web/review")
            res["review_api_page"] = timed(
                c, n, lambda c, i: c.get("/api/v1/review", params={"page_size": 50})
            )
            res["review_api_page_returned"] = timed(
                c, n // 2, lambda c, i: c.get("/api/v1/review", params={"reason": "returned"})
            )
            res["desk_page"] = timed(c, n, lambda c, i: c.get("/web/review"))
            ids = [
                it["id"]
                for it in c.get("/api/v1/review", params={"page_size": 200, "page": 3}).json()["items"]
            ]
            res["ticket_page"] = timed(c, min(n, len(ids)), lambda c, i: c.get(f"/web/review/{ids[i]}"))
            todo = c.get("/api/v1/review", params={"page_size": 200, "page": 5}).json()["items"]
            todo += c.get("/api/v1/review", params={"page_size": 200, "page": 6}).json()["items"]

            def decide(c, i):
                it = todo[i]
                street = it["street_candidates"][0]["code"] if it["street_candidates"] else "110105026"
                return c.post(f"/api/v1/review/{it['id']}/decide",
                              json={"version": it["version"], "category": it["top3"][0]["category"], "street_code": street})  # fmt: skip

            res["decide"] = timed(c, min(n, len(todo)), decide)
            t = time.perf_counter()  # the first computes the order over the whole queue; then it is cached
            c.get("/api/v1/review", params={"order": "learn"})
            c.get("/api/v1/review", params={"order": "learn"})  # both workers
            res["review_api_learn_order_first_ms"] = round((time.perf_counter() - t) * 1000 / 2, 1)
            res["review_api_learn_order"] = timed(
                c, 20, lambda c, i: c.get("/api/v1/review", params={"order": "learn"})
            )
        res["load_avg_after"] = os.getloadavg()
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = REPO / "bench" / "results" / "review_desk.json"
    out.write_text(json.dumps(res, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(res, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
