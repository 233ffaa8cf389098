"""Retraining from analysts' labels, with a promotion gate.

``retrain`` gathers the labelled tickets, sets aside a stratified held-out slice of them (real
tickets, never seen by the challenger), trains a challenger on the base training file (optional)
plus the other labelled tickets, scores champion and challenger on that same slice, and promotes
the challenger only if :func:`promotion_gate` allows it. The decision and both scores go in the
challenger's card, whether or not it is promoted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from triage.classify import registry
from triage.classify.train import MIN_CLASS_SIZE, TrainingDataError, metrics, prepare, train_model
from triage.ingest.readers import InputFileError

MAX_MACRO_F1_DROP = 0.005
MAX_RECALL_DROP = 0.05
MIN_LABELS = 50
# evidence the gate needs before it may promote (docs/classifier.md, *Retraining*): a held-out
# slice of at least MIN_HOLDOUT labelled tickets; a class's recall is judged only with at least
# MIN_HOLDOUT_PER_CLASS of its tickets held out; and the paired bootstrap interval of the macro-F1
# difference (challenger − champion, BOOTSTRAP_RESAMPLES resamples of the same tickets) must rule
# out a loss larger than MAX_MACRO_F1_DROP at 95 %
MIN_HOLDOUT = 100
MIN_HOLDOUT_PER_CLASS = 5
BOOTSTRAP_RESAMPLES = 1000
NOT_ENOUGH = "not enough evidence: not promoted"
GENERATED_SOURCES = ("synthetic", "tipdm7-weak")  # generated rows, and real text with machine-made codes


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


def paired_bootstrap(
    y: np.ndarray,
    champion_pred: np.ndarray,
    challenger_pred: np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """95 % paired bootstrap interval of macro-F1(challenger) − macro-F1(champion): both models are
    scored on the same resampled tickets, so what they share cancels out."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    labels = sorted(set(y))
    diffs = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, len(y), len(y))
        f = [
            f1_score(y[idx], p[idx], labels=labels, average="macro", zero_division=0)
            for p in (challenger_pred, champion_pred)
        ]
        diffs[i] = f[0] - f[1]
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"low": round(float(lo), 4), "high": round(float(hi), 4), "resamples": resamples}


def evidence_gate(
    y: np.ndarray,
    champion_pred: np.ndarray,
    challenger_pred: np.ndarray,
    *,
    min_holdout: int = MIN_HOLDOUT,
    min_per_class: int = MIN_HOLDOUT_PER_CLASS,
    max_macro_f1_drop: float = MAX_MACRO_F1_DROP,
    seed: int = 0,
) -> dict[str, Any]:
    """The promotion decision on one held-out slice: ``NOT_ENOUGH`` when the slice is too small or
    the interval cannot rule out a loss beyond the tolerance; otherwise ``promotion_gate``'s rules
    (recall judged only for classes with ``min_per_class`` held-out tickets)."""
    y = np.asarray(y, dtype=object)
    labels = sorted(set(y))
    champ_m = metrics(y, champion_pred, labels=labels)
    chall_m = metrics(y, challenger_pred, labels=labels)
    counts = Counter(y)
    judged = sorted(c for c, n in counts.items() if n >= min_per_class)
    evidence: dict[str, Any] = {
        "holdout_n": int(len(y)), "min_holdout": min_holdout, "min_per_class": min_per_class,
        "classes_judged": judged, "classes_too_few": {c: int(n) for c, n in sorted(counts.items()) if n < min_per_class},
    }  # fmt: skip
    if len(y) < min_holdout or not judged:
        reason = (
            f"held-out slice of {len(y)} labelled tickets (< {min_holdout})"
            if len(y) < min_holdout
            else f"no class has {min_per_class} held-out tickets"
        )
        return {"decision": NOT_ENOUGH, "reasons": [reason], "evidence": evidence}
    ci = paired_bootstrap(
        y, np.asarray(champion_pred, dtype=object), np.asarray(challenger_pred, dtype=object), seed=seed
    )
    evidence["macro_f1_difference_95ci"] = ci
    keep = {c: v for c, v in champ_m["per_class"].items() if c in judged}
    decision = promotion_gate({**champ_m, "per_class": keep}, chall_m, max_macro_f1_drop=max_macro_f1_drop)
    decision["evidence"] = evidence
    if decision["decision"] == "promoted" and ci["low"] < -max_macro_f1_drop:
        decision["decision"] = NOT_ENOUGH
        decision["reasons"] = [
            f"the 95 % interval of the macro-F1 difference [{ci['low']:+.4f}, {ci['high']:+.4f}] on {len(y)} "
            f"held-out tickets does not rule out a loss larger than {max_macro_f1_drop}"
        ]
    return decision


