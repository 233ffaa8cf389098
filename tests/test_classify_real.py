"""The shipped champion on real citizen language, measured on the LOCKED part of the 644
hand-labelled real messages (data_samples/real/locked_split.json): no keyword, threshold or variant
was chosen on them and the champion never trained on them or on their compact twins. The floors
sit a little below the figures measured once at the end of the tuning round (docs/classifier.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow

# measured on the locked part with builtin-v5 (docs/classifier.md, *Real register*)
FLOOR_ACCURACY_CLEAR = 0.79  # measured 0.823 on the 203 clear locked messages
FLOOR_PRECISION_AUTO = 0.90  # measured 0.936 on the 109 auto-dispatched clear ones (target 0.95)


@pytest.fixture(scope="module")
def scored():
    from triage.classify.realdata import load_labeled29
    from triage.classify.registry import load_champion

    m = load_champion()
    locked = load_labeled29("locked")
    X = np.column_stack([locked["title"].to_numpy(object), locked["text"].to_numpy(object)])
    proba = m.estimator.predict_proba(X)
    pred = m.estimator.classes_[proba.argmax(1)]
    return m, locked, pred, proba.max(1)


def test_locked_split_is_the_committed_one():
    from triage.classify.realdata import load_labeled29, load_tipdm7

    assert len(load_labeled29("locked")) == 258 and len(load_labeled29("tuning")) == 386
    assert len(load_tipdm7("locked")) == 1448 and len(load_tipdm7("tuning")) == 5791


def test_champion_never_trained_on_a_locked_message():
    import pandas as pd

    from triage.classify.realdata import REAL_DIR, load_labeled29, load_tipdm7, twins

    train = pd.read_parquet(REAL_DIR.parent / "training/champion_train.parquet")
    locked = load_labeled29("locked")
    assert not set(locked["text"]) & set(train["text"])
    raw = [f"{t}\n{b}" for t, b in zip(locked["title"], locked["text"], strict=True)]
    weak = train[train["source"].isin(["tipdm7-weak", "tipdm7-read"])]["text"].tolist()
    assert (twins(raw, weak) < 0).all()  # no compact twin (nor near-duplicate twin) of a locked message
    assert not set(load_tipdm7("locked")["text"]) & set(weak)


def test_real_text_floor_on_locked_clear_messages(scored):
    m, locked, pred, conf = scored
    clear = locked["clear"].to_numpy()
    ok = pred == locked["category"].to_numpy()
    assert ok[clear].mean() >= FLOOR_ACCURACY_CLEAR, ok[clear].mean()
    auto = clear & (conf >= m.threshold)
    assert ok[auto].mean() >= FLOOR_PRECISION_AUTO


def test_card_reports_real_text_figures(scored):
    m = scored[0]
    card = json.loads((m.directory / "card.json").read_text(encoding="utf-8"))
    sets = card["real_text"]["sets"]
    assert any(s["set"].startswith("locked") for s in sets) and any(
        s["set"].startswith("tuning") for s in sets
    )
    assert all({"n", "accuracy", "coverage", "precision"} <= set(s) for s in sets)


def _read_file(tmp_path, rows: list[str]):
    p = tmp_path / "read.csv"
    p.write_text("row,label7,code,clear\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return p


def test_read_labels_are_checked_on_load(tmp_path):
    from triage.classify.realdata import load_read29, load_tipdm7

    t7 = load_tipdm7("tuning")
    r, lab = int(t7.index[0]), t7["label"].iloc[0]
    ok = load_read29(_read_file(tmp_path, [f"{r},{lab},other,false"]))
    assert ok["text"].iloc[0] == t7["text"].iloc[0] and not ok["clear"].iloc[0]
    locked_row = int(load_tipdm7("locked").index[0])
    other_label = next(x for x in t7["label"].unique() if x != lab)
    cases = {
        f"{locked_row},{lab},other,true": "not a tuning row",
        f"{r},{other_label},other,true": "differs from the message's",
        f"{r},{lab},no_such_code,true": "not allowed for label7",
        f"{r},{lab},other,yes": "clear must be true or false",
    }
    for row, msg in cases.items():
        with pytest.raises(ValueError, match=msg) as e:
            load_read29(_read_file(tmp_path, [row]))
        assert "read.csv:2" in str(e.value)
    with pytest.raises(ValueError, match=r"read.csv:3: row .* repeated"):
        load_read29(_read_file(tmp_path, [f"{r},{lab},other,true"] * 2))


def test_shipped_read_labels_load():
    from triage.classify.realdata import READ29, load_read29

    df = load_read29(READ29)
    assert len(df) >= 1000 and df["clear"].any()
