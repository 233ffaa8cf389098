"""The ticket classifier: an sklearn estimator over Chinese title + body text.

Input ``X`` is either a 1-D sequence of strings (the whole ticket) or a 2-D array of shape
(n, 2) holding ``[title, text]``. Every string is normalised first (traditional → simplified,
full-width → half-width), so script and width never change a prediction.

Features (a sparse ``FeatureUnion``):
- character n-grams of the whole ticket (TF-IDF, sublinear) — robust to segmentation errors;
- jieba words and word bigrams, with the taxonomy's keywords and the gazetteer's names as a
  user dictionary — carries meaning that characters split;
- character n-grams of the title alone, weighted up — operators' titles are dense summaries.

The classifier is a linear SVM; probabilities come from sigmoid calibration on internal folds, so
``predict_proba`` is meaningful for the abstention threshold.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted

from triage.text import normalize

TITLE_SEP = "\n"


def split_title_text(X: Any) -> tuple[list[str], list[str]]:
    """Accept 1-D texts or 2-D [title, text] rows; return normalised (titles, texts)."""
    arr = np.asarray(X, dtype=object)
    if arr.ndim == 1:
        return [""] * len(arr), [normalize(str(x) if x is not None else "") for x in arr]
    if arr.ndim == 2 and arr.shape[1] == 2:
        titles = [normalize(str(t) if t is not None else "") for t in arr[:, 0]]
        texts = [normalize(str(t) if t is not None else "") for t in arr[:, 1]]
        return titles, texts
    raise ValueError(f"X must be 1-D texts or 2-D [title, text] rows; got shape {arr.shape}")


class TicketText(TransformerMixin, BaseEstimator):
    """Select one view of the ticket as a list of strings: ``whole`` (title + text), ``title``,
    or ``words`` (jieba tokens of the whole ticket joined by spaces)."""

    _tokenizers: dict[tuple[str, ...], Any] = {}
    _lock = threading.Lock()

    def __init__(self, view: str = "whole", user_words: tuple[str, ...] = ()):
        self.view = view
        self.user_words = user_words

    def fit(self, X: Any, y: Any = None) -> TicketText:
        return self

    def transform(self, X: Any) -> list[str]:
        titles, texts = split_title_text(X)
        if self.view == "title":
            return titles
        whole = [f"{t}{TITLE_SEP}{b}" if t else b for t, b in zip(titles, texts, strict=True)]
        if self.view == "whole":
            return whole
        if self.view == "words":
            tok = self._tokenizer()
            return [" ".join(tok.cut(w)) for w in whole]
        raise ValueError(f"unknown view {self.view!r}")

    def _tokenizer(self) -> Any:
        # jieba's dictionary takes ~1 s to load: share one tokenizer per word list per process
        key = tuple(self.user_words)
        with self._lock:
            if key not in self._tokenizers:
                from triage.text import Tokenizer

                self._tokenizers[key] = Tokenizer(key)
            return self._tokenizers[key]


def _plain_int_vocabularies(features: FeatureUnion) -> None:
    # sklearn leaves NumPy integers in ``vocabulary_`` after ``max_features`` pruning; skops would
    # write each one as its own file in the artifact (hundreds of thousands of zip members).
    for _, step in features.transformer_list:
        tfidf = step.named_steps["tfidf"]
        tfidf.vocabulary_ = {term: int(i) for term, i in tfidf.vocabulary_.items()}


class TicketClassifier(ClassifierMixin, BaseEstimator):
    """Linear classifier for hotline tickets. Hyper-parameters are constructor arguments; nothing
    is computed in ``__init__``.

    Parameters
    ----------
    char_ngram : (min_n, max_n) for character n-grams of the whole ticket
    word_ngram : (min_n, max_n) for jieba word n-grams; ``None`` disables word features
    title_weight : weight of the title-only character features (0 disables them)
    C : inverse regularisation of the linear SVM
    min_df : minimum document frequency of a feature
    max_features : cap per vectoriser (bounds memory and speed)
    calibration_folds : folds for sigmoid calibration of probabilities
    user_words : extra words for jieba (taxonomy keywords, gazetteer names)
    random_state : seed for every random step
    """

    def __init__(
        self,
        char_ngram: tuple[int, int] = (1, 3),
        word_ngram: tuple[int, int] | None = (1, 2),
        title_weight: float = 0.5,
        C: float = 0.5,
        min_df: int = 2,
        max_features: int | None = 200_000,
        calibration_folds: int = 3,
        class_weight: str | None = "balanced",
        user_words: tuple[str, ...] = (),
        random_state: int = 0,
    ):
        self.char_ngram = char_ngram
        self.word_ngram = word_ngram
        self.title_weight = title_weight
        self.C = C
        self.min_df = min_df
        self.max_features = max_features
        self.calibration_folds = calibration_folds
        self.class_weight = class_weight
        self.user_words = user_words
        self.random_state = random_state

    def _features(self) -> FeatureUnion:
        parts: list[tuple[str, Any]] = [
            (
                "chars",
                Pipeline([
                    ("view", TicketText("whole")),
                    ("tfidf", TfidfVectorizer(analyzer="char", ngram_range=tuple(self.char_ngram), sublinear_tf=True,
                                              min_df=self.min_df, max_features=self.max_features, dtype=np.float32)),
                ]),
            )
        ]  # fmt: skip
        weights = {"chars": 1.0}
        if self.word_ngram:
            parts.append(
                (
                    "words",
                    Pipeline([
                        ("view", TicketText("words", tuple(self.user_words))),
                        ("tfidf", TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\S+", lowercase=False,
                                                  ngram_range=tuple(self.word_ngram), sublinear_tf=True,
                                                  min_df=self.min_df, max_features=self.max_features, dtype=np.float32)),
                    ]),
                )
            )  # fmt: skip
            weights["words"] = 1.0
        if self.title_weight:
            parts.append(
                (
                    "title",
                    Pipeline([
                        ("view", TicketText("title")),
                        ("tfidf", TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True,
                                                  min_df=self.min_df, max_features=50_000, dtype=np.float32)),
                    ]),
                )
            )  # fmt: skip
            weights["title"] = float(self.title_weight)
        return FeatureUnion(parts, transformer_weights=weights)

    def fit(self, X: Any, y: Sequence[Any]) -> TicketClassifier:
        y = np.asarray(y)
        self.classes_ = unique_labels(y)
        if len(self.classes_) < 2:
            raise ValueError(f"need at least two classes to train; got only {list(self.classes_)}")
        self.features_ = self._features()
        Xf = self.features_.fit_transform(X)
        _plain_int_vocabularies(self.features_)
        svm = LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.random_state)
        _, counts = np.unique(y, return_counts=True)
        folds = int(min(self.calibration_folds, counts.min()))
        if folds >= 2:
            self.model_ = CalibratedClassifierCV(svm, method="sigmoid", cv=folds, ensemble=False)
        else:  # too few examples of some class for calibration folds: raw SVM scores, softmaxed
            self.model_ = svm
        self.model_.fit(Xf, y)
        self.n_features_ = Xf.shape[1]
        return self

    def _transform(self, X: Any) -> Any:
        check_is_fitted(self, "model_")
        return self.features_.transform(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        Xf = self._transform(X)
        if hasattr(self.model_, "predict_proba"):
            return self.model_.predict_proba(Xf)
        scores = self.model_.decision_function(Xf)
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def decision_function(self, X: Any) -> np.ndarray:
        return self.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
