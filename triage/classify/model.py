"""The ticket classifier: an sklearn estimator over Chinese title + body text.

Input ``X`` is either a 1-D sequence of strings (the whole ticket) or a 2-D array of shape
(n, 2) holding ``[title, text]``. Every string is normalised first (traditional → simplified,
full-width → half-width), so script and width never change a prediction.

Features (sparse blocks stacked side by side by ``TicketClassifier._transform``, one per view
below; not an sklearn ``FeatureUnion``, which would re-run the text normalisation per view):
- character n-grams of the whole ticket (TF-IDF, sublinear) — robust to segmentation errors;
- jieba words and word bigrams, with the taxonomy's keywords and the gazetteer's names as a
  user dictionary — carries meaning that characters split;
- character n-grams of the title alone, weighted up — operators' titles are dense summaries;
- keyword groups (the built-in taxonomy's keyword list per category): for each category, how many
  of its keywords the ticket contains. A keyword seldom or never seen in training still counts
  for its category, which carries the taxonomy's knowledge to real wording the training data
  lacks (measured on real messages: docs/classifier.md).

The classifier is a linear SVM (``learner="svm"``) or an NB-SVM over the same features
(``learner="nbsvm"``, ``triage/classify/nbsvm.py``); probabilities come from sigmoid calibration on
internal folds, so ``predict_proba`` is meaningful for the abstention threshold.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted

from triage.classify import fast_tfidf
from triage.classify.nbsvm import NBSVM
from triage.text import normalize

TITLE_SEP = "\n"
LEARNERS = {"svm": LinearSVC, "nbsvm": NBSVM}
# Tickets per feature pass at prediction. The n-gram arrays of 1,000 tickets (~300k entries)
# stay in the CPU cache; one pass over 12,000 was ~30 % slower (bench/classify_throughput.py).
PREDICT_CHUNK = 1000


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
        return shared_tokenizer(tuple(self.user_words))


class _FastTokenizer:
    """jieba segmentation with the user dictionary and the HMM new-word finder off (the HMM pass
    cost ~40 % of segmentation time and its guesses at unknown words barely moved accuracy).
    rjieba runs jieba's dictionary algorithm in Rust (jieba-rs): the same tokens as jieba
    up to exact ties between routes (tests/test_segmentation.py), ~15x faster."""

    def __init__(self, user_words: tuple[str, ...]):
        import rjieba

        self._jieba = rjieba.Jieba()
        for w in user_words:
            self._jieba.add_word(w, 20000, None)

    def cut(self, text: str) -> list[str]:
        """The tokens less whitespace. jieba yields whitespace as tokens of its own and no empty
        token, so none of these is empty or holds a space (``fast_tfidf.SplitDocs``)."""
        return [t for t in self._jieba.cut(text, False) if not t.isspace()]


_TOKENIZERS: dict[tuple[str, ...], _FastTokenizer] = {}
_TOKENIZER_LOCK = threading.Lock()


def shared_tokenizer(user_words: tuple[str, ...]) -> _FastTokenizer:
    # jieba's dictionary takes ~1 s to load: one tokenizer per word list per process
    with _TOKENIZER_LOCK:
        if user_words not in _TOKENIZERS:
            _TOKENIZERS[user_words] = _FastTokenizer(user_words)
        return _TOKENIZERS[user_words]


def lead_line(raw: Any, lead_chars: int) -> str:
    """The opening line of an untitled ticket, normalised, at most ``lead_chars`` characters: what
    a title would say. Citizens and operators open with the gist, and a file trained with its
    title joined into the text (``--text-col 标题 --text-col 内容``) has the title as first line."""
    text = str(raw).lstrip() if raw is not None else ""
    first = text.split("\n", 1)[0].split("\r", 1)[0]
    return normalize(first[: 2 * lead_chars])[:lead_chars]  # cut before normalising: bounded cost


def ticket_views(
    X: Any,
    user_words: tuple[str, ...],
    words: bool = True,
    lead_chars: int = 0,
    stopwords: tuple[str, ...] | frozenset[str] = (),
) -> dict[str, list[str]]:
    """Normalise each ticket once and derive every view from it (whole, title, words). With
    ``lead_chars``, an untitled ticket's title view is its opening line (``lead_line``); the
    whole-ticket view is unchanged. With ``stopwords``, every view is in the compact form: the
    jieba tokens less the stopwords (and whitespace), joined without spaces (the words view with
    spaces) — the form of word-segmented exports whose stopwords were removed, so raw and
    compact texts look alike to the features."""
    titles, texts = split_title_text(X)
    whole = [f"{t}{TITLE_SEP}{b}" if t else b for t, b in zip(titles, texts, strict=True)]
    title_view = titles
    if lead_chars and not all(titles):
        arr = np.asarray(X, dtype=object)
        raw = arr[:, 1] if arr.ndim == 2 else arr
        title_view = [t or lead_line(r, lead_chars) for t, r in zip(titles, raw, strict=True)]
    if stopwords:  # the compact form: jieba tokens less stopwords, joined without spaces
        tok = shared_tokenizer(tuple(user_words))
        stop = frozenset(stopwords)
        tokens = [[t for t in tok.cut(w) if t not in stop] for w in whole]
        views = {"whole": ["".join(ts) for ts in tokens],
                 "title": ["".join(t for t in tok.cut(w) if t not in stop) for w in title_view]}  # fmt: skip
        if words:
            views["words"] = fast_tfidf.SplitDocs(tokens)
        return views
    views = {"whole": whole, "title": title_view}
    if words:
        tok = shared_tokenizer(tuple(user_words))
        views["words"] = fast_tfidf.SplitDocs([tok.cut(w) for w in whole])
    return views


def _string_array(strings: list[str]) -> np.ndarray | None:
    """The strings as one NumPy array, or None if NumPy cannot hold them exactly (trailing NUL)."""
    array = np.array(strings, dtype=str)
    return array if array.tolist() == strings else None


def _pack_keyword_groups(groups: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, np.ndarray] | None:
    """``keyword_groups`` as three arrays (names, every keyword, each keyword's group), or None
    if NumPy cannot hold the strings exactly."""
    if not groups:
        return None
    names = _string_array([str(name) for name, _ in groups])
    words = _string_array([str(w) for _, ws in groups for w in ws])
    if names is None or words is None:
        return None
    group_of = np.repeat(np.arange(len(groups)), [len(ws) for _, ws in groups])
    return {"names": names, "words": words, "group_of": group_of}


def _unpack_keyword_groups(packed: dict[str, np.ndarray]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    words, group_of = packed["words"].tolist(), packed["group_of"].tolist()
    return tuple(
        (name, tuple(w for w, g in zip(words, group_of, strict=True) if g == i))
        for i, name in enumerate(packed["names"].tolist())
    )


def _plain_int_vocabularies(vectorizers: list[tuple[str, Any, float]]) -> None:
    # sklearn leaves NumPy integers in ``vocabulary_`` after ``max_features`` pruning; skops would
    # write each one as its own file in the artifact (hundreds of thousands of zip members).
    for _, tfidf, _ in vectorizers:
        tfidf.vocabulary_ = {term: int(i) for term, i in tfidf.vocabulary_.items()}


class TicketClassifier(ClassifierMixin, BaseEstimator):
    """Linear classifier for hotline tickets. Hyper-parameters are constructor arguments; nothing
    is computed in ``__init__``.

    Parameters
    ----------
    char_ngram : (min_n, max_n) for character n-grams of the whole ticket
    word_ngram : (min_n, max_n) for jieba word n-grams; ``None`` disables word features
    title_weight : weight of the title-only character features (0 disables them)
    lead_chars : an untitled ticket's opening line, up to this many characters, stands in for its
        title in the title features (0: untitled tickets have none)
    C : inverse regularisation of the linear SVM
    min_df : minimum document frequency of a feature
    max_features : cap per vectoriser (bounds memory and speed)
    calibration_folds : folds for sigmoid calibration of probabilities
    user_words : extra words for jieba (taxonomy keywords, gazetteer names)
    keyword_groups : ((group, (keyword, …)), …) — one block feature per group counting the
        distinct keywords of that group among the ticket's jieba tokens; ``()`` disables it
    keyword_weight : weight of the keyword-group block (0 disables it)
    stopwords : tokens removed before every view, which is then in the compact form (see
        ``ticket_views``); ``()`` keeps the text as written
    learner : "svm" (one multi-class LinearSVC) or "nbsvm" (one NB-SVM per class: each class's
        SVM sees the features scaled by that class's naive-Bayes log-count ratio)
    random_state : seed for every random step
    """

    def __init__(
        self,
        char_ngram: tuple[int, int] = (1, 3),
        word_ngram: tuple[int, int] | None = (1, 2),
        title_weight: float = 1.0,
        lead_chars: int = 40,
        C: float = 0.5,
        min_df: int = 2,
        max_features: int | None = 200_000,
        calibration_folds: int = 3,
        class_weight: str | None = "balanced",
        user_words: tuple[str, ...] = (),
        keyword_groups: tuple[tuple[str, tuple[str, ...]], ...] = (),
        keyword_weight: float = 1.0,
        stopwords: tuple[str, ...] = (),
        learner: str = "svm",
        random_state: int = 0,
    ):
        self.char_ngram = char_ngram
        self.word_ngram = word_ngram
        self.title_weight = title_weight
        self.lead_chars = lead_chars
        self.C = C
        self.min_df = min_df
        self.max_features = max_features
        self.calibration_folds = calibration_folds
        self.class_weight = class_weight
        self.user_words = user_words
        self.keyword_groups = keyword_groups
        self.keyword_weight = keyword_weight
        self.stopwords = stopwords
        self.learner = learner
        self.random_state = random_state

    def _stopword_set(self) -> frozenset[str]:
        if getattr(self, "_stopword_cache", None) is None or self._stopword_cache[0] is not self.stopwords:
            self._stopword_cache = (self.stopwords, frozenset(normalize(str(w)) for w in self.stopwords))
        return self._stopword_cache[1]

    def _vectorizers(self) -> list[tuple[str, TfidfVectorizer, float]]:
        """(view, vectoriser, weight) for each feature block."""
        common = {"sublinear_tf": True, "min_df": self.min_df, "dtype": np.float32}
        out = [
            ("whole", TfidfVectorizer(analyzer="char", ngram_range=tuple(self.char_ngram),
                                      max_features=self.max_features, **common), 1.0),
        ]  # fmt: skip
        if self.word_ngram:
            out.append(
                ("words", TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\S+", lowercase=False,
                                          ngram_range=tuple(self.word_ngram), max_features=self.max_features,
                                          **common), 1.0)
            )  # fmt: skip
        if self.title_weight:
            out.append(
                ("title", TfidfVectorizer(analyzer="char", ngram_range=(1, 2), max_features=50_000, **common),
                 float(self.title_weight))
            )  # fmt: skip
        return out

    def _fit_keyword_groups(self) -> None:
        """The keyword vocabulary (a fixed-vocabulary binary vectoriser over jieba tokens, so the
        vectorised counting in ``fast_tfidf`` applies) and its keyword × group membership."""
        self.keyword_vectorizer_ = self.keyword_membership_ = None
        if not (self.keyword_weight and self.keyword_groups and self.word_ngram):
            return
        column: dict[str, int] = {}
        pairs: list[tuple[int, int]] = []
        for g, (_, words) in enumerate(self.keyword_groups):
            for w in words:
                w = normalize(str(w))
                if w and not any(c.isspace() for c in w):  # a keyword must be one token to match
                    pairs.append((column.setdefault(w, len(column)), g))
        if not column:
            return
        membership = np.zeros((len(column), len(self.keyword_groups)), dtype=np.float32)
        for k, g in pairs:
            membership[k, g] = 1.0
        vec = TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\S+", lowercase=False, vocabulary=column,
                              binary=True, use_idf=False, norm=None, dtype=np.float32)  # fmt: skip
        self.keyword_vectorizer_ = vec.fit([""])  # fixed vocabulary: nothing to learn from the rows
        self.keyword_membership_ = membership

    def _keyword_block(self, views: dict[str, list[str]]) -> list[Any]:
        if getattr(self, "keyword_vectorizer_", None) is None:
            return []
        present = fast_tfidf.transform(self.keyword_vectorizer_, views["words"])  # 0/1 per keyword
        per_group = np.log1p(present @ self.keyword_membership_) * np.float32(self.keyword_weight)
        return [sp.csr_matrix(per_group.astype(np.float32, copy=False))]

    def fit(self, X: Any, y: Sequence[Any], sample_weight: Sequence[float] | None = None) -> TicketClassifier:
        """Fit on ``X`` (texts or [title, text] rows) and labels ``y``.

        ``sample_weight`` (optional, one non-negative number per row) weights each row's loss in
        the SVM and in the sigmoid calibration (scikit-learn's ``sample_weight``; with
        ``class_weight="balanced"`` the class weights are computed from the weighted counts). The
        TF-IDF vocabularies and IDF are fitted unweighted. ``None`` is the unweighted fit.
        """
        y = np.asarray(y)
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {', '.join(LEARNERS)}; got {self.learner!r}")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != (len(y),):
                raise ValueError(
                    f"sample_weight must have one value per row ({len(y)}); got shape {sample_weight.shape}"
                )
            if (
                not np.all(np.isfinite(sample_weight))
                or (sample_weight < 0).any()
                or not (sample_weight > 0).any()
            ):
                raise ValueError("sample_weight must be finite, non-negative and not all zero")
        self.classes_ = unique_labels(y)
        if len(self.classes_) < 2:
            raise ValueError(f"need at least two classes to train; got only {list(self.classes_)}")
        views = ticket_views(
            X,
            tuple(self.user_words),
            words=bool(self.word_ngram),
            lead_chars=self.lead_chars,
            stopwords=self._stopword_set(),
        )
        self.vectorizers_ = self._vectorizers()
        if not any(views["title"]):  # no titles and no opening lines (lead_chars=0): no title block
            self.vectorizers_ = [v for v in self.vectorizers_ if v[0] != "title"]
        blocks = [
            fast_tfidf.fit_transform(vec, views[name]) * np.float32(w) for name, vec, w in self.vectorizers_
        ]
        _plain_int_vocabularies(self.vectorizers_)
        self._fit_keyword_groups()
        blocks += self._keyword_block(views)
        Xf = sp.hstack(blocks, format="csr", dtype=np.float32)
        svm = LEARNERS[self.learner](C=self.C, class_weight=self.class_weight, random_state=self.random_state)
        _, counts = np.unique(y, return_counts=True)
        folds = int(min(self.calibration_folds, counts.min()))
        if folds >= 2:
            self.model_ = CalibratedClassifierCV(svm, method="sigmoid", cv=folds, ensemble=False)
        else:  # too few examples of some class for calibration folds: raw SVM scores, softmaxed
            self.model_ = svm
        if sample_weight is None:
            self.model_.fit(Xf, y)
        else:
            self.model_.fit(Xf, y, sample_weight=sample_weight)
        self.n_features_ = Xf.shape[1]
        return self

    # skops stores every dict key and value and every tuple item as its own node: the ~150k-term
    # vocabularies, the ~40k user words and the ~1.4k keywords made loading take ~25 s per process
    # (reading and auditing ~650k nodes). They are stored as arrays of strings and rebuilt on load;
    # the keyword vectoriser and membership are derived from ``keyword_groups`` and not stored.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: for non-sklearn classes it is __dict__ itself
        state.pop("keyword_vectorizer_", None)
        state.pop("keyword_membership_", None)
        state.pop("_stopword_cache", None)
        stop = _string_array(list(self.stopwords))
        if stop is not None:
            state["stopwords"] = stop
        groups = _pack_keyword_groups(self.keyword_groups)
        if groups is not None:
            state["keyword_groups"] = groups
        words = _string_array(list(self.user_words))
        if words is None or "vectorizers_" not in state:
            return state
        packed, term_arrays = [], []
        for name, vec, w in state["vectorizers_"]:
            terms = [""] * len(vec.vocabulary_)
            for term, column in vec.vocabulary_.items():
                terms[column] = term
            array = _string_array(terms)
            if array is None:
                return state
            vec = copy.copy(vec)
            del vec.vocabulary_
            packed.append((name, vec, w))
            term_arrays.append(array)
        return {**state, "user_words": words, "vectorizers_": packed, "vocabulary_terms_": term_arrays}

    def __setstate__(self, state: dict[str, Any]) -> None:
        term_arrays = state.pop("vocabulary_terms_", None)
        if isinstance(state.get("keyword_groups"), dict):
            state["keyword_groups"] = _unpack_keyword_groups(state["keyword_groups"])
        state.setdefault("keyword_groups", ())  # artifacts from before the keyword-group block
        state.setdefault("keyword_weight", 0.0)
        state.setdefault("lead_chars", 0)  # artifacts from before the opening-line title view
        state.setdefault("stopwords", ())  # artifacts from before the compact form
        state.setdefault("learner", "svm")  # artifacts from before the NB-SVM learner
        super().__setstate__(state)
        if isinstance(self.stopwords, np.ndarray):
            self.stopwords = tuple(self.stopwords.tolist())
        if isinstance(self.user_words, np.ndarray):
            self.user_words = tuple(self.user_words.tolist())
        if term_arrays is not None:
            vectorizers = []
            for (name, vec, w), terms in zip(self.vectorizers_, term_arrays, strict=True):
                vec = copy.copy(vec)
                vec.vocabulary_ = {term: column for column, term in enumerate(terms.tolist())}
                vectorizers.append((name, vec, w))
            self.vectorizers_ = vectorizers
        if hasattr(self, "model_"):
            self._fit_keyword_groups()

    def _transform(self, X: Any) -> Any:
        check_is_fitted(self, "model_")
        views = ticket_views(
            X,
            tuple(self.user_words),
            words=bool(self.word_ngram),
            lead_chars=self.lead_chars,
            stopwords=self._stopword_set(),
        )
        blocks = [
            fast_tfidf.transform(vec, views[name]) * np.float32(w) for name, vec, w in self.vectorizers_
        ]
        blocks += self._keyword_block(views)
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    def predict_proba(self, X: Any) -> np.ndarray:
        if len(X) > PREDICT_CHUNK:
            rows = X if isinstance(X, np.ndarray) else np.asarray(X, dtype=object)
            chunks = range(0, len(rows), PREDICT_CHUNK)
            return np.vstack([self._predict_proba(rows[i : i + PREDICT_CHUNK]) for i in chunks])
        return self._predict_proba(X)

    def _predict_proba(self, X: Any) -> np.ndarray:
        Xf = self._transform(X)
        if hasattr(self.model_, "predict_proba"):
            return self.model_.predict_proba(Xf)
        scores = self.model_.decision_function(Xf)
        if scores.ndim == 1:  # two classes: one score for the second
            scores = np.column_stack([-scores, scores])
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def decision_function(self, X: Any) -> np.ndarray:
        """The class probabilities (exactly ``predict_proba``), not SVM margins: the calibrated model
        has no single margin per class. Kept only for sklearn tools that ask for a score."""
        return self.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