def _base_frame(path: Path | str | None) -> pd.DataFrame:
    """The base training rows with a ``source`` column (the file's own, else "base")."""
    if not path:
        return pd.DataFrame(columns=["title", "text", "category", "source"])
    from triage.tables import read_table

    df = read_table(path)
    missing = [c for c in ("title", "text", "category") if c not in df.columns]
    if missing:
        raise TrainingDataError(
            f"base file {path} has no column(s) {', '.join(missing)}; it has {', '.join(map(str, df.columns))}"
        )
    source = df["source"] if "source" in df.columns else pd.Series("base", index=df.index)
    return df[["title", "text", "category"]].assign(source=source.fillna("base").astype(str))


def _holdout_split(categories: pd.Series, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray] | str:
    """(training, held-out) positions, stratified, or the reason no held-out slice can be made.

    Every category with at least two labels has a ticket on each side, so a small labels table gives
    a held-out slice of one ticket per category rather than a crash; single labels go to training."""
    counts = categories.value_counts()
    splittable = (categories.map(counts) >= 2).to_numpy()
    n, k = int(splittable.sum()), int((counts >= 2).sum())
    if k == 0:
        return "no category has two labels: nothing can be held out to compare the models on"
    n_test = max(math.ceil(fraction * n), k)  # ≤ n − k, since every such category has ≥ 2 labels
    idx = np.arange(len(categories))
    tr, ho = train_test_split(
        idx[splittable], test_size=n_test, random_state=seed, stratify=categories.to_numpy()[splittable]
    )
    return np.concatenate([tr, idx[~splittable]]), ho


def _inputs_fingerprint(
    labels: pd.DataFrame, base: Path | str | None, seed: int, fraction: float, params: dict[str, Any] | None
) -> str:
    """What a retrain learns from: the labels, the base file, the settings and the taxonomy version.
    The same fingerprint twice means the same challenger twice."""
    from triage.taxonomy import load_taxonomy

    h = hashlib.sha256()
    for r in labels[["ticket_id", "title", "text", "category"]].fillna("").itertuples(index=False):
        h.update("\x1f".join(map(str, r)).encode() + b"\x1e")
    h.update(registry._sha256(Path(base)).encode() if base else b"-")
    h.update(json.dumps([seed, fraction, params or {}, load_taxonomy().version], sort_keys=True).encode())
    return h.hexdigest()


def _trained_before(fingerprint: str) -> str | None:
    """The model version an earlier retrain made from exactly these inputs, if any."""
    root = registry.models_dir()
    for d in sorted(root.iterdir()) if root.exists() else []:
        try:
            card = registry.read_card(d / registry.CARD_JSON)
        except (registry.ModelError, OSError):
            continue
        promotion = registry._section(card, "promotion")
        # a dry run ("passed, not promoted") does not count: run with promote=true, it may promote
        if promotion.get("inputs_sha256") == fingerprint and promotion.get("decision") in (
            "promoted",
            "refused",
            NOT_ENOUGH,
        ):
            return d.name
    return None


