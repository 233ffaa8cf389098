"""The classifier segments with rjieba (jieba-rs: jieba's algorithm in Rust) for speed. Its words are
the model's features, so they must be jieba's words: checked here, token for token, against jieba
itself with the product's user dictionary, on real citizen messages and on generated tickets."""

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


def test_rjieba_gives_jiebas_tokens(reference_jieba):
    words, reference = reference_jieba
    fast = shared_tokenizer(words)
    texts = _texts()
    assert len(texts) > 2000
    differing = [
        t for t in texts if fast.cut(t) != [w for w in reference.cut(t, HMM=False) if not w.isspace()]
    ]
    assert not differing, (
        f"{len(differing)} of {len(texts)} texts segment differently, e.g. {differing[0][:80]!r}"
    )


def test_user_dictionary_is_applied():
    fast = shared_tokenizer(("多福巷社区", "群租房"))
    assert "多福巷社区" in fast.cut("多福巷社区有群租房")
    assert "群租房" in fast.cut("多福巷社区有群租房")
