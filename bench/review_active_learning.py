"""Which tickets should the centre review first? A simulated loop on real labelled messages.

Data: the 7,239 labelled real messages of /work/shared/data/tipdm2020c_train/messages_7label.csv
(7 categories). Per seed: a stratified 20 % test slice is set aside; the rest is the pool of
tickets waiting at the desk. Starting from 30 random labels, each round the operators decide 50
tickets chosen by the order under test, the model (char 1–2-gram TF-IDF + LinearSVC, refitted
from the labels only) is retrained, and its accuracy on the test slice is recorded. Orders:

- ``deadline``: the desk's default; deadlines are unrelated to content, so it is a random order;
- ``margin``:   smallest margin between suggestions 1 and 2 first (uncertainty alone);
- ``learn``:    the desk's ``order=learn``, ``triage.review.learn_scores`` (1 − margin) ·
                log(1 + tickets sharing the same pair of suggestions), on the same top-3 the
                product stores (softmax of the SVM scores here, the model's probabilities there).

Reported: accuracy after 100 / 300 / 1,000 reviewed labels, mean and per seed, and how many labels
each order needs to reach the deadline order's accuracy at 1,000.

    nice -n 5 .venv/bin/python bench/review_active_learning.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from triage.review import learn_scores  # noqa: E402

DATA = Path("/work/shared/data/tipdm2020c_train/messages_7label.csv")
START, STEP, CHECKPOINTS = 30, 50, (100, 300, 1000)
ORDERS = ("deadline", "margin", "learn")


def top3(scores: np.ndarray, classes: np.ndarray) -> list[list[list]]:
    """Softmax of the SVM's decision scores, top three as the product stores them."""
    z = np.exp(scores - scores.max(axis=1, keepdims=True))
    p = z / z.sum(axis=1, keepdims=True)
    idx = np.argsort(-p, axis=1)[:, :3]
    return [[[classes[j], float(p[i, j])] for j in row] for i, row in enumerate(idx)]


def pick(order: str, model: LinearSVC, X_pool, rng: np.random.Generator, k: int) -> np.ndarray:
    if order == "deadline":
        return rng.permutation(X_pool.shape[0])[:k]
    t3 = top3(model.decision_function(X_pool), model.classes_)
    margin = [-(t[0][1] - t[1][1]) for t in t3]
    score = np.array(margin if order == "margin" else learn_scores(t3))
    return np.argsort(-score, kind="stable")[:k]


def run(order: str, seed: int, X, y: np.ndarray) -> dict[int, float]:
    idx_pool, idx_test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(idx_pool, START, replace=False))
    pool = np.setdiff1d(idx_pool, labelled)
    acc: dict[int, float] = {}
    while True:
        model = LinearSVC(C=1.0, random_state=seed).fit(X[labelled], y[labelled])
        n = len(labelled)
        if n in CHECKPOINTS or n == START or n % 100 == 0:
            acc[n] = float((model.predict(X[idx_test]) == y[idx_test]).mean())
        if n >= max(CHECKPOINTS):
            return acc
        k = min(STEP, max(CHECKPOINTS) - n, *[c - n for c in CHECKPOINTS if c > n])
        chosen = pick(order, model, X[pool], rng, k)
        labelled += list(pool[chosen])
        pool = np.delete(pool, chosen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "review_active_learning.json"))
    args = ap.parse_args()
    df = pd.read_csv(DATA).dropna(subset=["text", "label"])
    y = df["label"].astype(str).to_numpy()
    t0 = time.perf_counter()
    X = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True, min_df=2).fit_transform(
        df["text"]
    )
    curves: dict[str, dict[int, list[float]]] = {o: {} for o in ORDERS}
    for seed in args.seeds:
        for order in ORDERS:
            for n, a in run(order, seed, X, y).items():
                curves[order].setdefault(n, []).append(a)
            print(
                f"seed {seed} {order:9s} " + " ".join(f"{c}:{curves[order][c][-1]:.3f}" for c in CHECKPOINTS)
            )
    mean = {o: {n: round(float(np.mean(v)), 4) for n, v in sorted(c.items())} for o, c in curves.items()}
    target = mean["deadline"][max(CHECKPOINTS)]
    needs = {o: next((n for n, a in m.items() if a >= target), None) for o, m in mean.items()}
    result = {
        "data": str(DATA), "messages": len(y), "classes": int(len(set(y))), "seeds": args.seeds,
        "model": "char 1-2-gram TF-IDF (sublinear, min_df 2) + LinearSVC(C=1)", "start": START, "step": STEP,
        "accuracy_mean": {o: {str(c): m[c] for c in CHECKPOINTS} for o, m in mean.items()},
        "accuracy_per_seed": {o: {str(c): [round(a, 4) for a in curves[o][c]] for c in CHECKPOINTS} for o in ORDERS},
        "curve_mean": {o: {str(n): a for n, a in m.items()} for o, m in mean.items()},
        "labels_to_reach_deadline_at_1000": {"target": target, **needs},
        "seconds": round(time.perf_counter() - t0, 1), "load_avg": os.getloadavg(),
    }  # fmt: skip
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {k: result[k] for k in ("accuracy_mean", "labels_to_reach_deadline_at_1000", "seconds")}, indent=1
        )
    )


if __name__ == "__main__":
    main()
