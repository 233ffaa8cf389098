"""Training, evaluation and the abstention threshold.

``train_model`` splits the labelled rows 80/20 (stratified, seeded), fits on the 80 %, measures
on the 20 % (macro-F1, per-class precision/recall) and chooses the auto-dispatch threshold there:
the lowest confidence at which the predictions kept reach the target precision (95 %). It then
refits on all rows for the artifact; the card records both facts.

When the rows say which are generated (``prepare(..., sources=, generated_sources=)``, the CLI's
``--generated-source``) and the validation part holds at least ``MIN_REAL_FOR_THRESHOLD`` real
rows, the threshold must also reach the target on those real rows: a threshold chosen on mostly
generated rows is too low for real text (measured: docs/classifier.md, *Abstention*).

Optionally rows are weighted by their source (``prepare(..., sources=, weights=)``, the CLI's
``--source-col`` / ``--weight``): e.g. real messages above generated ones. Each row's weight
follows it into the training or validation part; the validation metrics stay unweighted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import platform
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

from triage.classify.model import TicketClassifier

TARGET_PRECISION = 0.95
MIN_CLASS_SIZE = 5
MIN_REAL_FOR_THRESHOLD = 100  # fewer real validation rows than this: too noisy to set a threshold


class TrainingDataError(ValueError):
    """The labelled data cannot train a model; the message says why and what to do."""


@dataclass
class TrainingData:
    X: np.ndarray  # (n, 2) [title, text]
    y: np.ndarray
    sha256: str
    dropped_empty: list[int]
    merged: dict[str, str]
    sample_weight: np.ndarray | None = None  # per row, aligned with X / y; None = unweighted
    weighting: dict[str, Any] | None = None  # how sample_weight was made (for the model card)
    generated: np.ndarray | None = None  # per row: True for generated (synthetic) rows; None = unknown
    duplicate_rows: list[int] | None = None  # input rows left out as exact repeats of an earlier row


def user_words_for(taxonomy_mode: str) -> tuple[str, ...]:
    """jieba user dictionary: the taxonomy's keywords and, for the built-in taxonomy, the
    gazetteer's street and community names (so 回龙观 or 多福巷 stay one token)."""
    from triage.taxonomy import load_taxonomy

    words = set(load_taxonomy().all_keywords())
    if taxonomy_mode == "builtin":
        from triage.geo import get_gazetteer

        gaz = get_gazetteer()
        words.update(u.name for u in gaz.units.values() if u.level != "community")
        words.update(a for a in gaz.alias_texts() if len(a) >= 3)
    return tuple(sorted(w for w in words if 2 <= len(w) <= 12))


def keyword_groups_for(taxonomy_mode: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The keyword-group features: each built-in category's keyword list (none for
    ``--taxonomy none``, whose labels the taxonomy knows nothing about)."""
    if taxonomy_mode != "builtin":
        return ()
    from triage.taxonomy import load_taxonomy

    return tuple((c.code, tuple(c.keywords)) for c in load_taxonomy().categories.values())


def stopwords_zh() -> tuple[str, ...]:
    """The stopword list that makes raw text look like word-segmented, stopword-free exports
    (learned from real raw/compact twins: scripts/learn_stopwords.py)."""
    from importlib.resources import files

    lines = files("triage.classify").joinpath("stopwords_zh.txt").read_text(encoding="utf-8").splitlines()
    return tuple(w for w in lines if w and not w.startswith("# "))


def default_params(taxonomy_mode: str) -> dict[str, Any]:
    """The ``TicketClassifier`` parameters ``triage model train`` uses with no overrides."""
    params: dict[str, Any] = {
        "user_words": user_words_for(taxonomy_mode),
        "keyword_groups": keyword_groups_for(taxonomy_mode),
    }
    if taxonomy_mode == "none":
        # the compact form (stopwords out, no spaces) at training and prediction: a labelled export
        # cleaned by someone else and raw tickets then look alike (docs/classifier.md, *Compact form*).
        # Not measured for the 29 codes yet, so the built-in model keeps the text as written.
        params["stopwords"] = stopwords_zh()
        # NB-SVM (log-count-ratio scaled features): +0.005 macro-F1 in 5-fold CV on the real 7-label
        # messages, 4 of 5 folds up (docs/classifier.md, *NB-SVM*). Same cost at prediction time.
        params["learner"] = "nbsvm"
    return params


def constrained_labels(est: Any, X: Any, labels: np.ndarray, compat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Label-constrained self-training: for rows labelled in a coarser taxonomy, each row's code is
    the model's most probable code among those its label allows (``compat.codes[label]``, a
    ``LabelCompat``); returns (codes, confidence renormalised over the allowed codes)."""
    proba = est.predict_proba(X)
    col = {c: i for i, c in enumerate(est.classes_)}
    allowed = np.zeros((len(labels), len(col)), dtype=bool)
    for lab in set(labels):
        idx = [col[c] for c in compat.codes[lab] if c in col]
        allowed[np.ix_(labels == lab, idx)] = True
    masked = np.where(allowed, proba, 0.0)
    total = masked.sum(axis=1)
    best = masked.argmax(axis=1)
    conf = masked[np.arange(len(best)), best] / np.where(total > 0, total, 1.0)
    return est.classes_[best], conf


