"""Estimate the shipped champion's accuracy on real citizen language in the 29 built-in codes.

The 420-message target set (another city's board) is held out; the closest stand-in we have is
data_samples/real/tipdm_labeled29.csv (644 real TipDM messages hand-labelled into the 29 codes,
`clear` marks unambiguous ones). Two honest estimates:

1. k-fold over the 644: each fold's model is trained on the 12,000 synthetic tickets + the other
   real folds (as the champion is), scored on the held-out fold's clear==True rows (and all rows);
2. the synthetic-only model scored on all 644 real rows (no real text in training at all).

Models are built as ``triage model train --taxonomy builtin`` builds them (taxonomy keywords and
gazetteer names as user words, the taxonomy's keyword groups); ``--params`` overrides, e.g.
``'{"keyword_weight": 0}'`` for builtin-v1's features. The JSON also reports abstention on the
held-out real rows at the shipped champion's threshold (coverage and precision).

``--real-weight W`` weights each real training row W times a synthetic one (``sample_weight``,
scaled to mean 1 by ``triage.classify.train.source_weights``, as ``triage model train --weight``
does); the default 1 is the unweighted fit.

    .venv/bin/python bench/classify_real29.py [--folds 5] [--real-weight 6] [--fold-seed 0] [--skip-synthetic-only]
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
from sklearn.model_selection import StratifiedKFold, train_test_split

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--skip-synthetic-only", action="store_true")
    ap.add_argument("--fold-seed", type=int, default=0, help="shuffle seed of the k folds (a second look)")
    ap.add_argument("--real-weight", type=float, default=1.0, help="weight of a real row vs a synthetic one")
    ap.add_argument(
        "--balance-unweighted",
        action="store_true",
        help="class weights from unweighted class counts (a diagnostic; 'balanced' uses weighted counts)",
    )
    ap.add_argument(
        "--real-fraction",
        type=float,
        default=1.0,
        help="train each fold on this share of the other folds' real rows (a learning curve in real rows)",
    )
    ap.add_argument(
        "--joined",
        action="store_true",
        help="give the title as the first line of the text (as `--text-col title --text-col text` does)",
    )
    ap.add_argument("--params", type=json.loads, default={}, help="JSON TicketClassifier params (a variant)")
    ap.add_argument(
        "--training",
        type=Path,
        default=ROOT / "data_samples/training/labeled_tickets.parquet",
        help="the synthetic rows are taken from this training file",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/classify_real29.json")
    ap.add_argument(
        "--errors", type=Path, help="write every held-out prediction here (CSV) for error analysis"
    )
    ap.add_argument(
        "--save-proba", type=Path,
        help="write each fold's held-out probabilities, row indices and classes here (.npz), "
        "for offline analyses such as bench/classify_real29_prior.py",
    )  # fmt: skip
    args = ap.parse_args()
    from triage.classify.model import TicketClassifier
    from triage.classify.registry import champion_version
    from triage.classify.train import keyword_groups_for, source_weights, user_words_for, validation_split

    train = pd.read_parquet(args.training).fillna("")
    synth = train[train["source"] == "synthetic"]
    real = pd.read_csv(ROOT / "data_samples/real/tipdm_labeled29.csv").fillna({"title": "", "text": ""})
    words = user_words_for("builtin")
    # the champion's construction (`triage model train --taxonomy builtin`); --params overrides
    base = {"user_words": words, "keyword_groups": keyword_groups_for("builtin")} | args.params

    def X(df):
        if args.joined:  # how the CLI joins repeated --text-col columns: in order, one per line
            joined = [f"{t}\n{b}" if t.strip() else b for t, b in zip(df["title"].astype(str), df["text"].astype(str), strict=True)]
            return np.column_stack([np.full(len(df), "", dtype=object), np.array(joined, dtype=object)])
        return np.column_stack([df["title"].astype(str), df["text"].astype(str)]).astype(object)

    load_start = os.getloadavg()
    t_start = time.perf_counter()
    out = {"real_weight": args.real_weight, "fold_seed": args.fold_seed, "params": args.params,
           "real_fraction": args.real_fraction, "joined": args.joined}  # fmt: skip
    if args.balance_unweighted:
        out["class_weight"] = "balanced on unweighted counts"
    if not args.skip_synthetic_only:
        t0 = time.perf_counter()
        est = TicketClassifier(**base).fit(X(synth), synth["category"].to_numpy())
        ok = est.predict(X(real)) == real["category"].to_numpy()
        out["synthetic_only"] = {"accuracy_all": float(ok.mean()), "accuracy_clear": float(ok[real["clear"]].mean()),
                                 "n_all": len(real), "n_clear": int(real["clear"].sum()),
                                 "fit_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        print("synthetic-only:", out["synthetic_only"], flush=True)

    # rare codes (< folds examples) cannot be stratified; fold them by label7 instead
    strat = real["label7"].fillna("?").astype(str).to_numpy()
    clear_acc, all_acc, real_train_rows = [], [], []
    held_out: list[pd.DataFrame] = []
    saved: dict[str, np.ndarray] = {}
    for k, (tr, te) in enumerate(
        StratifiedKFold(args.folds, shuffle=True, random_state=args.fold_seed).split(
            np.zeros(len(real)), strat
        )
    ):
        if args.real_fraction < 1:  # the same subsample for every variant: seeded by the fold
            tr = train_test_split(tr, train_size=args.real_fraction, stratify=strat[tr], random_state=k)[0]
        real_train_rows.append(len(tr))
        fit_df = pd.concat(
            [synth[["title", "text", "category"]], real.iloc[tr][["title", "text", "category"]]]
        )
        is_real = np.r_[np.zeros(len(synth), bool), np.ones(len(tr), bool)]
        sw = (
            None
            if args.real_weight == 1
            else source_weights(np.where(is_real, "real", "synthetic"), {"real": args.real_weight})
        )
        cw = "balanced"
        if args.balance_unweighted and sw is not None:
            # "balanced" computed from unweighted counts, folded into the row weights (liblinear
            # multiplies class and row weights; a class_weight dict would not survive the label
            # encoding inside the calibration folds); the calibration sees these weights too
            y_fit = fit_df["category"].to_numpy()
            labels, inv, counts = np.unique(y_fit, return_inverse=True, return_counts=True)
            sw = sw * (len(y_fit) / (len(labels) * counts))[inv]
            cw = None
        est = TicketClassifier(**(base | {"class_weight": cw})).fit(
            X(fit_df), fit_df["category"].to_numpy(), sample_weight=sw
        )
        held = real.iloc[te]
        proba = est.predict_proba(X(held))
        pred, confidence = est.classes_[proba.argmax(axis=1)], proba.max(axis=1)
        ok = pred == held["category"].to_numpy()
        runner_up = np.sort(proba, axis=1)[:, -2]  # for trying other confidence scores offline
        held_out.append(held.assign(predicted=pred, confidence=confidence, runner_up=runner_up, fold=k))
        saved |= {f"proba{k}": proba, f"te{k}": te, f"tr{k}": tr, "classes": est.classes_}
        clear_acc.append(float(ok[held["clear"].to_numpy()].mean()))
        all_acc.append(float(ok.mean()))
        print(f"fold {k}: clear {clear_acc[-1]:.4f}  all {all_acc[-1]:.4f}", flush=True)
    out["kfold"] = {"folds": args.folds, "accuracy_clear_mean": float(np.mean(clear_acc)),
                    "accuracy_clear_sd": float(np.std(clear_acc, ddof=1)), "accuracy_all_mean": float(np.mean(all_acc)),
                    "accuracy_all_sd": float(np.std(all_acc, ddof=1)), "per_fold_clear": clear_acc,
                    "per_fold_all": all_acc, "real_train_rows": real_train_rows}  # fmt: skip
    every = pd.concat(held_out)
    clear = every[every["clear"]]
    # per true code on the clear rows: where the errors are, and what they are taken for
    out["per_class_clear"] = {
        code: {"n": len(g), "recall": round(float((g["predicted"] == code).mean()), 3),
               "taken_for": g.loc[g["predicted"] != code, "predicted"].value_counts().head(3).to_dict()}
        for code, g in sorted(clear.groupby("category"), key=lambda kv: -len(kv[1]))
    }  # fmt: skip
    # abstention on real text at the shipped champion's threshold: the share auto-dispatched and how
    # often those are right, on the real rows that were not in the champion's validation split (the
    # threshold was chosen there)
    card = json.loads((ROOT / "models" / champion_version() / "card.json").read_text())
    _, va = validation_split(train["category"].to_numpy(dtype=object), seed=card["seed"])
    chose = set(train.iloc[va].loc[lambda d: d["source"] != "synthetic", "text"])
    unseen = every[~every["text"].isin(chose)]
    out["abstention"] = {"model": card["version"], "threshold": card["threshold"],
                         "rows_left_out_as_threshold_validation": len(every) - len(unseen)}  # fmt: skip
    for name, rows in (("clear", unseen[unseen["clear"]]), ("all", unseen)):
        auto = rows[rows["confidence"] >= card["threshold"]]
        out["abstention"][name] = {"n": len(rows), "coverage": round(len(auto) / len(rows), 3),
                                   "precision": round(float((auto["predicted"] == auto["category"]).mean()), 3)}  # fmt: skip
    if args.errors:
        every.to_csv(args.errors, index=False)
    if args.save_proba:
        np.savez(args.save_proba, **saved)
    out["seconds"] = round(time.perf_counter() - t_start, 1)
    out["loadavg_start"] = [round(x, 2) for x in load_start]
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print("k-fold:", out["kfold"])
    print("abstention:", out["abstention"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
