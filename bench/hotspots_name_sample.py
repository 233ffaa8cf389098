"""A fresh sample of real names for a person to read: the names the event keys are made of, drawn
from the real messages, none of them read before (issue 19: "≥ 90 of 100 real event names a person
would accept as a place or organisation").

    .venv/bin/python bench/hotspots_name_sample.py --part dev|locked [--n 100]

``bench/hotspots_real_names.py`` reads the ~60 names of the events found on the real messages; the
organisation rules were chosen on those names, so they are no longer a test. This script reads the
names one level down, where the rules act: every place (``extract_places``) and organisation
(``extract_orgs``) named in at least two of the real messages (the raw sample and the 7,239 compact
ones) — the candidates an event can be keyed on. Names already read in
``hotspots-real-names-judged.tsv`` are left out. Each name's SHA-1 (with a fixed salt) puts it in
the ``dev`` half (read to find what fails, rules may change on it) or the ``locked`` half (read
once, at the end, by a reader who did not write the rules); within a half the first ``--n`` by hash
are written with two of their messages around the name, to
``bench/results/hotspots-name-sample-<part>.tsv``. The halves are fixed by the names' hashes, so the
locked half read at the end holds what the final rules produce for names nobody chose them on.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re

import pandas as pd
from hotspots_real_names import OUT, print_verdicts, real_frames

SALT = "name-sample-2026-12-03|"


def part_of(name: str) -> tuple[str, str]:
    h = hashlib.sha1((SALT + name).encode()).hexdigest()
    return ("dev" if int(h[-1], 16) % 2 == 0 else "locked"), h


def named_events(min_voices: int) -> list[dict]:
    """Every named event of both corpora with organisations needing only ``min_voices`` callers."""
    from triage.hotspots.events import EventParams, cluster_events

    out = []
    for corpus, df, cols in real_frames():
        ev = cluster_events(df, **cols, params=EventParams(org_min_voices=min_voices))[0]
        whole = dict(zip(df[cols["id_col"]].astype(str), df["whole"], strict=True))
        for r in ev[ev["place"].notna()].itertuples():
            members = [whole[str(i)] for i in r.member_ids[:2]]
            out.append({"corpus": corpus, "name": r.place, "kind": r.kind, "size": int(r.size),
                        "context1": context(members[0], r.place), "context2": context(members[-1], r.place)})  # fmt: skip
    return out


def context(message: str, name: str, width: int = 24) -> str:
    m = re.search(re.escape(name[:2]), message)
    at = m.start() if m else 0
    return message[max(0, at - width) : at + len(name) + width].replace("\n", " ").replace("\t", " ")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["dev", "locked"], required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--min-voices", type=int, default=2)
    args = ap.parse_args()
    judged = OUT / "hotspots-real-names-judged.tsv"
    read_before = {r["name"] for r in csv.DictReader(judged.open(), delimiter="\t")}
    rows = []
    for r in named_events(args.min_voices):
        part, h = part_of(r["name"])
        if part == args.part and r["name"] not in read_before:
            rows.append(r | {"hash": h})
    total = len(rows)
    rows = sorted(rows, key=lambda r: r["hash"])[: args.n]
    path = OUT / f"hotspots-name-sample-{args.part}.tsv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["corpus", "name", "kind", "size", "context1", "context2"], delimiter="\t",
                           extrasaction="ignore")  # fmt: skip
        w.writeheader()
        w.writerows(rows)
    kinds = pd.Series([r["kind"] for r in rows]).value_counts().to_dict()
    print(f"{args.part}: {total} named events not read before; {len(rows)} written to {path} ({kinds})")
    print_verdicts(rows, OUT / f"hotspots-name-sample-{args.part}-judged.tsv", {args.part: rows})


if __name__ == "__main__":
    main()
