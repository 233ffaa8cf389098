"""Compare the default ticket classifier with the two reference baselines on real text.

Repeated stratified k-fold cross-validation on the 495 real TipDM messages (7 labels, title +
body), the only real 7-label data we have; the ~9,000-message target split is held out. Prints
macro-F1 and accuracy mean ± sd per model and writes bench/results/classifier_compare.json.

Models:
- ``default``      TicketClassifier() with default settings (what `triage model train` fits,
                   --taxonomy none user dictionary)
- ``char13_svm``   reference 1: TF-IDF character 1–3-grams + LinearSVC (0.923 on the hidden split)
- ``word12_svm``   reference 2 proxy: jieba words + word bigrams, TF-IDF + LinearSVC (the
                   fastText reference, 0.883, used the same features with a shallow net)

    .venv/bin/python bench/classifier_compare.py [--repeats 3] [--folds 5] [--variant JSON …]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "data_samples/real/tipdm2020c_sample/messages_labeled.csv"


def load_sample(path: Path = SAMPLE) -> tuple[np.ndarray, np.ndarray]:
    df = pd.read_csv(path)
    X = np.column_stack([df["留言主题"].fillna("").astype(str), df["留言详情"].fillna("").astype(str)])
    return X.astype(object), df["一级分类"].astype(str).to_numpy()


def char_svm():
    from triage.classify.model import TicketText

    return make_pipeline(
        TicketText("whole"),
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
        LinearSVC(),
    )


def word_svm():
    from triage.classify.model import TicketText

    return make_pipeline(
        TicketText("words"),
        TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\S+", ngram_range=(1, 2), sublinear_tf=True),
        LinearSVC(),
    )


def default_model(**params):
    from triage.classify.model import TicketClassifier
    from triage.classify.train import user_words_for

    params.setdefault("user_words", user_words_for("none"))
    return TicketClassifier(**params)


def cross_validate(make, X, y, folds: int, repeats: int, seed: int = 0) -> dict:
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    f1s, accs, secs = [], [], []
    for tr, te in cv.split(X, y):
        t0 = time.perf_counter()
        est = make().fit(X[tr], y[tr])
        secs.append(time.perf_counter() - t0)
        pred = est.predict(X[te])
        f1s.append(f1_score(y[te], pred, average="macro"))
        accs.append(accuracy_score(y[te], pred))
    return {
        "macro_f1_mean": float(np.mean(f1s)),
        "macro_f1_sd": float(np.std(f1s, ddof=1)),
        "accuracy_mean": float(np.mean(accs)),
        "accuracy_sd": float(np.std(accs, ddof=1)),
        "fit_seconds_mean": float(np.mean(secs)),
        "n_folds": len(f1s),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--input", type=Path, default=SAMPLE)
    ap.add_argument(
        "--variant", action="append", default=[], help="JSON TicketClassifier params to compare too"
    )
    ap.add_argument("--only-variants", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/classifier_compare.json")
    args = ap.parse_args()

    X, y = load_sample(args.input)
    models = {} if args.only_variants else {
        "default": default_model, "char13_svm": char_svm, "word12_svm": word_svm,
    }  # fmt: skip
    for v in args.variant:
        p = json.loads(v)
        models[f"variant {v}"] = lambda p=p: default_model(**p)
    results = {}
    print(f"{len(y)} messages, {len(set(y))} labels, {args.repeats}×{args.folds}-fold stratified CV")
    for name, make in models.items():
        r = cross_validate(make, X, y, args.folds, args.repeats)
        results[name] = r
        print(
            f"{name:40s} macro-F1 {r['macro_f1_mean']:.4f} ± {r['macro_f1_sd']:.4f}  "
            f"accuracy {r['accuracy_mean']:.4f} ± {r['accuracy_sd']:.4f}  fit {r['fit_seconds_mean']:.2f} s",
            flush=True,
        )
    if not args.only_variants:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"input": str(args.input), "folds": args.folds, "repeats": args.repeats,
                                        "results": results}, ensure_ascii=False, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
