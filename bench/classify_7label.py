"""The 7-label task at real scale: `triage model train --taxonomy none` defaults vs the plain
character-SVM reference, on the 7,239 real TipDM messages (compact form) and on raw messages.

1. Repeated stratified k-fold on the *tuning* part of the 7,239 (the locked 20 % is left out:
   data_samples/real/locked_split.json); macro-F1 per fold, mean ± sd.
2. Cross-form: train on the tuning 7,239 less every compact twin of the scored raw messages, score
   on raw messages (title, newline, body) of the 644 hand-labelled set with their 7 labels: the
   tuning rows with an odd message id (the even ones taught the stopword list,
   scripts/learn_stopwords.py). ``unseen`` = those with no twin anywhere in the 7,239.
3. ``--locked`` (once, at the end): train on the tuning 7,239; score the locked 20 % (compact) and
   the locked raw rows of the 644 (their twins removed from training).

    .venv/bin/python bench/classify_7label.py [--variants ref default] [--folds 5 --repeats 2] [--locked]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make(variant: str, params: dict):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    from triage.classify.model import TicketClassifier
    from triage.classify.train import default_params

    if variant == "ref":  # the reference the issue names: plain char 1–3-gram TF-IDF + LinearSVC
        return make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 3)), LinearSVC())
    if variant == "default":  # exactly what `triage model train --taxonomy none` fits
        return TicketClassifier(**(default_params("none") | params))
    raise ValueError(variant)


def f1(y, p) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, p, average="macro"))


def raw_x(df) -> list[str]:
    return [f"{t}\n{b}" for t, b in zip(df["title"], df["text"], strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", nargs="+", default=["ref", "default"])
    ap.add_argument(
        "--params", type=json.loads, default={}, help="JSON TicketClassifier overrides for 'default'"
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-cv", action="store_true")
    ap.add_argument("--locked", action="store_true", help="score the locked parts (once, at the end)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from sklearn.model_selection import RepeatedStratifiedKFold

    from triage.classify.realdata import load_labeled29, load_tipdm7, twin_rows, twins

    t7 = load_tipdm7("tuning")
    X7, y7 = t7["text"].to_numpy(dtype=object), t7["label"].to_numpy(dtype=object)
    all7 = load_tipdm7("all")
    out: dict = {"params": args.params, "loadavg_start": os.getloadavg(), "variants": {}}
    for v in args.variants:
        res: dict = {}
        if not args.skip_cv:
            scores, fit_s = [], []
            cv = RepeatedStratifiedKFold(n_splits=args.folds, n_repeats=args.repeats, random_state=0)
            for tr, te in cv.split(X7, y7):
                t0 = time.perf_counter()
                m = make(v, args.params).fit(X7[tr], y7[tr])
                fit_s.append(time.perf_counter() - t0)
                scores.append(f1(y7[te], m.predict(X7[te])))
                print(v, "fold", len(scores), round(scores[-1], 4), f"{fit_s[-1]:.0f}s", flush=True)
            res["cv"] = {"n": len(X7), "folds": args.folds, "repeats": args.repeats,
                         "macro_f1_mean": round(float(np.mean(scores)), 4),
                         "macro_f1_sd": round(float(np.std(scores, ddof=1)), 4),
                         "per_fold": [round(s, 4) for s in scores], "fit_seconds_mean": round(float(np.mean(fit_s)), 1)}  # fmt: skip
        parts = (
            []
            if args.locked
            else [("crossform", load_labeled29("tuning").query("message_id % 2 == 1 and label7.notna()"))]
        )
        if args.locked:
            parts.append(("locked_raw", load_labeled29("locked").query("label7.notna()")))
        for name, raw in parts:
            xr = raw_x(raw)
            tw = twins(xr, all7["text"].tolist())
            drop = set(all7.index[twin_rows(xr, all7["text"].tolist())])  # near-duplicate twins too
            keep = ~t7.index.isin(drop)
            m = make(v, args.params).fit(X7[keep], y7[keep])
            pred = m.predict(np.array(xr, dtype=object))
            yr = raw["label7"].to_numpy(dtype=object)
            unseen = tw < 0
            res[name] = {"n": len(yr), "macro_f1": round(f1(yr, pred), 4), "accuracy": round(float((pred == yr).mean()), 4),
                         "n_unseen": int(unseen.sum()), "accuracy_unseen": round(float((pred == yr)[unseen].mean()), 4),
                         "train_rows": int(keep.sum())}  # fmt: skip
            print(v, name, res[name], flush=True)
        if args.locked:
            lk = load_tipdm7("locked")
            m = make(v, args.params).fit(X7, y7)
            pred = m.predict(lk["text"].to_numpy(dtype=object))
            res["locked_compact"] = {
                "n": len(lk),
                "macro_f1": round(f1(lk["label"].to_numpy(dtype=object), pred), 4),
            }
            print(v, "locked_compact", res["locked_compact"], flush=True)
        out["variants"][v] = res
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps(out["variants"], indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
