"""29 codes on the read real messages, cross-fitted: how right is the champion's recipe on the 5,415
tuning messages of the 7,239 that a person labelled (data_samples/real/tipdm7_read29.csv), and how
precise is it above a confidence threshold there?

k-fold over the read messages: each fold's model is trained as ``scripts/train_champion.py``
trains the champion (generated rows + the 386 tuning hand-labelled messages + the other folds'
read messages + the pseudo-coded rest), and scores the held-out fold. The messages are in the
compact form (word-segmented, stopwords and punctuation removed, no title), not as tickets arrive:
a larger real set than the 386, in another form. Out-of-fold probabilities: ``--save-oof FILE``.

    .venv/bin/python bench/classify_read_cv.py [--folds 5] [--out bench/results/classify_read_cv.json]
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
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--save-oof", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from train_champion import X2, training_frame

    from triage.classify.model import TicketClassifier
    from triage.classify.realdata import load_read29
    from triage.classify.train import choose_threshold, default_params

    t0 = time.perf_counter()
    frame = training_frame()  # the champion's rows; each fold puts back the read ones it trains on
    read = load_read29().reset_index(drop=True)
    fixed = frame[frame["source"] != "tipdm7-read"]
    out: dict = {"loadavg_start": os.getloadavg(), "n_read": len(read), "folds": args.folds}
    oof, classes = None, None
    for k, (tr, te) in enumerate(
        StratifiedKFold(args.folds, shuffle=True, random_state=0).split(read, read["code"])
    ):
        fold = read.iloc[tr].assign(title="", category=read["code"].iloc[tr], source="tipdm7-read")
        rows = pd.concat([fixed, fold[fixed.columns]], ignore_index=True)
        est = TicketClassifier(**default_params("builtin")).fit(
            X2(rows["title"], rows["text"]), rows["category"].to_numpy()
        )
        proba = est.predict_proba(X2([""] * len(te), read["text"].iloc[te]))
        if oof is None:
            classes, oof = est.classes_, np.zeros((len(read), len(est.classes_)))
        assert list(est.classes_) == list(classes)
        oof[te] = proba
        print(f"fold {k}: {time.perf_counter() - t0:.0f}s", flush=True)
    y, clear = read["code"].to_numpy(), read["clear"].to_numpy()
    pred, conf = classes[oof.argmax(1)], oof.max(1)
    ok = pred == y
    out["accuracy_clear"] = round(float(ok[clear].mean()), 4)
    out["accuracy_all"] = round(float(ok.mean()), 4)
    t, cov, prec = choose_threshold(y[clear], oof[clear], classes)
    out["threshold_95_clear"] = {"threshold": t, "coverage": round(cov, 4), "precision": round(prec, 4)}
    out["at_thresholds_clear"] = {
        f"{th:.2f}": {"coverage": round(float((conf[clear] >= th).mean()), 4),
                      "precision": round(float(ok[clear & (conf >= th)].mean()), 4)}
        for th in (0.4, 0.5, 0.6, 0.7, 0.8)
    }  # fmt: skip
    out["per_class_clear"] = {
        c: {"n": int(((y == c) & clear).sum()), "recall": round(float(ok[(y == c) & clear].mean()), 3)}
        for c in pd.Series(y[clear]).value_counts().index
    }
    out["seconds"] = round(time.perf_counter() - t0)
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps(out, indent=1, ensure_ascii=False))
    if args.save_oof:
        np.savez(args.save_oof, proba=oof, classes=classes, y=y.astype(object), clear=clear)
    if args.out:
        args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
