"""Train the shipped champion on the shipped labelled sample and promote it (`make model`).

Equivalent to:
  triage model train --input data_samples/training/labeled_tickets.parquet \
      --title-col title --text-col text --label-col category \
      --source-col source --generated-source synthetic --out models/<version> --overwrite --promote
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", default="builtin-v4")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from typer.testing import CliRunner

    from triage.cli import app

    cmd = [
        # a path relative to the checkout, so the model card names the data the same on every machine
        "model", "train", "--input", "data_samples/training/labeled_tickets.parquet",
        "--title-col", "title", "--text-col", "text", "--label-col", "category",
        "--source-col", "source", "--generated-source", "synthetic",
        "--out", str(ROOT / "models" / args.version), "--seed", str(args.seed),
        "--overwrite", "--promote",  # `make model` rebuilds the shipped version in place
    ]  # fmt: skip
    os.chdir(ROOT)
    result = CliRunner().invoke(app, cmd)
    print(result.output)
    sys.exit(result.exit_code)


if __name__ == "__main__":
    main()
