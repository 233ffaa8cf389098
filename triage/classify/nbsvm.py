"""NB-SVM (Wang & Manning, 2012), one label against the rest, over any sparse non-negative features.

Each label's binary linear SVM is trained on the features scaled by that label's naive-Bayes
log-count ratio r = log((p / |p|₁) / (q / |q|₁)), where p and q count (with ``alpha`` added) the
documents that contain each feature inside and outside the label. Features that tell the label
apart are magnified before the SVM sees them, which suits short texts whose evidence is a few
telling n-grams. After fitting, r is folded into the weights (w ⊙ r), so predicting costs exactly
what a plain linear model costs: one sparse × dense product.

Measured on the 7,239 real 7-label messages (docs/classifier.md, *NB-SVM*): the same features
with NB-SVM instead of the multi-class LinearSVC gain +0.005 macro-F1 in cross-validation (4 of
5 folds) and on raw messages; it is the 7-label default's learner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import LinearSVC
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted


class NBSVM(ClassifierMixin, BaseEstimator):
    """One-vs-rest NB-SVM. ``decision_function`` gives one score per class (1-D for two classes, as
    scikit-learn's calibration expects); there is no ``predict_proba`` — wrap it in
    ``CalibratedClassifierCV`` for probabilities.

    Parameters
    ----------
    C : inverse regularisation of each binary linear SVM
    alpha : smoothing added to the document counts of the log-count ratio
    class_weight : passed to each binary SVM ("balanced": the label and the rest weigh the same)
    random_state : seed of the SVM solver
    n_jobs : threads fitting the labels' SVMs at once (liblinear releases the GIL; -1: all cores)
    """

    def __init__(self, C: float = 0.5, alpha: float = 1.0, class_weight: str | None = "balanced",
                 random_state: int = 0, n_jobs: int | None = -1):  # fmt: skip
        self.C = C
        self.alpha = alpha
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Sequence[Any], sample_weight: Sequence[float] | None = None) -> NBSVM:
        X = sp.csr_matrix(X, dtype=np.float32)
        y = np.asarray(y)
        self.classes_ = unique_labels(y)
        if len(self.classes_) < 2:
            raise ValueError(f"need at least two classes; got {list(self.classes_)}")
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        present = X.copy()
        present.data[:] = 1.0  # document counts, not TF-IDF mass
        # two classes: one SVM (the second class against the first), as sklearn's binary convention
        targets = self.classes_[1:] if len(self.classes_) == 2 else self.classes_

        def fit_label(label: Any) -> tuple[np.ndarray, float]:
            inside = y == label
            p = self.alpha + np.asarray(present.T @ (w * inside)).ravel()
            q = self.alpha + np.asarray(present.T @ (w * ~inside)).ravel()
            r = (np.log(p / p.sum()) - np.log(q / q.sum())).astype(np.float32)
            svm = LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.random_state)
            svm.fit(X @ sp.diags(r), inside.astype(np.int8), sample_weight=sample_weight)
            return svm.coef_[0] * r, svm.intercept_[0]

        fitted = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(fit_label)(label) for label in targets
        )
        coef = np.vstack([c for c, _ in fitted]).astype(np.float32)
        intercept = np.array([b for _, b in fitted], dtype=np.float32)
        self.coef_, self.intercept_ = coef, intercept
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coef_")
        scores = np.asarray(sp.csr_matrix(X, dtype=np.float32) @ self.coef_.T) + self.intercept_
        return scores.ravel() if len(self.classes_) == 2 else scores

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]
