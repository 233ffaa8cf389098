"""``TfidfVectorizer.transform`` for a fitted vocabulary, vectorised with NumPy.

scikit-learn counts n-grams in a Python loop (one dict lookup per n-gram, ~900 per ticket for
character 1–3-grams): that loop was ~60 % of classification time. Here every n-gram of a whole
batch becomes an integer key at once and is looked up in a hash index of the vocabulary's keys;
the TF-IDF weighting then follows scikit-learn's own steps. The result equals
``vectorizer.transform(docs)`` (tests/test_fast_tfidf.py compares them on real and generated text);
any configuration this module does not reproduce exactly falls back to scikit-learn.
"""

from __future__ import annotations

import re
import weakref
from itertools import chain, repeat
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.preprocessing import normalize

_WHITE_SPACES = re.compile(r"\s\s+")  # what scikit-learn's char analyzer collapses
_WORD_PATTERN = r"(?u)\S+"  # the word vectoriser's token pattern: words split on whitespace
_CODE_BITS = 21  # every code point + 1 fits in 21 bits, so three characters fit in one uint64
_index_cache: weakref.WeakKeyDictionary[TfidfVectorizer, _VocabularyIndex] = weakref.WeakKeyDictionary()


class _VocabularyIndex:
    """The fitted vocabulary as integer keys → column numbers (a hash index: 4x faster than a
    binary search over sorted keys)."""

    def __init__(self, keys: np.ndarray, columns: np.ndarray, tokens: dict[str, int] | None = None):
        self.index = pd.Index(keys)
        self.columns = columns
        self.tokens = tokens  # word vocabularies: token → id used in the keys

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of keys in the vocabulary, their columns)."""
        pos = self.index.get_indexer(keys)
        hit = pos >= 0
        return hit, self.columns[pos[hit]]


class SplitDocs(list):
    """Documents of space-separated tokens: the joined strings (what scikit-learn reads) that also
    keep their tokens, so the word vectorisers of one batch need not split the same strings again
    (``str.split`` made ~2 M string objects per 12,000 tickets, once per word vectoriser). Every
    token must be non-empty and free of whitespace: then ``doc.split()`` gives back its tokens."""

    def __init__(self, token_lists: list[list[str]]):
        super().__init__(" ".join(ts) for ts in token_lists)
        self.lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        self.flat = list(chain.from_iterable(token_lists))


def _split(docs: list[str]) -> tuple[np.ndarray, list[str]]:
    """(tokens per document, every token in order) of whitespace-separated documents."""
    if isinstance(docs, SplitDocs):
        return docs.lengths, docs.flat
    split = [d.split() for d in docs]  # str.split and (?u)\S+ agree on what whitespace is
    return np.fromiter(map(len, split), dtype=np.int64, count=len(split)), list(chain.from_iterable(split))


def supported(vec: TfidfVectorizer) -> bool:
    """True when this module reproduces ``vec.transform`` exactly."""
    plain = (
        vec.input == "content" and vec.preprocessor is None and vec.tokenizer is None
        and vec.strip_accents is None and vec.stop_words is None and not callable(vec.analyzer)
    )  # fmt: skip
    if not plain or not hasattr(vec, "vocabulary_"):
        return False
    if vec.analyzer == "char":
        return vec.ngram_range[1] <= 3
    if vec.analyzer == "word":
        return vec.token_pattern == _WORD_PATTERN and not vec.lowercase and vec.ngram_range[1] <= 3
    return False


def transform(vec: TfidfVectorizer, docs: list[str]) -> sp.csr_matrix:
    """Same matrix as ``vec.transform(docs)``."""
    if not supported(vec):
        return sp.csr_matrix(vec.transform(docs))
    index = _index_cache.get(vec)
    if index is None:
        index = _index_cache[vec] = _build_index(vec)
    if vec.analyzer == "char":
        ngrams = _char_ngrams(vec, docs)
    else:
        lengths, flat = _split(docs)
        ids = np.fromiter(map(index.tokens.get, flat, repeat(-1)), dtype=np.int64, count=len(flat))
        ngrams = _word_ngrams(vec, lengths, ids, len(index.tokens) + 1)
    n_cols = len(vec.vocabulary_)
    pairs = []  # document × n_cols + column of every n-gram in the vocabulary
    for doc_of, keys in ngrams:
        hit, cols = index.lookup(keys)
        pairs.append(doc_of[hit] * n_cols + cols)
    return _weight(vec, _count_matrix(_concat(pairs), (len(docs), n_cols), vec.dtype))


def fit_transform(vec: TfidfVectorizer, docs: list[str]) -> sp.csr_matrix:
    """Same fitted vectoriser and matrix as ``vec.fit_transform(docs)``: the n-grams of the whole
    batch are counted as integer keys (as in :func:`transform`), the vocabulary is pruned by
    document frequency before any term is spelled out, and the kept terms are ordered and limited
    (``max_features``) exactly as scikit-learn's ``_sort_features`` / ``_limit_features`` do.
    scikit-learn's own fit spent most of a training run sorting and pruning millions of n-grams
    in Python."""
    if not _fit_supported(vec):
        return sp.csr_matrix(vec.fit_transform(docs))
    vec._check_params()
    vec._validate_ngram_range()
    vec._warn_for_unused_params()
    vec._validate_vocabulary()  # no fixed vocabulary: fixed_vocabulary_ = False
    try:
        rows, keys, spell = (_char_keys if vec.analyzer == "char" else _word_keys)(vec, docs)
    except OverflowError:  # too many distinct words for integer keys
        return sp.csr_matrix(vec.fit_transform(docs))
    if len(keys) == 0:  # scikit-learn raises its own clear error
        return sp.csr_matrix(vec.fit_transform(docs))
    n_doc = len(docs)
    inv, uniq = pd.factorize(keys)  # hashing, not sorting: the terms are ordered later
    pairs = pd.unique(rows.astype(np.int64) * len(uniq) + inv)  # one (document, n-gram) each
    dfs = np.bincount(pairs % len(uniq), minlength=len(uniq))
    high = vec.max_df if isinstance(vec.max_df, Integral) else vec.max_df * n_doc
    low = vec.min_df if isinstance(vec.min_df, Integral) else vec.min_df * n_doc
    if high < low:
        raise ValueError("max_df corresponds to < documents than min_df")
    kept = np.flatnonzero((dfs <= high) & (dfs >= low))
    if len(kept) == 0:  # scikit-learn raises its own clear error
        return sp.csr_matrix(vec.fit_transform(docs))
    terms = [spell(k) for k in uniq[kept].tolist()]
    order = sorted(range(len(terms)), key=terms.__getitem__)  # scikit-learn's column order
    kept = kept[order]
    if vec.max_features is not None and len(kept) > vec.max_features:
        tfs = np.bincount(inv, minlength=len(uniq))[kept].astype(vec.dtype)
        chosen = np.zeros(len(kept), dtype=bool)
        chosen[(-tfs).argsort()[: vec.max_features]] = True  # the same call as _limit_features
        kept, order = kept[chosen], [o for o, c in zip(order, chosen, strict=True) if c]
    column = np.full(len(uniq), -1, dtype=np.int64)
    column[kept] = np.arange(len(kept))
    vec.vocabulary_ = {terms[o]: i for i, o in enumerate(order)}
    hit = column[inv] >= 0
    counts = _count_matrix(
        rows[hit].astype(np.int64) * len(kept) + column[inv[hit]], (n_doc, len(kept)), vec.dtype
    )
    if vec.binary:
        counts.data.fill(1)
    vec._tfidf = TfidfTransformer(
        norm=vec.norm, use_idf=vec.use_idf, smooth_idf=vec.smooth_idf, sublinear_tf=vec.sublinear_tf
    )
    vec._tfidf.fit(counts)
    return vec._tfidf.transform(counts, copy=False)


def _fit_supported(vec: TfidfVectorizer) -> bool:
    plain = (
        vec.input == "content" and vec.preprocessor is None and vec.tokenizer is None
        and vec.strip_accents is None and vec.stop_words is None and vec.vocabulary is None
    )  # fmt: skip
    if not plain or callable(vec.analyzer):
        return False
    if vec.analyzer == "char":
        return vec.ngram_range[1] <= 3
    return vec.analyzer == "word" and vec.token_pattern == _WORD_PATTERN and not vec.lowercase


def _char_keys(vec: TfidfVectorizer, docs: list[str]):
    """(document of each n-gram, its key, key → term) for a character vectoriser."""
    rows, found = [], []
    for doc_of, keys in _char_ngrams(vec, docs):
        rows.append(doc_of)
        found.append(keys)
    mask = (1 << _CODE_BITS) - 1

    def spell(key: int) -> str:
        out = []
        while key:
            out.append(chr((key & mask) - 1))
            key >>= _CODE_BITS
        return "".join(out)

    return _concat(rows), np.concatenate(found) if found else np.zeros(0, np.uint64), spell


def _word_keys(vec: TfidfVectorizer, docs: list[str]):
    """(document of each n-gram, its key, key → term) for a whitespace-token word vectoriser."""
    lengths, flat = _split(docs)
    ids, tokens = pd.factorize(pd.Series(flat, dtype=object))
    base = len(tokens) + 1
    if base ** vec.ngram_range[1] >= 2**63:  # keys would overflow: scikit-learn's own fit
        raise OverflowError
    rows, found = [], []
    for doc_of, keys in _word_ngrams(vec, lengths, ids.astype(np.int64), base):
        rows.append(doc_of)
        found.append(keys)
    words = list(tokens)

    def spell(key: int) -> str:
        out = []
        while key:
            key, r = divmod(key, base)
            out.append(words[r - 1])
        return " ".join(out)

    return _concat(rows), np.concatenate(found) if found else np.zeros(0, np.int64), spell


def _weight(vec: TfidfVectorizer, X: sp.csr_matrix) -> sp.csr_matrix:
    # scikit-learn's TfidfTransformer.transform, step for step
    if vec.binary:
        X.data.fill(1)
    if vec.sublinear_tf:
        np.log(X.data, X.data)
        X.data += 1.0
    if vec.use_idf:
        X.data *= vec.idf_[X.indices]
    if vec.norm is not None:
        X = normalize(X, norm=vec.norm, copy=False)
    return X


def _build_index(vec: TfidfVectorizer) -> _VocabularyIndex:
    terms = list(vec.vocabulary_)
    columns = np.fromiter(vec.vocabulary_.values(), dtype=np.int64, count=len(terms))
    if vec.analyzer == "char":
        keys = np.fromiter((_char_key(t) for t in terms), dtype=np.uint64, count=len(terms))
        return _VocabularyIndex(keys, columns)
    tokens: dict[str, int] = {}
    for term in terms:
        for tok in term.split(" "):
            tokens.setdefault(tok, len(tokens))
    base = len(tokens) + 1
    keys = np.fromiter(
        (sum((tokens[tok] + 1) * base**k for k, tok in enumerate(t.split(" "))) for t in terms),
        dtype=np.int64,
        count=len(terms),
    )
    return _VocabularyIndex(keys, columns, tokens)


def _char_key(term: str) -> int:
    return sum((ord(c) + 1) << (_CODE_BITS * k) for k, c in enumerate(term))


def _positions(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every item of the concatenated batch: its document, and how many items from it to
    the end of that document (an n-gram starting there is whole when that is ≥ n)."""
    doc_of = np.repeat(np.arange(len(lengths)), lengths)
    ends = np.cumsum(lengths)
    left = ends[doc_of] - np.arange(int(ends[-1]) if len(ends) else 0)
    return doc_of, left


