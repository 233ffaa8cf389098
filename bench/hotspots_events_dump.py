"""Canonical dump of the nightly event clustering on a fixed generated input, to check that a
speed change leaves the output identical.

    .venv/bin/python bench/hotspots_events_dump.py --n 200000 --out /tmp/events-before.json
    .venv/bin/python bench/hotspots_events_dump.py --n 200000 --out /tmp/events-after.json
    cmp /tmp/events-before.json /tmp/events-after.json

The input is bench/hotspots.py's frame (seed 7, 90 days up to 2026-11-20), cached as a pickle
(``--cache``) so repeated runs do not regenerate it. Every event column is written, events sorted
by id, member ids sorted; the seconds of the events stage go to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))


def load(n: int, seed: int, cache: Path | None) -> pd.DataFrame:
    if cache is not None and cache.exists():
        return pd.read_pickle(cache)
    from hotspots import frame

    df, _ = frame(n, seed)
    if cache is not None:
        df.to_pickle(cache)
    return df


def events(df: pd.DataFrame, night: dt.date) -> pd.DataFrame:
    """The events part of triage.hotspots.stage.compute_hotspots, with the same arguments."""
    from triage.hotspots.events import EventParams, cluster_events
    from triage.hotspots.stage import DB_TEXT_CHARS, admin_names

    ev_in = df.assign(
        block_street=df["street_code"].fillna(df["district_code"]).fillna("-"),
        block_cat=df["category"].fillna("-"),
        trust_unit=df["community_code"].fillna(df["street_code"]),
    )
    ev, membership = cluster_events(
        ev_in, "ticket_id", "text", "received_at", title_col="title", votes_col="votes",
        caller_col="caller_hash", place_cols=("address",), block_cols=("block_street", "block_cat"),
        params=EventParams(max_chars=DB_TEXT_CHARS, min_size=3), mode="keyed",
        exclude_keys=admin_names(), unit_col="trust_unit",
        ref_time=pd.Timestamp(dt.datetime.combine(night + dt.timedelta(days=1), dt.time())),
    )  # fmt: skip
    ev = ev.copy()
    ev["membership_count"] = ev["event_id"].map(membership.value_counts()).fillna(0).astype(int)
    return ev


def canonical(ev: pd.DataFrame) -> list[dict]:
    rows = []
    for r in ev.to_dict("records"):
        r["member_ids"] = sorted(map(str, r["member_ids"]))
        rows.append({k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()})
    return sorted(rows, key=lambda r: r["event_id"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cache", type=Path, default=None, help="pickle of the input frame")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    a = ap.parse_args()
    night = dt.date(2026, 11, 20)
    df = load(a.n, a.seed, a.cache)
    t0 = time.perf_counter()
    if a.profile:
        import cProfile

        prof = cProfile.Profile()
        ev = prof.runcall(events, df, night)
        prof.dump_stats(a.profile)
    else:
        ev = events(df, night)
    secs = time.perf_counter() - t0
    a.out.write_text(json.dumps(canonical(ev), ensure_ascii=False, sort_keys=True, default=str, indent=0))
    print(f"n={len(df)} events={len(ev)} seconds={secs:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