def prepare(
    titles: pd.Series | None,
    texts: pd.Series,
    labels: pd.Series,
    *,
    taxonomy_mode: str = "builtin",
    min_class_size: int = MIN_CLASS_SIZE,
    merge_rare_into: str | None = None,
    sources: pd.Series | None = None,
    weights: dict[str, float] | None = None,
    generated_sources: tuple[str, ...] = (),
) -> TrainingData:
    """Validate labelled rows. Raises TrainingDataError with a message naming the problem.

    ``sources`` (one value per row, e.g. ``synthetic`` / ``tipdm-real``) and ``weights``
    ({source: weight}) weight the rows in training; see ``source_weights``. Rows whose source is
    in ``generated_sources`` are generated text: the threshold is also checked on the others."""
    if (weights or generated_sources) and sources is None:
        raise TrainingDataError("weights or generated sources need a source column (--source-col)")
    texts = texts.fillna("").astype(str)
    labels = labels.fillna("").astype(str).str.strip()
    titles = (
        titles.fillna("").astype(str)
        if titles is not None
        else pd.Series([""] * len(texts), index=texts.index)
    )
    empty = [i for i, (t, b) in enumerate(zip(titles, texts, strict=True)) if not (t.strip() or b.strip())]
    unlabeled = [i for i, lab in enumerate(labels) if not lab]
    drop = sorted(set(empty) | set(unlabeled))
    keep = np.ones(len(texts), dtype=bool)
    keep[drop] = False
    if not keep.any():
        raise TrainingDataError(
            f"none of the {len(keep)} rows has both a text and a label "
            f"({len(empty)} with empty text, {len(unlabeled)} without a label)"
        )
    # exact duplicate rows (same title, text and label) would sit on both sides of the validation
    # split and inflate it: each is kept once, and the count is reported (CLI warning, card)
    rows = pd.DataFrame({"t": titles.to_numpy(), "b": texts.to_numpy(), "y": labels.to_numpy()})[keep]
    duplicates = [int(i) for i in np.flatnonzero(keep)[rows.duplicated().to_numpy()]]
    keep[duplicates] = False
    titles, texts, labels = titles[keep], texts[keep], labels[keep]
    kept_sources = (
        pd.Series(sources).fillna("").astype(str).str.strip()[keep] if sources is not None else None
    )
    generated = None
    if generated_sources:
        absent = sorted(set(generated_sources) - set(kept_sources))
        if absent:
            raise TrainingDataError(
                f"no rows have source {', '.join(map(repr, absent))}; the source column has: "
                + ", ".join(f"{s!r} ({n})" for s, n in kept_sources.value_counts().items())
            )
        generated = kept_sources.isin(generated_sources).to_numpy()
    sample_weight, weighting = None, None
    if weights:
        per_source = kept_sources.value_counts()
        absent = sorted(set(weights) - set(per_source.index))
        if absent:
            raise TrainingDataError(
                f"no rows have source {', '.join(map(repr, absent))}; the source column has: "
                + ", ".join(f"{s!r} ({n})" for s, n in per_source.items())
            )
        sample_weight = source_weights(kept_sources, weights)
        weighting = {
            "source_column": getattr(sources, "name", None),
            "weights": {k: float(v) for k, v in sorted(weights.items())},
            "default_weight": 1.0,
            "rows_per_source": {str(k): int(v) for k, v in sorted(per_source.items())},
            "scaled_to_mean_1": True,
        }

    if taxonomy_mode == "builtin":
        from triage.taxonomy import load_taxonomy

        tax = load_taxonomy()
        mapped = labels.map(lambda x: tax.code_for(x) or x)
        unknown = sorted(set(mapped) - set(tax.codes))
        if unknown:
            from triage.classify.compat import compat_for

            try:
                c = compat_for(set(unknown))
                hint = (
                    f" They are the labels of {c.path.name} ({c.name}): such rows train the 29-code model "
                    "through label-constrained self-training (scripts/train_champion.py), not as codes."
                )
            except ValueError as exc:  # names the labels no mapping knows and the mappings known
                hint = f" {exc}."
            raise TrainingDataError(
                f"{len(unknown)} label(s) are not in the built-in taxonomy: {', '.join(unknown[:20])}"
                + (" …" if len(unknown) > 20 else "")
                + ". Use category codes or Chinese names from taxonomy/categories.yaml, or train with --taxonomy none."
                + hint
            )
        labels = mapped
        if merge_rare_into is not None:  # the merge target must be a category too
            target = tax.code_for(merge_rare_into.strip())
            if target is None:
                raise TrainingDataError(
                    f"--merge-rare-into {merge_rare_into!r} is not a category code or name of the built-in "
                    "taxonomy (e.g. other / 其他)"
                )
            merge_rare_into = target
    elif taxonomy_mode != "none":
        raise TrainingDataError(f"--taxonomy must be 'builtin' or 'none', not {taxonomy_mode!r}")

    merged: dict[str, str] = {}
    counts = Counter(labels)
    rare = sorted(c for c, n in counts.items() if n < min_class_size)
    if rare:
        if merge_rare_into is None:
            raise TrainingDataError(
                "classes with fewer than "
                f"{min_class_size} examples: "
                + ", ".join(f"{c} ({counts[c]})" for c in rare)
                + ". Add examples, or merge them explicitly with --merge-rare-into LABEL."
            )
        merged = {c: merge_rare_into for c in rare}
        labels = labels.map(lambda x: merged.get(x, x))
        merged_size = int((labels == merge_rare_into).sum())
        if merged_size < min_class_size:
            raise TrainingDataError(
                f"merging {', '.join(rare)} into {merge_rare_into!r} gives it only {merged_size} examples "
                f"(< {min_class_size}); merge into a larger class"
            )
    if labels.nunique() < 2:
        raise TrainingDataError(
            f"training needs at least two classes; the data has only {sorted(set(labels))} "
            f"({len(labels)} usable rows)"
        )
    X = np.column_stack([titles.to_numpy(dtype=object), texts.to_numpy(dtype=object)])
    digest = hashlib.sha256()
    for t, b, y in zip(titles, texts, labels, strict=True):
        digest.update(f"{t}\x1f{b}\x1f{y}\x1e".encode())
    return TrainingData(
        X,
        labels.to_numpy(dtype=object),
        digest.hexdigest(),
        drop,
        merged,
        sample_weight,
        weighting,
        generated,
        duplicates,
    )


