"""Retraining from analysts' labels, with a promotion gate.

``retrain`` gathers the labelled tickets, sets aside a stratified held-out slice of them (real
tickets, never seen by the challenger), trains a challenger on the base training file (optional)
plus the other labelled tickets, scores champion and challenger on that same slice, and promotes
the challenger only if :func:`promotion_gate` allows it. The decision and both scores go in the
challenger's card, whether or not it is promoted.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from triage.classify import registry
from triage.classify.train import MIN_CLASS_SIZE, metrics, prepare, train_model

MAX_MACRO_F1_DROP = 0.005
MAX_RECALL_DROP = 0.05
MIN_LABELS = 50
GENERATED_SOURCES = ("synthetic",)  # the source name the shipped sample gives its generated rows


def promotion_gate(
    champion: dict[str, Any],
    challenger: dict[str, Any],
    *,
    max_macro_f1_drop: float = MAX_MACRO_F1_DROP,
    max_recall_drop: float = MAX_RECALL_DROP,
) -> dict[str, Any]:
    """Compare two :func:`~triage.classify.train.metrics` results on the same held-out slice.

    Promote only if macro-F1 does not drop by more than ``max_macro_f1_drop`` and no class
    (present in the slice) loses more than ``max_recall_drop`` recall."""
    reasons = []
    f1_drop = champion["macro_f1"] - challenger["macro_f1"]
    if f1_drop > max_macro_f1_drop:
        reasons.append(
            f"macro-F1 drops by {f1_drop:.4f} ({champion['macro_f1']:.4f} → {challenger['macro_f1']:.4f}) "
            f"> {max_macro_f1_drop}"
        )
    recall_drops = {}
    for cls, pc in champion["per_class"].items():
        if pc["support"] == 0:
            continue
        new = challenger["per_class"].get(cls, {"recall": 0.0})["recall"]
        if pc["recall"] - new > max_recall_drop:
            recall_drops[cls] = round(pc["recall"] - new, 4)
    if recall_drops:
        reasons.append(f"recall drops by more than {max_recall_drop} for: " + ", ".join(
            f"{c} (−{d})" for c, d in sorted(recall_drops.items())))  # fmt: skip
    return {
        "decision": "refused" if reasons else "promoted",
        "reasons": reasons,
        "macro_f1_drop": round(f1_drop, 4),
        "recall_drops": recall_drops,
        "rules": {"max_macro_f1_drop": max_macro_f1_drop, "max_recall_drop": max_recall_drop},
    }


def _base_frame(path: Path | str | None) -> pd.DataFrame:
    """The base training rows with a ``source`` column (the file's own, else "base")."""
    if not path:
        return pd.DataFrame(columns=["title", "text", "category", "source"])
    from triage.tables import read_table

    df = read_table(path)
    source = df["source"] if "source" in df.columns else pd.Series("base", index=df.index)
    return df[["title", "text", "category"]].assign(source=source.fillna("base").astype(str))


def retrain(
    *,
    base: Path | str | None = None,
    version: str | None = None,
    seed: int = 0,
    holdout_fraction: float = 0.2,
    min_labels: int = MIN_LABELS,
    params: dict[str, Any] | None = None,
    promote: bool = True,
) -> dict[str, Any]:
    """Train a challenger from the labels table (+ ``base``), gate it against the champion, write
    it to models/<version> with the decision in its card, promote it if it passes."""
    from triage.labels import labeled_tickets

    labels = labeled_tickets()
    if len(labels) < min_labels:
        return {"decision": "skipped", "reasons": [f"only {len(labels)} labelled tickets (< {min_labels})"]}
    y = labels["category"].to_numpy()
    counts = labels["category"].value_counts()
    # classes with one label cannot be split; they go to training only
    can_split = labels["category"].map(counts) >= 2
    idx = np.arange(len(labels))
    tr_idx, ho_idx = train_test_split(
        idx[can_split.to_numpy()],
        test_size=holdout_fraction,
        random_state=seed,
        stratify=y[can_split.to_numpy()],
    )
    tr_idx = np.concatenate([tr_idx, idx[~can_split.to_numpy()]])
    holdout = labels.iloc[ho_idx]
    train_df = pd.concat(
        [_base_frame(base), labels.iloc[tr_idx][["title", "text", "category"]].assign(source="labels")],
        ignore_index=True,
    )
    # a class with too few examples cannot be learnt or calibrated: leave it out, say so in the card
    train_counts = train_df["category"].value_counts()
    too_few = sorted(train_counts[train_counts < MIN_CLASS_SIZE].index)
    train_df = train_df[~train_df["category"].isin(too_few)]
    # the threshold must also hold on real rows (labels, real base rows), not only generated ones
    generated = tuple(s for s in GENERATED_SOURCES if (train_df["source"] == s).any())
    data = prepare(
        train_df["title"], train_df["text"], train_df["category"], taxonomy_mode="builtin",
        sources=train_df["source"], generated_sources=generated,
    )  # fmt: skip

    now = dt.datetime.now(dt.UTC)
    version = version or now.strftime("retrain-%Y%m%d-%H%M%S")
    est, card = train_model(
        data, taxonomy_mode="builtin", seed=seed, version=version, params=params,
        source=f"labels table ({len(tr_idx)} tickets)" + (f" + {base}" if base else ""),
    )  # fmt: skip

    X_ho = np.column_stack([holdout["title"].fillna("").to_numpy(object), holdout["text"].to_numpy(object)])
    y_ho = holdout["category"].to_numpy()
    labels_all = sorted(set(y_ho))
    challenger_m = metrics(y_ho, est.predict(X_ho), labels=labels_all)
    champion_version = registry.champion_version()
    if champion_version is None:
        decision = {"decision": "promoted", "reasons": ["no champion yet"]}
        champion_m = None
    else:
        champ = registry.load_champion()
        champion_m = metrics(y_ho, champ.estimator.predict(X_ho), labels=labels_all)
        decision = promotion_gate(champion_m, challenger_m)
    decision.update(
        {
            "decided_at": now.isoformat(timespec="seconds"),
            "holdout": {"n": int(len(y_ho)), "source": "labels table, stratified slice", "seed": seed},
            "champion": {"version": champion_version, **_summary(champion_m)} if champion_m else None,
            "challenger": {"version": version, **_summary(challenger_m)},
        }
    )
    decision["classes_left_out"] = too_few
    card["promotion"] = decision
    out = registry.models_dir() / version
    registry.save_model(est, card, out)
    if promote and decision["decision"] == "promoted":
        registry.promote(version)
    return {"version": version, "directory": str(out), "champion": registry.champion_version(), **decision}


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "macro_f1": round(m["macro_f1"], 4),
        "accuracy": round(m["accuracy"], 4),
        "recall": {c: round(pc["recall"], 4) for c, pc in m["per_class"].items()},
    }


if __name__ == "__main__":  # pragma: no cover - manual use
    print(json.dumps(retrain(), ensure_ascii=False, indent=2))
