"""NB-SVM: the learner behind the 7-label default (triage/classify/nbsvm.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.svm import LinearSVC

from triage.classify.model import TicketClassifier
from triage.classify.nbsvm import NBSVM


def _toy(seed: int = 0):
    """Three classes, each with its own telling features among shared noise."""
    rng = np.random.default_rng(seed)
    n, f = 300, 60
    y = rng.integers(0, 3, n)
    X = (rng.random((n, f)) < 0.1).astype(np.float32)
    for k in range(3):
        X[y == k, k * 5 : k * 5 + 5] += (rng.random(((y == k).sum(), 5)) < 0.6).astype(np.float32)
    return sp.csr_matrix(X), np.array(["a", "b", "c"])[y]


def test_scaling_is_folded_into_the_weights():
    """decision_function equals each class's SVM on the features scaled by its log-count ratio."""
    X, y = _toy()
    m = NBSVM(C=0.5).fit(X, y)
    present = X.copy()
    present.data[:] = 1
    for i, label in enumerate(m.classes_):
        p = 1 + np.asarray(present[y == label].sum(0)).ravel()
        q = 1 + np.asarray(present[y != label].sum(0)).ravel()
        r = (np.log(p / p.sum()) - np.log(q / q.sum())).astype(np.float32)
        svm = LinearSVC(C=0.5, class_weight="balanced", random_state=0).fit(X @ sp.diags(r), y == label)
        assert np.allclose(m.decision_function(X)[:, i], svm.decision_function(X @ sp.diags(r)), atol=1e-4)
    assert (m.predict(X) == y).mean() > 0.9


def test_two_classes_give_one_score_and_weights_count():
    X, y = _toy(1)
    keep = y != "c"
    m = NBSVM().fit(X[keep], y[keep])
    scores = m.decision_function(X[keep])
    assert scores.shape == (keep.sum(),)
    assert set(m.predict(X[keep])) <= {"a", "b"} and (m.predict(X[keep]) == y[keep]).mean() > 0.9
    # a weight of zero removes a row from both the counts and the SVM: the fit on the rest
    w = np.ones(keep.sum())
    w[:20] = 0
    weighted = NBSVM().fit(X[keep], y[keep], sample_weight=w)
    dropped = NBSVM().fit(X[keep][20:], y[keep][20:])
    assert np.allclose(weighted.coef_, dropped.coef_, atol=1e-3)


def test_one_class_is_refused():
    X, y = _toy()
    with pytest.raises(ValueError, match="two classes"):
        NBSVM().fit(X, np.full(len(y), "a"))


def test_ticket_classifier_with_nbsvm_is_calibrated_and_survives_save_and_load(tmp_path):
    """The learner the 7-label default uses: calibrated probabilities, stored and loaded by the
    registry (the class is on its trusted list), the same probabilities after loading."""
    from triage.classify import registry
    from triage.synth import generate_tickets

    df = generate_tickets(500, seed=3).tickets
    df = df[df["category"].isin(df["category"].value_counts().index[:4])]
    X = np.column_stack([df["title"].fillna("").to_numpy(object), df["text"].to_numpy(object)])
    y = df["category"].to_numpy()
    est = TicketClassifier(learner="nbsvm", max_features=20_000).fit(X, y)
    proba = est.predict_proba(X)
    assert np.allclose(proba.sum(1), 1) and (est.predict(X) == y).mean() > 0.9
    registry.save_model(
        est, {"version": "n1", "taxonomy": {"mode": "none"}, "threshold": 0.5}, tmp_path / "n1"
    )
    loaded = registry.load_model(tmp_path / "n1").estimator
    assert loaded.learner == "nbsvm"
    assert np.allclose(loaded.predict_proba(X[:50]), proba[:50])
    with pytest.raises(ValueError, match="learner must be one of svm, nbsvm"):
        TicketClassifier(learner="forest").fit(X, y)