def source_weights(sources: Any, weights: dict[str, float]) -> np.ndarray:
    """Per-row training weights from a per-row source label: rows whose source is in ``weights``
    get that weight, every other row 1. The weights are then scaled to mean 1, so only the ratio
    between sources changes (e.g. ``{"tipdm-real": 6}``: a real row counts 6 synthetic rows) and
    the SVM's C keeps its meaning (its loss is summed over the weights)."""
    for src, w in weights.items():
        if not (np.isfinite(w) and w > 0):
            raise TrainingDataError(f"the weight of source {src!r} must be a positive number, not {w}")
    src = pd.Series(sources).fillna("").astype(str).str.strip().to_numpy(dtype=object)
    w = np.array([weights.get(s, 1.0) for s in src], dtype=np.float64)
    return w / w.mean()


def metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str] | None = None) -> dict[str, Any]:
    labels = labels or sorted(set(y_true) | set(y_pred))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = [i for i, lab in enumerate(labels) if s[i] > 0]
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=[labels[i] for i in present], average="macro", zero_division=0)
        ),
        "per_class": {
            labels[i]: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i in range(len(labels))
        },
    }


def choose_threshold(
    y_true: np.ndarray,
    proba: np.ndarray,
    classes: np.ndarray,
    target: float = TARGET_PRECISION,
    z: float = 0.0,
):
    """Lowest confidence t such that predictions with confidence ≥ t have precision ≥ target
    (scanning from the most confident down). Returns (threshold, coverage, precision).

    With ``z`` > 0 it is the Wilson lower bound of that precision (z = 1.2816: one-sided 90 %)
    that must reach the target: the lowest threshold whose *observed* precision just reaches it
    sits on a lucky stretch of the scored rows and reads lower on new ones (measured on real
    messages twice: docs/classifier.md, *Abstention with a margin*)."""
    conf = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y_true
    order = np.argsort(-conf, kind="stable")
    cum_correct = np.cumsum(correct[order])
    n_kept = np.arange(1, len(order) + 1)
    precision = cum_correct / n_kept
    if z > 0:
        precision = (
            precision
            + z * z / (2 * n_kept)
            - z * np.sqrt(precision * (1 - precision) / n_kept + z * z / (4 * n_kept**2))
        ) / (1 + z * z / n_kept)
    ok = np.nonzero(precision >= target)[0]
    if len(ok) == 0:
        return 1.0, 0.0, float("nan")
    k = ok.max()  # the largest kept set still meeting the target
    threshold = float(conf[order][k])
    return (round(threshold, 4), *_at_threshold(y_true, proba, classes, threshold))


