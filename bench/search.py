"""Ticket search latency (triage.search, issue 21.10) on N generated tickets.

    .venv/bin/python bench/search.py --db postgresql [--n 1000000] [--queries 200] [--reseed]
    .venv/bin/python bench/search.py --db sqlite --n 200000

1. Seeds N tickets with their queue items: PostgreSQL in a dedicated schema (``bench_search``, by
   COPY, then VACUUM ANALYZE), SQLite in a file under $TMPDIR (executemany; the FTS5 triggers index
   every row as ingest would). Texts and addresses come from triage/synth (a pool of 5,000 each,
   paired differently per ticket, each address with its own house number). Re-running reuses the
   seed when the count matches.
2. Runs the query mix in-process through ``search_tickets`` (what the API and the page call), as
   an analyst (whole city) and as a busy street, and reports p50 / p95 / max per kind of query:
   a whole 工单编号, part of one, a 4–6 character phrase of a text, an address, two terms, and a
   two-character word alone (no trigram: a newest-first scan).
Writes bench/results/search-<db>-<n>.json. The machine is shared: the load average is recorded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SCHEMA = "bench_search"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TICKET_COLS = ["ticket_id", "received_at", "received_date", "night", "text", "address", "channel",
               "caller_masked", "content_hash", "shard", "ingested_at"]  # fmt: skip
ITEM_COLS = ["kind", "ticket_id", "queue", "street_code", "district_code", "category", "lead_unit", "departments",
             "sla_tier", "priority", "due_at", "status", "route_method", "return_count", "escalated", "version",
             "created_at", "updated_at"]  # fmt: skip


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _pools():
    from triage.synth.generator import generate_tickets
    from triage.text import clean_text

    pool = generate_tickets(5000, seed=99).tickets
    texts = [clean_text(t) for t in pool["text"]]
    addrs = [clean_text(a) if isinstance(a, str) else "北京市" for a in pool["address"]]
    return texts, addrs


def _configure(db: str, n: int) -> None:
    from triage.config import reset_settings
    from triage.store import dispose_engines

    if db == "postgresql":
        os.environ["TRIAGE_DATABASE_URL"], os.environ["TRIAGE_DB_SCHEMA"] = PG_URL, SCHEMA
    else:
        path = Path(tempfile.gettempdir()) / f"bench-search-{n}.db"
        os.environ["TRIAGE_DATABASE_URL"] = f"sqlite:///{path}"
        os.environ.pop("TRIAGE_DB_SCHEMA", None)
    os.environ.setdefault("TRIAGE_VAR_DIR", str(Path(tempfile.gettempdir()) / "bench-search-var"))
    reset_settings()
    dispose_engines()


def _rows(n: int, texts: list[str], addrs: list[str], streets: list[str]):
    rng = np.random.default_rng(7)
    w = rng.pareto(1.2, len(streets)) + 1  # some streets are much busier than others
    street_idx = rng.choice(len(streets), size=n, p=w / w.sum())
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    # ids in arrival order, as ingest assigns them (newest ticket = highest id)
    recv_off = np.sort(rng.integers(0, 90 * 86400, size=n))[::-1]
    for i in range(n):
        r = now - dt.timedelta(seconds=int(recv_off[i]))
        sc = streets[street_idx[i]]
        text = texts[i % len(texts)]
        addr = f"{addrs[(i * 7919) % len(addrs)]}{i % 997 + 1}号"
        t = (f"B{i:08d}", r, r.date(), r.date(), text, addr, "phone", "138****0000", "x", i % 1024, now)
        it = ("ticket", f"B{i:08d}", "street", sc, sc[:6], "street_vending", "street_office", "[]", "general", 3,
              r + dt.timedelta(days=7), "dispatched", "address:street", 0, False, 1, now, now)  # fmt: skip
        yield t, it


def seed(db: str, n: int, reseed: bool) -> dict:
    from sqlalchemy import text

    from triage.geo import get_gazetteer
    from triage.store import get_engine, upgrade

    _configure(db, n)
    engine = get_engine()
    if db == "postgresql":
        with engine.begin() as conn:
            have = conn.execute(text("SELECT to_regclass('tickets')")).scalar()
            count = conn.execute(text("SELECT count(*) FROM tickets")).scalar() if have else 0
            if count == n and not reseed:
                upgrade()
                return {"seeded": False, "rows": count}
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    else:
        path = Path(engine.url.database)
        if path.exists():
            upgrade()
            with engine.connect() as conn:
                count = conn.execute(text("SELECT count(*) FROM tickets")).scalar()
            if count == n and not reseed:
                return {"seeded": False, "rows": count}
            engine.dispose()
            for p in path.parent.glob(path.name + "*"):
                p.unlink()
    upgrade()
    t0 = time.perf_counter()
    texts, addrs = _pools()
    streets = sorted(c for c, u in get_gazetteer().units.items() if u.level == "street")
    if db == "postgresql":
        import psycopg

        def chunks(which: int):
            buf = io.StringIO()
            for i, pair in enumerate(_rows(n, texts, addrs, streets)):
                buf.write("\t".join("\\N" if v is None else _esc(v.isoformat() if hasattr(v, "isoformat") else str(v))
                                    for v in pair[which]) + "\n")  # fmt: skip
                if i % 20000 == 19999:
                    yield buf.getvalue()
                    buf = io.StringIO()
            yield buf.getvalue()

        with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f"SET search_path TO {SCHEMA}")
            for table, cols, which in (("tickets", TICKET_COLS, 0), ("queue_items", ITEM_COLS, 1)):
                with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                    for chunk in chunks(which):
                        cp.write(chunk)
            conn.execute("VACUUM ANALYZE tickets")
            conn.execute("VACUUM ANALYZE queue_items")
    else:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            batch: list = []
            for t, it in _rows(n, texts, addrs, streets):
                batch.append((t, it))
                if len(batch) == 20000:
                    _sqlite_write(cur, batch)
                    raw.commit()
                    batch = []
            _sqlite_write(cur, batch)
            raw.commit()
            cur.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
    return {"seeded": True, "rows": n, "seed_seconds": round(time.perf_counter() - t0, 1)}


def _sqlite_write(cur, batch) -> None:
    def conv(v):
        return v.isoformat(sep=" ").replace("+00:00", "") if isinstance(v, dt.datetime) else (
            v.isoformat() if isinstance(v, dt.date) else v)  # fmt: skip

    cur.executemany(
        f"INSERT INTO tickets ({', '.join(TICKET_COLS)}) VALUES ({', '.join('?' * len(TICKET_COLS))})",
        [tuple(conv(v) for v in t) for t, _ in batch],
    )
    cur.executemany(
        f"INSERT INTO queue_items ({', '.join(ITEM_COLS)}) VALUES ({', '.join('?' * len(ITEM_COLS))})",
        [tuple(conv(v) for v in it) for _, it in batch],
    )


def queries(n: int, k: int) -> dict[str, list[str]]:
    texts, addrs = _pools()
    rnd = random.Random(3)
    ids = [f"B{rnd.randrange(n):08d}" for _ in range(k)]

    def phrase(s: str, lo: int, hi: int) -> str:
        s = s.replace(" ", "")
        size = rnd.randint(lo, hi)
        at = rnd.randrange(max(1, len(s) - size))
        return s[at : at + size]

    return {
        "工单编号 whole": ids,
        "工单编号 part (B + 6 digits)": [i[:7] for i in ids],
        "text phrase 4-6 chars": [phrase(rnd.choice(texts), 4, 6) for _ in range(k)],
        "address + house number": [
            f"{addrs[(i * 7919) % len(addrs)]}{i % 997 + 1}号"[-8:] for i in (int(x[1:]) for x in ids)
        ],  # fmt: skip
        "two terms (3+ chars)": [
            f"{phrase(rnd.choice(texts), 3, 4)} {phrase(rnd.choice(addrs), 3, 4)}" for _ in range(k)
        ],
        "two-character word alone": [
            rnd.choice(["噪音", "停车", "漏水", "扰民", "垃圾", "暖气", "占道", "施工"]) for _ in range(k)
        ],
    }


def measure(who, qs: list[str]) -> dict:
    from triage.search import search_tickets

    lat, hits = [], []
    for q in qs:
        t0 = time.perf_counter()
        hits.append(len(search_tickets(who, q, 20)["items"]))
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    return {
        "queries": len(qs), "p50_ms": round(statistics.median(lat), 1),
        "p95_ms": round(lat[max(0, int(round(0.95 * len(lat))) - 1)], 1), "max_ms": round(lat[-1], 1),
        "mean_hits": round(sum(hits) / len(hits), 1),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200, help="queries per kind")
    ap.add_argument("--reseed", action="store_true")
    ap.add_argument("--seed-only", action="store_true", help="seed (or check the seed) and stop")
    args = ap.parse_args()

    from sqlalchemy import func, select

    from triage.auth import Principal
    from triage.store import QueueItem, get_engine

    info = seed(args.db, args.n, args.reseed)
    print(f"seed: {info}", flush=True)
    if args.seed_only:
        return
    with get_engine().connect() as conn:
        busiest = conn.execute(
            select(QueueItem.street_code, func.count()).group_by(QueueItem.street_code).order_by(func.count().desc()).limit(1)
        ).one()  # fmt: skip
    who = {
        "analyst": Principal(0, "bench", "analyst", None),
        f"street {busiest[0]} ({busiest[1]} items)": Principal(0, "bench", "street", busiest[0]),
    }
    qs = queries(args.n, args.queries)
    for w in who.values():  # warm the caches (first query loads pages, the taxonomy, OpenCC)
        measure(w, [q[0] for q in qs.values()])
    results: dict = {}
    for wname, w in who.items():
        for kind, batch in qs.items():
            r = measure(w, batch)
            results[f"{wname} | {kind}"] = r
            print(f"{args.db} n={args.n:,} {wname:38s} {kind:30s} p50 {r['p50_ms']:7.1f} ms  "
                  f"p95 {r['p95_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms  hits {r['mean_hits']}", flush=True)  # fmt: skip
    out = REPO / "bench" / "results" / f"search-{args.db}-{args.n}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "db": args.db, "n": args.n, "seed": info, "load_average": os.getloadavg(), "cpus": os.cpu_count(),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "results": results,
    }, ensure_ascii=False, indent=1))  # fmt: skip
    print(f"→ {out}")


if __name__ == "__main__":
    main()
