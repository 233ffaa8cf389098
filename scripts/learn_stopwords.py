"""Learn the stopword list that turns raw citizen text into the compact form of the 7,239 messages.

The 7,239 TipDM training messages were published word-segmented with stopwords removed and the
spaces taken out; the raw messages (title, newline, body) look different. Some raw messages of the
hand-labelled 644 have their compact twin among the 7,239: aligning the jieba tokens of each raw
message with its twin shows which tokens the publisher removed. A token is a stopword when it was
removed at least 3 times and kept at most a ninth as often. Only twins of *tuning* rows with an
even message id (and a 7-label) are read: the odd ones are the cross-form check of bench/classify_7label.py, and
the locked rows (data_samples/real/locked_split.json) are not read at all.

    .venv/bin/python scripts/learn_stopwords.py   # writes triage/classify/stopwords_zh.txt
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "triage" / "classify" / "stopwords_zh.txt"


def main() -> None:
    from triage.classify.model import shared_tokenizer
    from triage.classify.realdata import load_labeled29, load_tipdm7, twins
    from triage.text import normalize

    l29 = load_labeled29(part="tuning")
    l29 = l29[l29["message_id"] % 2 == 0]
    t7 = load_tipdm7(part="all")
    raw = [normalize(f"{t}\n{b}") for t, b in zip(l29["title"], l29["text"], strict=True)]
    twin = twins(raw, t7["text"].tolist())
    tok = shared_tokenizer(())
    kept: collections.Counter[str] = collections.Counter()
    removed: collections.Counter[str] = collections.Counter()
    pairs = 0
    for r, j in zip(raw, twin, strict=True):
        if j < 0:
            continue
        pairs += 1
        compact, p = normalize(t7["text"].iat[j]), 0
        for w in tok.cut(r):
            if compact.startswith(w, p):
                kept[w] += 1
                p += len(w)
            elif len(w) > 1 and (q := compact.find(w, p, p + 12)) >= 0:  # resynchronise after a skip
                kept[w] += 1
                p = q + len(w)
            else:
                removed[w] += 1
    stop = sorted(w for w, n in removed.items() if n >= 3 and kept[w] * 9 <= n and not w.isspace())
    OUT.write_text(
        f"# learned by scripts/learn_stopwords.py from {pairs} raw/compact twin pairs; one token a line\n"
        + "\n".join(stop)
        + "\n",
        encoding="utf-8",
    )
    print(f"{len(stop)} stopwords from {pairs} pairs -> {OUT}")


if __name__ == "__main__":
    main()