def _at_threshold(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray, threshold: float):
    """(coverage, precision) of the predictions with confidence ≥ threshold."""
    conf = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y_true
    kept = conf >= threshold
    return float(kept.mean()), float(correct[kept].mean()) if kept.any() else float("nan")


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("scikit-learn", "numpy", "scipy", "rjieba", "skops", "opencc", "triage"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def validation_split(
    y: np.ndarray, *, seed: int, valid_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, validation) of ``train_model``'s internal split: stratified when every
    class has two rows, seeded."""
    counts = Counter(y)
    stratify = y if min(counts.values()) >= 2 else None
    return train_test_split(np.arange(len(y)), test_size=valid_fraction, random_state=seed, stratify=stratify)


def train_model(
    data: TrainingData,
    *,
    taxonomy_mode: str = "builtin",
    seed: int = 0,
    source: str = "",
    version: str | None = None,
    params: dict[str, Any] | None = None,
    valid_fraction: float = 0.2,
    refit_full: bool = True,
) -> tuple[TicketClassifier, dict[str, Any]]:
    """Fit, validate, choose the threshold, refit; return (estimator, card)."""
    t0 = time.perf_counter()
    params = dict(params or {})
    params = default_params(taxonomy_mode) | params
    params["random_state"] = seed
    counts = Counter(data.y)
    # row weights and generated flags (if any) go with their rows
    tr, va = validation_split(data.y, seed=seed, valid_fraction=valid_fraction)
    X_tr, X_va, y_tr, y_va = data.X[tr], data.X[va], data.y[tr], data.y[va]
    w_tr = data.sample_weight[tr] if data.sample_weight is not None else None
    g_va = data.generated[va] if data.generated is not None else np.zeros(len(va), dtype=bool)
    est = TicketClassifier(**params).fit(X_tr, y_tr, sample_weight=w_tr)
    proba = est.predict_proba(X_va)
    y_hat = est.classes_[proba.argmax(axis=1)]
    m = metrics(y_va, y_hat, labels=sorted(counts))
    threshold, coverage, prec = choose_threshold(y_va, proba, est.classes_)
    threshold_basis: dict[str, Any] = {"all_validation_rows": threshold}
    real = ~g_va
    if data.generated is not None:
        threshold_basis["real_validation_rows"] = int(real.sum())
        if real.sum() >= MIN_REAL_FOR_THRESHOLD:
            t_real, _, _ = choose_threshold(y_va[real], proba[real], est.classes_)
            threshold_basis["real_rows_alone"] = t_real
            if t_real > threshold:  # the stricter of the two holds on both
                threshold = t_real
                coverage, prec = _at_threshold(y_va, proba, est.classes_, threshold)
        if real.any():
            real_coverage, real_precision = _at_threshold(y_va[real], proba[real], est.classes_, threshold)
            threshold_basis["real_coverage"] = round(real_coverage, 4)
            threshold_basis["real_precision"] = (
                round(real_precision, 4) if real_precision == real_precision else None
            )
    top3 = np.argsort(-proba, axis=1)[:, :3]
    m["top3_accuracy"] = float(np.mean([y in est.classes_[t] for y, t in zip(y_va, top3, strict=True)]))
    if refit_full:
        est = TicketClassifier(**params).fit(data.X, data.y, sample_weight=data.sample_weight)
    seconds = time.perf_counter() - t0

    tax_info: dict[str, Any] = {"mode": taxonomy_mode, "labels": sorted(counts)}
    if taxonomy_mode == "builtin":
        from triage.taxonomy import load_taxonomy

        tax = load_taxonomy()
        tax_info.update(version=tax.version, fingerprint=tax.fingerprint)
    now = dt.datetime.now(dt.UTC)
    card = {
        "version": version or now.strftime("v%Y%m%d-%H%M%S"),
        "task": "12345 ticket category classification",
        "trained_at": now.isoformat(timespec="seconds"),
        "taxonomy": tax_info,
        "data": {
            "source": source,
            "sha256": data.sha256,
            "n_rows": int(len(data.y)),
            "n_train": int(len(y_tr)),
            "n_valid": int(len(y_va)),
            "class_counts": dict(sorted((k, int(v)) for k, v in counts.items())),
            "dropped_empty_rows": len(data.dropped_empty),
            "duplicate_rows_counted_once": len(data.duplicate_rows or []),
            "merged_rare_classes": data.merged,
            "refit_on_all_rows": refit_full,
            "weighting": data.weighting,
        },
        "params": {
            k: v
            for k, v in est.get_params().items()
            if k not in ("user_words", "keyword_groups", "stopwords")
        }
        | {
            "user_words": len(params["user_words"]),
            "keyword_groups": len(params["keyword_groups"]),
            "stopwords": len(params.get("stopwords", ())),
        },
        "seed": seed,
        "metrics": m,
        "threshold": threshold,
        "target_precision": TARGET_PRECISION,
        "coverage": round(coverage, 4),
        "precision_at_threshold": round(prec, 4) if prec == prec else None,
        "threshold_basis": threshold_basis,
        "train_seconds": round(seconds, 2),
        "libraries": library_versions(),
    }
    return est, card


def predict_frame(est: Any, X: np.ndarray, threshold: float) -> pd.DataFrame:
    """label, confidence, top-3 and needs_review for each row."""
    proba = est.predict_proba(X)
    order = np.argsort(-proba, axis=1)[:, :3]
    classes = est.classes_
    conf = proba[np.arange(len(proba)), order[:, 0]]
    return pd.DataFrame(
        {
            "label": classes[order[:, 0]],
            "confidence": np.round(conf, 4),
            "top3": [
                [(classes[j], round(float(proba[i, j]), 4)) for j in order[i]] for i in range(len(proba))
            ],
            "needs_review": conf < threshold,
        }
    )
