"""Lock part of every real labelled set before any tuning (written once; re-running reproduces it).

- 644 hand-labelled 29-code messages (data_samples/real/tipdm_labeled29.csv): 40 % locked,
  stratified by category (categories with < 5 rows pooled), seed 16.
- 7,239 7-label messages (data_samples/real/tipdm2020c_train/messages_7label.csv): 20 % locked,
  stratified by label, seed 16.

The locked parts are scored once, at the end of a tuning round; nothing (keywords, phrasings,
thresholds, variants) is chosen on them. Output: data_samples/real/locked_split.json.

    .venv/bin/python scripts/lock_real_split.py [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "data_samples" / "real"
OUT = REAL / "locked_split.json"
SEED = 16


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build() -> dict:
    l29_path = REAL / "tipdm_labeled29.csv"
    l7_path = REAL / "tipdm2020c_train" / "messages_7label.csv"
    l29 = pd.read_csv(l29_path)
    counts = l29["category"].value_counts()
    strata = l29["category"].where(l29["category"].map(counts) >= 5, "_rare")
    _, locked29 = train_test_split(l29.index.to_numpy(), test_size=0.4, random_state=SEED, stratify=strata)
    l7 = pd.read_csv(l7_path)
    _, locked7 = train_test_split(l7.index.to_numpy(), test_size=0.2, random_state=SEED, stratify=l7["label"])
    return {
        "seed": SEED,
        "labeled29": {
            "file": str(l29_path.relative_to(ROOT)),
            "sha256": sha256(l29_path),
            "n": len(l29),
            "locked_fraction": 0.4,
            "stratified_by": "category (classes with < 5 rows pooled)",
            "locked_message_ids": sorted(int(i) for i in l29.loc[locked29, "message_id"]),
        },
        "tipdm7": {
            "file": str(l7_path.relative_to(ROOT)),
            "sha256": sha256(l7_path),
            "n": len(l7),
            "locked_fraction": 0.2,
            "stratified_by": "label",
            "locked_row_indices": sorted(int(i) for i in locked7),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="verify the committed split is reproduced")
    args = ap.parse_args()
    split = build()
    if args.check:
        same = json.loads(OUT.read_text()) == split
        print("locked split reproduced" if same else "locked split DIFFERS from the committed one")
        sys.exit(0 if same else 1)
    if OUT.exists():
        sys.exit(f"{OUT} exists: the split is locked (use --check)")
    OUT.write_text(json.dumps(split, indent=1) + "\n")
    print(
        f"wrote {OUT}: {len(split['labeled29']['locked_message_ids'])} + {len(split['tipdm7']['locked_row_indices'])} locked"
    )


if __name__ == "__main__":
    main()
