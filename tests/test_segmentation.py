"""The classifier segments with rjieba (jieba-rs: jieba's algorithm in Rust) for speed. Its words are
the model's features, so they must be jieba's words: checked here, token for token, against jieba
itself with the product's user dictionary, on real citizen messages and on generated tickets (where
two routes have exactly the best score, either is jieba's segmentation)."""

import math
from pathlib import Path

import pandas as pd
import pytest

from triage.classify.model import shared_tokenizer
from triage.classify.train import user_words_for
from triage.text import normalize

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data_samples/real/tipdm2020c_sample/messages_labeled.csv"
GENERATED = ROOT / "data_samples/training/labeled_tickets.parquet"


@pytest.fixture(scope="module")
def reference_jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    words = user_words_for("builtin")
    tok = jieba.Tokenizer()
    tok.initialize()
    for w in words:
        tok.add_word(w, freq=20000)
    return words, tok


def _texts() -> list[str]:
    real = pd.read_csv(REAL)
    texts = (real["留言主题"].astype(str) + "。" + real["留言详情"].astype(str)).tolist()
    generated = pd.read_parquet(GENERATED, columns=["text"])["text"].head(1500).tolist()
    # raw (traditional, full-width) as well as normalised text: the segmenter sees both in training
    return texts + [normalize(t) for t in texts] + generated


def _log_probability(tok, words: list[str]) -> float:
    # jieba's score of a segmentation (HMM off): the sum of log(word frequency / total)
    return sum(math.log(tok.FREQ.get(w) or 1) - math.log(tok.total) for w in words)


def test_rjieba_gives_jiebas_tokens(reference_jieba):
    words, reference = reference_jieba
    fast = shared_tokenizer(words)
    texts = _texts()
    assert len(texts) > 2000
    differing, ties = [], []
    for t in texts:
        ours = fast.cut(t)
        theirs = [w for w in reference.cut(t, HMM=False) if not w.isspace()]
        if ours == theirs:
            continue
        # two routes with exactly jieba's best score (e.g. 掏心|掏|肺 vs 掏|心掏|肺): both are
        # jieba's segmentation, and the two implementations may pick either
        if math.isclose(_log_probability(reference, ours), _log_probability(reference, theirs), abs_tol=1e-9):
            ties.append(t)
        else:
            differing.append(t)
    assert not differing, (
        f"{len(differing)} of {len(texts)} texts segment differently, e.g. {differing[0][:80]!r}"
    )
    assert len(ties) <= len(texts) // 200, f"{len(ties)} texts have tied segmentations"


def test_user_dictionary_is_applied():
    fast = shared_tokenizer(("多福巷社区", "群租房"))
    assert "多福巷社区" in fast.cut("多福巷社区有群租房")
    assert "群租房" in fast.cut("多福巷社区有群租房")
