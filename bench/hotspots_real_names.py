"""Event names on the real messages we have, for a person to read (issue 19: "≥ 90 of 100 real
event names a person would accept as a place or organisation").

    .venv/bin/python bench/hotspots_real_names.py

Clusters, in text mode as `triage hotspots events` does, (1) the raw sample (644 messages with
title, body and time) and (2) the 7,239 labelled messages of ``../shared/data/tipdm2020c_train``
(word-segmented, stopwords and punctuation removed, no time: one day for all). Every event that
has a name is written to ``bench/results/hotspots-real-names.tsv`` (corpus, kind, name, size,
title). A reader's verdicts live in ``hotspots-real-names-judged.tsv`` (name, verdict y/n, why);
when it exists the share of accepted names is printed. Unnamed events are shown by category and
street in the product and are not counted.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "results"


def named_events() -> list[dict]:
    from triage.hotspots.events import cluster_events

    sample = ROOT / "data_samples/real/tipdm2020c_sample"
    raw = pd.concat(
        [pd.read_csv(sample / f, dtype=str) for f in
         ("messages_with_votes.csv", "messages_labeled.csv", "messages_with_replies.csv")]
    ).drop_duplicates("留言编号")  # fmt: skip
    compact = pd.read_csv(ROOT.parent / "shared/data/tipdm2020c_train/messages_7label.csv", dtype=str)
    compact = compact.assign(id=range(len(compact)), t="2020-01-06 12:00:00")
    out = []
    for corpus, ev in (
        ("raw sample", cluster_events(raw, "留言编号", "留言详情", "留言时间", title_col="留言主题")[0]),
        ("7,239 compact", cluster_events(compact, "id", "text", "t")[0]),
    ):
        ev = ev[ev["place"].notna()].sort_values(["size", "event_id"], ascending=[False, True])
        out += [{"corpus": corpus, "kind": r.kind, "name": r.place, "size": int(r.size), "title": r.title[:60]}
                for r in ev.itertuples()]  # fmt: skip
    return out


def main() -> None:
    rows = named_events()
    OUT.mkdir(exist_ok=True)
    with (OUT / "hotspots-real-names.tsv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["corpus", "kind", "name", "size", "title"], delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} named events written to {OUT / 'hotspots-real-names.tsv'}")
    judged = OUT / "hotspots-real-names-judged.tsv"
    if judged.exists():
        verdict = {r["name"]: r["verdict"] for r in csv.DictReader(judged.open(), delimiter="\t")}
        seen = [r for r in rows if r["name"] in verdict]
        for corpus in ("raw sample", "7,239 compact"):
            part = [r for r in seen if r["corpus"] == corpus]
            ok = sum(verdict[r["name"]] == "y" for r in part)
            print(f"{corpus}: {ok} of {len(part)} names accepted by the reader")
        missing = [r["name"] for r in rows if r["name"] not in verdict]
        if missing:
            print(f"not yet judged: {', '.join(missing)}")


if __name__ == "__main__":
    main()
