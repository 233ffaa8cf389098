"""Benchmark of the nightly hotspot stage (surges + events + space-time scan) and of event
clustering on real messages. Prints figures and writes bench/results/hotspots-<n>.json.

    .venv/bin/python bench/hotspots.py --n 100000 --n 1000000 [--real data_samples/real/tipdm2020c_sample]

Input is made with triage.synth (90 days ending 2026-11-20, injected surges and events). The
stage is timed on the frame the database load returns (ticket, time, title, text, address,
caller, coordinates, category, street, district); the generator's true category and street stand
in for the classifier's and router's, which run in earlier stages. Wall-clock times depend on the
machine and on what else runs on it (the load average before and after is recorded).

The stage is timed twice on the same frame: **cold**, nothing read on earlier nights (the first
night, or after ``PLACES_VERSION`` changes: every ticket's places are read), and **warm**, the
nightly case: the places of every day before the night are known (those the cold run read: what
``ticket_places`` holds after the previous nights) and only the night's own tickets are read, in a
new interpreter as the nightly task. The warm events must equal the cold ones (checked). Beside it: the per-ticket digests the stage
computes every night, and writing / reading the place rows of the whole window in a SQLite
``ticket_places`` table alone (no tickets table, so without the stage's join).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import pandas as pd

NIGHT = dt.date(2026, 11, 20)
OUT = Path(__file__).resolve().parent / "results"


def frame(n: int, seed: int) -> tuple[pd.DataFrame, dict]:
    from triage.synth import generate_tickets
    from triage.text import caller_hash

    res = generate_tickets(n, seed=seed, start=NIGHT - dt.timedelta(days=89), end=NIGHT, labeled=True)
    t = res.tickets
    received = pd.to_datetime(t["received_at"]).dt.tz_localize("Asia/Shanghai")
    df = pd.DataFrame(
        {
            "ticket_id": t["ticket_id"],
            "received_at": received.dt.tz_convert("UTC"),
            "received_date": received.dt.date,
            "title": t["title"],
            "text": t["text"].str.slice(0, 120),
            "address": t["address"],
            "caller_hash": [
                caller_hash(p, "bench") if isinstance(p, str) else None for p in t["caller_phone"]
            ],
            "lat": t["lat"],
            "lon": t["lon"],
            "votes": None,
            "category": t["category"],
            "street_code": t["true_street_code"],
            "district_code": t["true_street_code"].str[:6],
            "community_code": t["true_community_code"],
        }
    )
    return df, res.truth


def bench_cache_sqlite(df: pd.DataFrame, digests: list[str], places: pd.Series, tonight: pd.Series) -> dict:
    """Seconds to store every row's places (a cold night), then the night's rows again (a warm
    night's upsert), then to read all rows back, in a SQLite file with the table alone."""
    import tempfile

    from sqlalchemy import create_engine, select

    from triage.hotspots.stage import store_places
    from triage.store import TicketPlace, read_frame

    out = {}
    with tempfile.TemporaryDirectory() as d:
        eng = create_engine(f"sqlite:///{d}/places.db")
        TicketPlace.__table__.create(eng)
        for what, part in (("store_all", places), ("store_night", places[tonight.to_numpy()])):
            t0 = time.perf_counter()
            with eng.begin() as conn:
                out[f"{what}_rows"] = store_places(conn, df, digests, part)
            out[f"{what}_seconds"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        with eng.connect() as conn:
            read_frame(conn, select(TicketPlace.ticket_id, TicketPlace.digest, TicketPlace.places))
        out["read_all_seconds"] = round(time.perf_counter() - t0, 1)
        eng.dispose()
    return out


def warm_in_new_process(df: pd.DataFrame, known: pd.Series) -> dict:
    """The stage given ``known`` places, timed in a new interpreter as the nightly task runs it:
    nothing warmed by the cold run in this one (its cached name decisions, jieba's dictionary)."""
    import pickle
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "in.pkl", Path(d) / "out.pkl"
        src.write_bytes(pickle.dumps((df, known), protocol=pickle.HIGHEST_PROTOCOL))
        subprocess.run([sys.executable, __file__, "--warm", str(src), str(dst)], check=True)
        return pickle.loads(dst.read_bytes())


def _warm(src: Path, dst: Path) -> None:
    import pickle

    from triage.hotspots.stage import compute_hotspots

    df, known = pickle.loads(src.read_bytes())
    t0 = time.perf_counter()
    res = compute_hotspots(df, NIGHT, known_places=known)
    secs = time.perf_counter() - t0
    out = {"seconds": secs, "timings": res["timings"], "events": res["events"], "read": len(res["places"])}
    dst.write_bytes(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))


def bench_stage(n: int, seed: int = 7) -> dict:
    from triage.hotspots.stage import compute_hotspots, place_digests_of

    t0 = time.perf_counter()
    df, truth = frame(n, seed)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = compute_hotspots(df, NIGHT, known_places=pd.Series(None, index=df.index, dtype=object))
    cold_s = time.perf_counter() - t0
    places = res["places"]
    tonight = df["received_date"] == NIGHT
    warm = warm_in_new_process(df, places.where(~tonight))
    pd.testing.assert_frame_equal(warm["events"], res["events"])  # the cache changes no event
    t0 = time.perf_counter()
    digests = place_digests_of(df)
    digest_s = time.perf_counter() - t0
    cache = bench_cache_sqlite(df, digests, places, tonight)
    sig = res["signals"]
    found = {(r.unit, r.category) for r in sig[sig.significant & (sig.level == "street")].itertuples()}
    tonight = [s for s in truth["surges"] if s["day"] == NIGHT.isoformat()]
    ev = res["events"]
    capture = []
    for e in truth["events"]:
        ids = set(e["ticket_ids"])
        best = max(((len(ids & set(m)) / len(ids), len(ids & set(m)) / len(m), i + 1)
                    for i, m in enumerate(ev["member_ids"])), default=(0, 0, None))  # fmt: skip
        capture.append({"event": e["event_key"], "size": len(ids), "capture": round(best[0], 3),
                        "purity": round(best[1], 3), "rank": best[2]})  # fmt: skip
    scan = res["scan"]
    return {
        "n": n,
        "days": 90,
        "generate_seconds": round(gen_s, 1),
        "hotspot_stage_cold_seconds": round(cold_s, 1),
        "timings_cold": res["timings"],
        "hotspot_stage_warm_seconds": round(warm["seconds"], 1),
        "timings_warm": warm["timings"],
        "tickets_read_warm": warm["read"],
        "warm_events_equal_cold": True,
        "digest_seconds": round(digest_s, 1),
        "cache_sqlite": cache,
        "series_tested": int(res.get("tested", 0)),
        "street_surges_flagged": int((sig.significant & (sig.level == "street")).sum()),
        "injected_surges_tonight": len(tonight),
        "injected_surges_found": sum((s["street_code"], s["category"]) in found for s in tonight),
        "events": len(ev),
        "injected_events": capture,
        "scan_best": scan.best if scan else None,
        "scan_notes": scan.notes if scan else [],
    }


def bench_real(folder: Path) -> list[dict]:
    from triage.hotspots.events import cluster_events

    out = []
    frames = []
    for f in ("messages_with_votes.csv", "messages_labeled.csv", "messages_with_replies.csv"):
        d = pd.read_csv(folder / f, dtype=str)
        frames.append(d)
        t0 = time.perf_counter()
        ev, _ = cluster_events(d, "留言编号", "留言详情", "留言时间", title_col="留言主题",
                               votes_col="点赞数" if "点赞数" in d else None)  # fmt: skip
        out.append(
            {"file": f, "rows": len(d), "seconds": round(time.perf_counter() - t0, 2), "events": len(ev)}
        )
    d = pd.concat(frames, ignore_index=True).drop_duplicates("留言编号")
    t0 = time.perf_counter()
    ev, _ = cluster_events(d, "留言编号", "留言详情", "留言时间", title_col="留言主题", votes_col="点赞数")
    secs = time.perf_counter() - t0
    truth = set(d[(d["留言主题"].fillna("") + d["留言详情"].fillna("")).str.contains("魅力之城")]["留言编号"])
    best = max(((len(truth & set(m)) / len(truth), len(truth & set(m)) / len(m), i + 1)
                for i, m in enumerate(ev["member_ids"])), default=(0, 0, None))  # fmt: skip
    out.append({"file": "all three (deduplicated)", "rows": len(d), "seconds": round(secs, 2), "events": len(ev),
                "魅力之城": {"messages": len(truth), "capture": round(best[0], 3), "purity": round(best[1], 3),
                             "rank": best[2]}})  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, action="append", help="tickets (repeatable)")
    ap.add_argument(
        "--real",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "data_samples/real/tipdm2020c_sample",
    )
    ap.add_argument("--warm", type=Path, nargs=2, help=argparse.SUPPRESS)  # see warm_in_new_process
    a = ap.parse_args()
    if a.warm:
        _warm(*a.warm)
        return
    OUT.mkdir(exist_ok=True)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "when": dt.datetime.now().isoformat(timespec="seconds"),
            "note": "shared 2-core machine; other engineers' jobs may run at the same time"}  # fmt: skip
    if a.real.exists():
        r = bench_real(a.real)
        print(json.dumps(r, ensure_ascii=False, indent=1))
        (OUT / "hotspots-real.json").write_text(
            json.dumps({**meta, "results": r}, ensure_ascii=False, indent=1)
        )
    for n in a.n or []:
        load_before = os.getloadavg()
        r = bench_stage(n)
        r["load_average_before_after"] = [load_before, os.getloadavg()]
        print(json.dumps(r, ensure_ascii=False, indent=1, default=str))
        (OUT / f"hotspots-{n}.json").write_text(
            json.dumps({**meta, **r}, ensure_ascii=False, indent=1, default=str)
        )


if __name__ == "__main__":
    main()
