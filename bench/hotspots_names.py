"""Place-name precision of hotspot events on generated nights: is each event's ``place`` one of the
names the generator wrote (a community, one of its estates, a street, a shop, an injected event's
place)? Events without a trustworthy name are shown by category and street and counted apart.

    .venv/bin/python bench/hotspots_names.py --seeds 10 --first-seed 200 --n 20000

The generator's true category, street and community stand in for the classifier's and router's
(as in bench/hotspots.py). Writes bench/results/hotspots-names.json.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd
from hotspots import NIGHT, frame

OUT = Path(__file__).resolve().parent / "results"
_TRAIL = re.compile(r"(小区|社区|家园)$")


def vocabulary() -> set[str]:
    """Every place name the generator can write, in the extractor's matching form."""
    import yaml

    from triage.synth.places import load_places

    pl = load_places()
    names: set[str] = set()
    for ests, short in zip(pl.comms["estates"], pl.comms["short"], strict=True):
        names.update(ests)
        names.add(short)
    for spoken in pl.streets["spoken"]:
        names.update(spoken)
    bank = yaml.safe_load((Path(__file__).resolve().parent.parent / "triage/synth/phrasebank.yaml").read_text())
    for e in bank["events"]:
        names.update(e.get("shopnames") or [])
    return names | {_TRAIL.sub("", n) for n in names if len(n) > 3}


_SUB = re.compile(r"^[一二三四五六七八九十0-9东西南北中]*[区期号院里]")


def correct(label: str, vocab: set[str], prefixes: dict[str, list[str]]) -> bool:
    """The label is a name the generator wrote, that name with a building after it ("…19号院"),
    or an estate's name without its part ("天通中苑" for 天通中苑一区)."""
    if label in vocab or any(label[:k] in vocab for k in range(3, len(label))):
        return True
    return len(label) >= 3 and any(_SUB.match(v[len(label):]) for v in prefixes.get(label[:3], []) if v.startswith(label))


def main() -> None:
    from triage.hotspots.stage import compute_hotspots

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=200)
    ap.add_argument("--n", type=int, default=20000)
    a = ap.parse_args()
    vocab = vocabulary()
    prefixes: dict[str, list[str]] = {}
    for v in vocab:
        prefixes.setdefault(v[:3], []).append(v)
    rows = []
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        df, _ = frame(a.n, seed)
        ev = compute_hotspots(df, NIGHT)["events"]
        for e in ev.itertuples():
            place = e.place if isinstance(e.place, str) and e.place else None
            rows.append({"seed": seed, "kind": e.kind, "size": int(e.size), "place": place,
                         "ok": bool(place) and (e.kind == "org" or correct(place, vocab, prefixes))})  # fmt: skip
    d = pd.DataFrame(rows)
    named = d[d["place"].notna() & (d["kind"] == "place")]
    big = named[named["size"] >= 10]
    out = {
        "events": len(d), "place_events_named": len(named), "unnamed": int(d["place"].isna().sum()),
        "precision": round(float(named["ok"].mean()), 4) if len(named) else None,
        "precision_10plus": round(float(big["ok"].mean()), 4) if len(big) else None,
        "wrong": named.loc[~named["ok"], "place"].value_counts().head(40).to_dict(),
        "org_events": int((d["kind"] == "org").sum()),
        "org_names": d.loc[d["kind"] == "org", "place"].value_counts().head(40).to_dict(),
        "seeds": [a.first_seed, a.first_seed + a.seeds - 1], "n": a.n,
    }  # fmt: skip
    OUT.mkdir(exist_ok=True)
    (OUT / "hotspots-names.json").write_text(json.dumps(out, ensure_ascii=False, indent=1))
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
