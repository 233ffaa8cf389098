"""Would correcting for label shift help the 29-code estimate? (docs/classifier.md)

Real messages are mostly general categories while the champion trains class-balanced. This reads the
out-of-fold probabilities written by ``bench/classify_real29.py --save-proba FILE`` and scores, on the
clear rows of each held-out fold:

* the uncorrected prediction;
* p(c|x) x (pi_real(c) / pi_uniform)^a for a = 1, 0.5, 0.25, pi_real from the fold's *training* real
  rows (add-one smoothed) — the known-target-prior correction;
* EM re-estimation of the prior on the held-out fold itself (Saerens, Latinne & Decaestecker 2002).

    .venv/bin/python bench/classify_real29.py --skip-synthetic-only --save-proba /tmp/p0.npz
    .venv/bin/python bench/classify_real29_prior.py /tmp/p0.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def em_prior(P: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Posteriors re-weighted to the prior EM estimates on this batch (training prior ~uniform)."""
    pi0 = np.full(P.shape[1], 1 / P.shape[1])
    pi = pi0.copy()
    for _ in range(iterations):
        Q = P * (pi / pi0)
        Q /= Q.sum(axis=1, keepdims=True)
        pi = Q.mean(axis=0)
    return Q


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("proba", nargs="+", type=Path, help="npz files from classify_real29.py --save-proba")
    args = ap.parse_args()
    real = pd.read_csv(ROOT / "data_samples/real/tipdm_labeled29.csv")
    y, clear = real["category"].to_numpy(), real["clear"].to_numpy()
    for path in args.proba:
        d = np.load(path, allow_pickle=True)
        cls = d["classes"]
        folds = sorted(int(k[5:]) for k in d.files if k.startswith("proba"))
        scores: dict[str, list[float]] = {}
        for k in folds:
            P, te, tr = d[f"proba{k}"], d[f"te{k}"], d[f"tr{k}"]
            counts = pd.Series(y[tr]).value_counts().reindex(cls, fill_value=0).to_numpy() + 1.0
            pi_real = counts / counts.sum()
            variants = {"uncorrected": P}
            for a in (1.0, 0.5, 0.25):
                variants[f"real prior, a={a}"] = P * (pi_real * len(cls)) ** a
            variants["EM on the held-out fold"] = em_prior(P)
            for name, Q in variants.items():
                ok = cls[Q.argmax(axis=1)] == y[te]
                scores.setdefault(name, []).append(float(ok[clear[te]].mean()))
        print(path.name)
        for name, v in scores.items():
            print(
                f"  {name:26s} {np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}   per fold {np.round(v, 3).tolist()}"
            )


if __name__ == "__main__":
    main()
