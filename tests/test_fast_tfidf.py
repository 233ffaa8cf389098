"""The vectorised TF-IDF fit and transform must give scikit-learn's vocabulary, IDF and matrix
exactly: any difference would silently change the features and the predictions."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from triage.classify import fast_tfidf
from triage.classify.model import TicketClassifier, ticket_views

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data_samples/real/tipdm2020c_sample/messages_labeled.csv"

AWKWARD = [
    "",
    " ",
    "a",
    "小区  门口\n\n 垃圾\t堆放",  # whitespace runs are collapsed by the char analyzer
    "ABC 物业 Abc abc",  # lowercasing
    "路灯坏了😡😡 𠀀𠀁",  # characters outside the BMP
    "İstanbul ǅ",  # lowercasing that changes the string's length
]


def _real_texts() -> list[str]:
    real = pd.read_csv(REAL)
    return (real["留言主题"].astype(str) + "\n" + real["留言详情"].astype(str)).tolist()


def _same(vec: TfidfVectorizer, docs: list[str]) -> None:
    expected = vec.transform(docs)
    got = fast_tfidf.transform(vec, docs)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    assert got.nnz == expected.nnz
    assert (got != expected).nnz == 0  # bit-for-bit the same weights


@pytest.mark.parametrize(
    "params",
    [
        {"analyzer": "char", "ngram_range": (1, 3)},
        {"analyzer": "char", "ngram_range": (2, 3), "max_features": 500},
        {"analyzer": "char", "ngram_range": (1, 2), "sublinear_tf": False, "norm": "l1"},
        {"analyzer": "char", "ngram_range": (1, 1), "use_idf": False, "binary": True},
    ],
)
def test_char_ngrams_equal_sklearn(params):
    texts = _real_texts()
    common = {"sublinear_tf": True, "min_df": 2, "dtype": np.float32} | params
    vec = TfidfVectorizer(**common).fit(texts[:300] + AWKWARD)
    assert fast_tfidf.supported(vec)
    _same(vec, texts[300:] + AWKWARD)


def test_word_ngrams_equal_sklearn_on_the_models_own_views():
    texts = _real_texts()
    views = ticket_views(np.array(texts, dtype=object), user_words=("物业管理", "群租房"))
    for ngram, cap in [((1, 2), None), ((1, 3), 2_000), ((2, 2), None)]:
        vec = TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\S+", lowercase=False, ngram_range=ngram,
                              max_features=cap, sublinear_tf=True, min_df=2, dtype=np.float32)  # fmt: skip
        vec.fit(views["words"][:300])
        assert fast_tfidf.supported(vec)
        _same(vec, views["words"][300:] + ["", "未登录词 另一个 未登录词", "物业管理 物业管理 群租房"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.sampled_from(list("小区物业垃圾 \n\tAaB路灯😡")), max_size=30),
        min_size=1,
        max_size=12,
    )
)
def test_any_batch_equals_sklearn(docs):
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, dtype=np.float32)
    vec.fit(["小区物业 垃圾", "路灯 A 😡", "aab\n\n小区"])
    _same(vec, docs)


def _same_fit(params: dict, docs: list[str]) -> None:
    from sklearn.base import clone

    ours = TfidfVectorizer(**params)
    theirs = clone(ours)
    expected = theirs.fit_transform(docs)
    got = fast_tfidf.fit_transform(ours, docs)
    assert ours.vocabulary_ == theirs.vocabulary_
    if theirs.use_idf:
        assert np.array_equal(ours.idf_, theirs.idf_) and ours.idf_.dtype == theirs.idf_.dtype
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert (got != expected).nnz == 0
    _same(ours, docs[:50] + AWKWARD)  # the fitted vectoriser transforms as scikit-learn's does
    assert ours.fixed_vocabulary_ is False


@pytest.mark.parametrize(
    "params",
    [
        {"analyzer": "char", "ngram_range": (1, 3), "min_df": 2},
        {"analyzer": "char", "ngram_range": (1, 3), "min_df": 2, "max_features": 3_000},  # ties cut as sklearn
        {"analyzer": "char", "ngram_range": (2, 3), "min_df": 0.01, "max_df": 0.5},
        {"analyzer": "char", "ngram_range": (1, 1), "use_idf": False, "binary": True, "lowercase": False},
        {"analyzer": "word", "token_pattern": r"(?u)\S+", "lowercase": False, "ngram_range": (1, 2), "min_df": 2},
        {"analyzer": "word", "token_pattern": r"(?u)\S+", "lowercase": False, "ngram_range": (1, 3),
         "max_features": 500},
    ],
)  # fmt: skip
def test_fit_equals_sklearn(params):
    texts = _real_texts()
    docs = texts + AWKWARD
    if params["analyzer"] == "word":
        docs = ticket_views(np.array(docs, dtype=object), user_words=("物业管理",))["words"]
    _same_fit({"sublinear_tf": True, "dtype": np.float32} | params, docs)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.sampled_from(list("小区物业垃圾 \n\tAaB路灯😡İ")), min_size=1, max_size=30),
        min_size=2,
        max_size=12,
    )
)
def test_any_fit_equals_sklearn(docs):
    params = {"analyzer": "char", "ngram_range": (1, 3), "sublinear_tf": True, "dtype": np.float32}
    if not any(d.strip() for d in docs):
        return  # scikit-learn's "empty vocabulary" error: tested below
    _same_fit(params | {"max_features": 7}, docs)


def test_fit_errors_are_scikit_learns():
    cases = ((["", ""], {}), (["ab", "cd"], {"min_df": 2}), (["ab", "cd"], {"min_df": 2, "max_df": 1}))
    for docs, params in cases:
        with pytest.raises(ValueError) as theirs:
            TfidfVectorizer(analyzer="char", **params).fit_transform(docs)
        with pytest.raises(ValueError) as ours:
            fast_tfidf.fit_transform(TfidfVectorizer(analyzer="char", **params), docs)
        assert str(ours.value) == str(theirs.value)


def test_unsupported_settings_fall_back_to_sklearn():
    texts = _real_texts()[:100]
    for vec in (
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)),
        TfidfVectorizer(analyzer="char", ngram_range=(1, 4)),
        TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\b\w\w+\b"),
    ):
        vec.fit(texts)
        assert not fast_tfidf.supported(vec)
        _same(vec, texts)


def test_classifier_predictions_unchanged():
    texts = _real_texts()
    labels = pd.read_csv(REAL)["一级分类"].tolist()
    clf = TicketClassifier(calibration_folds=2).fit(np.array(texts[:350], dtype=object), labels[:350])
    X = np.array(texts[350:], dtype=object)
    views = ticket_views(X, (), lead_chars=clf.lead_chars)
    slow = np.hstack([vec.transform(views[n]).toarray() * w for n, vec, w in clf.vectorizers_])
    fast = clf._transform(X).toarray()
    assert np.array_equal(slow, fast)


def test_keyword_vectorizer_matches_scikit_learn():
    # the keyword-group block counts taxonomy keywords with a fixed-vocabulary binary vectoriser
    from triage.classify.train import keyword_groups_for, user_words_for

    texts = _real_texts()
    clf = TicketClassifier(calibration_folds=2, keyword_groups=keyword_groups_for("builtin"))
    clf.fit(np.array(texts[:200], dtype=object), pd.read_csv(REAL)["一级分类"].tolist()[:200])
    vec = clf.keyword_vectorizer_
    assert fast_tfidf.supported(vec)
    words = ticket_views(np.array(texts + AWKWARD, dtype=object), user_words_for("none"))["words"]
    _same(vec, words)
    assert vec.transform(words).nnz > 100  # real messages do contain taxonomy keywords


@pytest.mark.parametrize("stopwords", [(), ("的", "了", "，")])
def test_word_view_keeps_the_tokens_that_splitting_would_give(stopwords):
    # the word vectorisers read the tokens kept by ticket_views instead of splitting the joined
    # strings again: the two must agree on every kind of whitespace and control character
    hostile = ["a\u2028b\u00a0c\x1cd\u3000e\u200bf", "\x00物业\x85费\r\n\t了", "的 的 ，", "\u2003"]
    texts = _real_texts()[:50] + AWKWARD + hostile
    words = ticket_views(np.array(texts, dtype=object), ("物业管理",), stopwords=stopwords)["words"]
    assert isinstance(words, fast_tfidf.SplitDocs)
    assert words.flat == [t for d in words for t in d.split()]
    assert words.lengths.tolist() == [len(d.split()) for d in words]
    vec = TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\S+", lowercase=False, ngram_range=(1, 2))
    vec.fit(list(words))
    _same(vec, words)


def test_prediction_in_chunks_equals_one_pass(monkeypatch):
    # predict_proba works through PREDICT_CHUNK tickets at a time (cache-sized arrays): every
    # feature is per ticket, so the chunks must give exactly the probabilities of one pass
    from triage.classify import model as model_module

    texts = _real_texts()
    labels = pd.read_csv(REAL)["一级分类"].tolist()
    clf = TicketClassifier(calibration_folds=2).fit(np.array(texts[:300], dtype=object), labels[:300])
    X = np.array(texts[300:] + AWKWARD, dtype=object)
    monkeypatch.setattr(model_module, "PREDICT_CHUNK", 7)  # many chunks, the last one short
    chunked = clf.predict_proba(X)
    assert len(X) % 7 != 0 and len(chunked) == len(X)
    assert np.array_equal(chunked, clf._predict_proba(X))
