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


def real_frames() -> list[tuple[str, pd.DataFrame, dict]]:
    """(corpus, messages, ``cluster_events`` columns) of the raw sample and the 7,239 compact
    messages (no time: one day for all); ``whole`` is each message's title and text."""
    sample = ROOT / "data_samples/real/tipdm2020c_sample"
    raw = pd.concat(
        [pd.read_csv(sample / f, dtype=str) for f in
         ("messages_with_votes.csv", "messages_labeled.csv", "messages_with_replies.csv")]
    ).drop_duplicates("留言编号")  # fmt: skip
    raw["whole"] = raw["留言主题"].fillna("") + "\n" + raw["留言详情"].fillna("")
    compact = pd.read_csv(ROOT.parent / "shared/data/tipdm2020c_train/messages_7label.csv", dtype=str)
    compact = compact.assign(id=range(len(compact)), t="2020-01-06 12:00:00", whole=compact["text"])
    raw_cols = {"id_col": "留言编号", "text_col": "留言详情", "time_col": "留言时间", "title_col": "留言主题"}
    return [
        ("raw sample", raw, raw_cols),
        ("7,239 compact", compact, {"id_col": "id", "text_col": "text", "time_col": "t"}),
    ]


def named_events() -> list[dict]:
    from triage.hotspots.events import cluster_events

    out = []
    for corpus, df, cols in real_frames():
        ev = cluster_events(df, **cols)[0]
        ev = ev[ev["place"].notna()].sort_values(["size", "event_id"], ascending=[False, True])
        out += [{"corpus": corpus, "kind": r.kind, "name": r.place, "size": int(r.size), "title": r.title[:60]}
                for r in ev.itertuples()]  # fmt: skip
    return out


def print_verdicts(rows: list[dict], judged: Path, groups: dict[str, list[dict]]) -> None:
    """The reader's share of accepted names per group of ``rows``, and the names not yet read."""
    if not judged.exists():
        return
    verdict = {r["name"]: r["verdict"] for r in csv.DictReader(judged.open(), delimiter="\t")}
    for label, part in groups.items():
        seen = [r for r in part if r["name"] in verdict]
        ok = sum(verdict[r["name"]] == "y" for r in seen)
        print(f"{label}: {ok} of {len(seen)} names accepted by the reader")
    missing = [r["name"] for r in rows if r["name"] not in verdict]
    if missing:
        print(f"not yet judged: {', '.join(missing)}")


def main() -> None:
    rows = named_events()
    OUT.mkdir(exist_ok=True)
    with (OUT / "hotspots-real-names.tsv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["corpus", "kind", "name", "size", "title"], delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} named events written to {OUT / 'hotspots-real-names.tsv'}")
    corpora = ("raw sample", "7,239 compact")
    groups = {c: [r for r in rows if r["corpus"] == c] for c in corpora}
    print_verdicts(rows, OUT / "hotspots-real-names-judged.tsv", groups)


if __name__ == "__main__":
    main()