def retrain(
    *,
    base: Path | str | None = None,
    version: str | None = None,
    seed: int = 0,
    holdout_fraction: float = 0.2,
    min_labels: int = MIN_LABELS,
    params: dict[str, Any] | None = None,
    promote: bool = True,
    min_holdout: int = MIN_HOLDOUT,
) -> dict[str, Any]:
    """Train a challenger from the labels table (+ ``base``), gate it against the champion, write
    it to models/<version> with the decision in its card, promote it if it passes (and ``promote``).

    Skips, with the reason, when there are too few labels, when no held-out slice can be made, when
    what is left cannot be trained on, and when nothing changed since an earlier retrain (the same
    labels, base file and settings: the weekly run does not churn the champion)."""
    from triage.labels import labeled_tickets

    labels = labeled_tickets()
    if len(labels) < min_labels:
        return {"decision": "skipped", "reasons": [f"only {len(labels)} labelled tickets (< {min_labels})"]}
    fingerprint = _inputs_fingerprint(labels, base, seed, holdout_fraction, params)
    earlier = _trained_before(fingerprint)
    if earlier:
        return {
            "decision": "skipped",
            "reasons": [
                f"labels, base file and settings are unchanged since {earlier}: nothing new to learn"
            ],
        }
    champion_version = registry.champion_version()
    if champion_version is not None:
        try:
            champ = registry.load_champion()
        except registry.ModelError as exc:  # nothing to compare a challenger with: fix that first
            return {"decision": "skipped", "reasons": [f"the champion cannot be loaded: {exc}"]}
    split = _holdout_split(labels["category"], holdout_fraction, seed)
    if isinstance(split, str):
        return {"decision": "skipped", "reasons": [split]}
    tr_idx, ho_idx = split
    holdout = labels.iloc[ho_idx]
    try:
        base_rows = _base_frame(base)
    except (TrainingDataError, InputFileError) as exc:
        return {"decision": "skipped", "reasons": [str(exc)]}
    train_df = pd.concat(
        [base_rows, labels.iloc[tr_idx][["title", "text", "category"]].assign(source="labels")],
        ignore_index=True,
    )
    # a class with too few examples cannot be learnt or calibrated: leave it out, say so in the card
    train_counts = train_df["category"].value_counts()
    too_few = sorted(train_counts[train_counts < MIN_CLASS_SIZE].index)
    train_df = train_df[~train_df["category"].isin(too_few)]
    # the threshold must also hold on real rows (labels, real base rows), not only generated ones
    generated = tuple(s for s in GENERATED_SOURCES if (train_df["source"] == s).any())
    try:
        data = prepare(
            train_df["title"], train_df["text"], train_df["category"], taxonomy_mode="builtin",
            sources=train_df["source"], generated_sources=generated,
        )  # fmt: skip
    except TrainingDataError as exc:  # e.g. one category left once the small ones are set aside
        return {"decision": "skipped", "reasons": [f"cannot train a challenger: {exc}"]}

    now = dt.datetime.now(dt.UTC)
    version = version or now.strftime("retrain-%Y%m%d-%H%M%S")
    est, card = train_model(
        data, taxonomy_mode="builtin", seed=seed, version=version, params=params,
        source=f"labels table ({len(tr_idx)} tickets)" + (f" + {base}" if base else ""),
    )  # fmt: skip

    X_ho = np.column_stack([holdout["title"].fillna("").to_numpy(object), holdout["text"].to_numpy(object)])
    y_ho = holdout["category"].to_numpy()
    labels_all = sorted(set(y_ho))
    challenger_pred = est.predict(X_ho)
    challenger_m = metrics(y_ho, challenger_pred, labels=labels_all)
    if champion_version is None:
        decision = {"decision": "promoted", "reasons": ["no champion yet"]}
        champion_m = None
    else:
        champion_pred = champ.estimator.predict(X_ho)
        champion_m = metrics(y_ho, champion_pred, labels=labels_all)
        decision = evidence_gate(y_ho, champion_pred, challenger_pred, min_holdout=min_holdout, seed=seed)
    decision["gate"] = {"promoted": "passed", NOT_ENOUGH: "not enough evidence"}.get(
        decision["decision"], "refused"
    )
    if decision["gate"] == "passed" and not promote:  # the card says what happened, not what could have
        decision["decision"] = "passed, not promoted"
        decision["reasons"] = [*decision["reasons"], "promotion not requested (promote=false)"]
    decision.update(
        {
            "decided_at": now.isoformat(timespec="seconds"),
            "holdout": {
                "n": int(len(y_ho)),
                "source": "labels table (analysts' real labels), stratified slice",
                "seed": seed,
            },
            "champion": {"version": champion_version, **_summary(champion_m)} if champion_m else None,
            "challenger": {"version": version, **_summary(challenger_m)},
            "inputs_sha256": fingerprint,
        }
    )
    decision["classes_left_out"] = too_few
    card["promotion"] = decision
    out = registry.models_dir() / version
    registry.save_model(est, card, out)
    if decision["decision"] == "promoted":
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
