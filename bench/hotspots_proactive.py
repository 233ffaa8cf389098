"""Precision and recall of proactive tasks against what the generator injected, over several
generated nights (one database per seed, the product path: ingest → classify → route → hotspots →
proactive). Writes bench/results/hotspots-proactive.json.

    .venv/bin/python bench/hotspots_proactive.py --seeds 10 --n 4000 [--org-cases 1] [--sweep 1.3,2.0 --out F]

Truth of a night: the street surges injected on the night itself, the injected events with at least
5 tickets in the 7 days up to the night (events that ended earlier were news on earlier nights)
and the organisation cases. A task is correct when ≥ 30 % of its evidence tickets belong to one
injected surge, event or case (a task on an injected item outside the truth of the night, e.g. an
event that is winding down, is correct but not needed for recall); recurring and seasonal tasks have
no tickets and count as wrong.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

NIGHT = dt.date(2026, 11, 20)
OUT = Path(__file__).resolve().parent / "results"


def _score(tasks: list[tuple[str, set]], items: list[dict]) -> tuple[int, set, list[str]]:
    """(correct tasks, indices of the items found, titles of the wrong tasks)."""
    good, wrong, found = 0, [], set()
    for title, ids in tasks:
        hit = [i for i, it in enumerate(items) if ids and len(ids & it["ids"]) >= 0.3 * len(ids)]
        if hit:
            good += 1
            found.update(hit)
        else:
            wrong.append(title)
    return good, found, wrong


def one_night(seed: int, n: int, org_cases: int, sweep: list[float]) -> dict:
    from sqlalchemy import select

    from triage.classify.batch import classify_pending
    from triage.config import reset_settings
    from triage.hotspots.proactive import ProactiveParams, plan_tasks, select_tasks
    from triage.hotspots.stage import run_hotspots
    from triage.ingest import ingest_file
    from triage.pipeline import proactive_stage
    from triage.route import route_pending
    from triage.store import QueueItem, dispose_engines, get_engine, upgrade
    from triage.synth import generate_tickets
    from triage.tables import write_table

    tmp = Path(tempfile.mkdtemp(prefix=f"bench-pro-{seed}-"))
    os.environ["TRIAGE_VAR_DIR"] = str(tmp / "var")
    os.environ["TRIAGE_DATABASE_URL"] = f"sqlite:///{tmp / 'var' / 'triage.db'}"
    dispose_engines()
    reset_settings()
    upgrade()
    res = generate_tickets(n, seed=seed, start=NIGHT - dt.timedelta(days=41), end=NIGHT, labeled=False,
                           org_cases=org_cases)  # fmt: skip
    ingest_file(write_table(res.tickets, tmp / "t.parquet"), night=NIGHT)
    classify_pending()
    route_pending()
    t0 = time.perf_counter()
    run_hotspots(NIGHT)
    # the threshold sweep reads the same stored hotspots before any task is written
    planned = {}
    for v in sweep:
        p = ProactiveParams(event_min_surprise=v)
        planned[v] = [(t["title"], set((t.get("evidence") or {}).get("ticket_ids") or []))
                      for t in select_tasks(NIGHT, plan_tasks(NIGHT, p), p)[0]]  # fmt: skip
    counts = proactive_stage(NIGHT)
    secs = time.perf_counter() - t0
    received = dict(zip(res.tickets["ticket_id"], res.tickets["received_at"].str[:10], strict=True))
    items = []
    for s in res.truth["surges"]:
        items.append({"kind": "surge", "ids": set(s["ticket_ids"]), "due": s["day"] == NIGHT.isoformat()})
    for e in res.truth["events"]:
        recent = sum(received[t] > (NIGHT - dt.timedelta(days=7)).isoformat() for t in e["ticket_ids"])
        items.append({"kind": "event", "ids": set(e["ticket_ids"]),
                      "due": recent >= ProactiveParams().event_min_recent})  # fmt: skip
    for c in res.truth.get("org_cases", []):
        items.append({"kind": "org", "ids": set(c["ticket_ids"]), "due": False})  # city-wide: analysts
    with get_engine().connect() as conn:
        tasks = conn.execute(select(QueueItem).where(QueueItem.kind == "proactive")).all()
    good, found, wrong = _score([(t.title, set((t.evidence or {}).get("ticket_ids") or [])) for t in tasks], items)
    due = [i for i, it in enumerate(items) if it["due"]]
    missed = [items[i]["kind"] for i in due if i not in found]
    swept = {}
    for v, ts in planned.items():
        g, f, _ = _score(ts, items)
        swept[str(v)] = {"tasks": len(ts), "correct": g, "due_found": sum(i in f for i in due)}
    dispose_engines()
    return {"seed": seed, "tasks": len(tasks), "correct": good, "due": len(due),
            "due_found": len(due) - len(missed), "missed": missed, "wrong_titles": wrong[:10],
            "held_back": counts.get("tasks_held_back"), "hotspots_and_proactive_s": round(secs, 1),
            "sweep_min_surprise": swept}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--org-cases", type=int, default=1)
    ap.add_argument("--sweep", default="", help="event_min_surprise values to score too, e.g. 1.0,1.3,2.0")
    ap.add_argument("--out", default="hotspots-proactive.json")
    a = ap.parse_args()
    sweep = [float(v) for v in a.sweep.split(",") if v]
    nights = []
    for s in range(a.first_seed, a.first_seed + a.seeds):
        r = one_night(s, a.n, a.org_cases, sweep)
        print(json.dumps(r, ensure_ascii=False), flush=True)
        nights.append(r)
    tasks = sum(r["tasks"] for r in nights)
    due = sum(r["due"] for r in nights)
    out = {
        "nights": nights,
        "precision": round(sum(r["correct"] for r in nights) / max(tasks, 1), 3),
        "recall": round(sum(r["due_found"] for r in nights) / max(due, 1), 3),
        "tasks": tasks, "due": due, "n": a.n, "org_cases": a.org_cases,
    }  # fmt: skip
    OUT.mkdir(exist_ok=True)
    for v in sweep:
        t = sum(r["sweep_min_surprise"][str(v)]["tasks"] for r in nights)
        out.setdefault("sweep_min_surprise", {})[str(v)] = {
            "precision": round(sum(r["sweep_min_surprise"][str(v)]["correct"] for r in nights) / max(t, 1), 3),
            "recall": round(sum(r["sweep_min_surprise"][str(v)]["due_found"] for r in nights) / max(due, 1), 3),
            "tasks": t,
        }  # fmt: skip
        print(f"event_min_surprise {v}: {out['sweep_min_surprise'][str(v)]}")
    (OUT / a.out).write_text(json.dumps(out, ensure_ascii=False, indent=1))
    print(f"precision {out['precision']}  recall {out['recall']}  ({tasks} tasks, {due} due items)")


if __name__ == "__main__":
    main()
