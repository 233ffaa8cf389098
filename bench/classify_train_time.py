"""Training time of `triage model train` defaults for ~7,000 tickets of ~300 characters.

Takes 7,000 rows of the shipped labelled sample (text padded to ~300 characters with other rows
of the same class so the task stays the same), writes them to a CSV and runs the real CLI
(internal 80/20 validation fit + refit on all rows, artifact written), timing the whole command.

    .venv/bin/python bench/classify_train_time.py [--n 7000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=7000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/classify_train_time.json")
    args = ap.parse_args()
    from typer.testing import CliRunner

    from triage.cli import app

    df = pd.read_parquet(ROOT / "data_samples/training/labeled_tickets.parquet").fillna("")
    df = df.sample(args.n, random_state=0).reset_index(drop=True)
    pool = df.groupby("category")["text"].apply(list).to_dict()
    texts = []
    for i, (title, text, cat) in enumerate(zip(df["title"], df["text"], df["category"], strict=True)):
        j = i
        while len(title) + len(text) < 300:
            text += pool[cat][j % len(pool[cat])]
            j += 7
        texts.append(text[: 300 - len(title)])
    df["text"] = texts
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "train.csv"
        df[["title", "text", "category"]].to_csv(f, index=False)
        t0 = time.perf_counter()
        r = CliRunner().invoke(app, ["model", "train", "--input", str(f), "--title-col", "title", "--text-col",
                                     "text", "--label-col", "category", "--out", str(Path(tmp) / "m")])  # fmt: skip
        seconds = time.perf_counter() - t0
        print(r.output)
        assert r.exit_code == 0, r.output
    out = {"n": args.n, "mean_chars": round((df["title"].str.len() + df["text"].str.len()).mean()),
           "cli_seconds": round(seconds, 1), "load_average": os.getloadavg()}  # fmt: skip
    print(json.dumps(out))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
