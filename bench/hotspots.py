"""Benchmark of the nightly hotspot stage (surges + events + space-time scan) and of event
clustering on real messages. Prints figures and writes bench/results/hotspots-<n>.json.

    .venv/bin/python bench/hotspots.py --n 100000 --n 1000000 [--real data_samples/real/tipdm2020c_sample]

Input is made with triage.synth (90 days ending 2026-11-20, injected surges and events). The
stage is timed on the frame the database load returns (ticket, time, title, text, address,
caller, coordinates, category, street, district); the generator's true category and street stand
in for the classifier's and router's, which run in earlier stages. Wall-clock times depend on the
machine and on what else runs on it.
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


def bench_stage(n: int, seed: int = 7) -> dict:
    from triage.hotspots.stage import compute_hotspots

    t0 = time.perf_counter()
    df, truth = frame(n, seed)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = compute_hotspots(df, NIGHT)
    stage_s = time.perf_counter() - t0
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
        "hotspot_stage_seconds": round(stage_s, 1),
        "timings": res["timings"],
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
    a = ap.parse_args()
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
        r = bench_stage(n)
        print(json.dumps(r, ensure_ascii=False, indent=1, default=str))
        (OUT / f"hotspots-{n}.json").write_text(
            json.dumps({**meta, **r}, ensure_ascii=False, indent=1, default=str)
        )


if __name__ == "__main__":
    main()