def _char_ngrams(vec: TfidfVectorizer, docs: list[str]):
    """For each n of the vectoriser's range: (document of each n-gram, its integer key)."""
    if vec.lowercase:
        docs = [d.lower() for d in docs]
    docs = [_WHITE_SPACES.sub(" ", d) for d in docs]
    lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
    codes = np.frombuffer("".join(docs).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    codes = codes.astype(np.uint64) + 1
    doc_of, left = _positions(lengths)
    total = len(codes)
    keys = np.zeros(total, dtype=np.uint64)
    min_n, max_n = vec.ngram_range
    for n in range(1, max_n + 1):
        # key of the n-gram starting at each position: the previous key plus the n-th character
        keys[: total - n + 1] += codes[n - 1 :] << np.uint64(_CODE_BITS * (n - 1))
        if n >= min_n:
            starts = np.flatnonzero(left >= n)
            yield doc_of[starts], keys[starts]


def _word_ngrams(vec: TfidfVectorizer, lengths: np.ndarray, ids: np.ndarray, base: int):
    """For each n of the vectoriser's range: (document of each word n-gram, its integer key), the
    documents' tokens given as ``ids`` (concatenated, ``lengths`` per document; -1: a token no
    key can hold, which leaves out every n-gram containing it)."""
    doc_of, left = _positions(lengths)
    total = len(ids)
    keys = np.zeros(total, dtype=np.int64)
    known = np.ones(total, dtype=bool)  # every token of the n-gram has an id
    min_n, max_n = vec.ngram_range
    for n in range(1, max_n + 1):
        keys[: total - n + 1] += (ids[n - 1 :] + 1) * base ** (n - 1)
        known[: total - n + 1] &= ids[n - 1 :] >= 0
        if n >= min_n:
            starts = np.flatnonzero((left >= n) & known)
            yield doc_of[starts], keys[starts]


def _count_matrix(pair: np.ndarray, shape: tuple[int, int], dtype) -> sp.csr_matrix:
    """CSR matrix of how often each (row, column) pair occurs — ``pair`` holds row × n_columns +
    column, and is sorted in place — one entry per pair, indices sorted. One sort of int64 keys:
    ~30 % faster than building it from COO and summing duplicates (scipy sorts row by row)."""
    n_rows, n_cols = shape
    pair.sort()
    first = np.ones(len(pair), dtype=bool)  # the first of each run of equal pairs
    np.not_equal(pair[1:], pair[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=len(pair)).astype(dtype)
    pair = pair[starts]
    row_of = pair // n_cols
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of, minlength=n_rows), out=indptr[1:])
    return sp.csr_matrix((counts, pair - row_of * n_cols, indptr), shape=shape)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
