"""The real labelled sets shipped in data_samples/real/ and their locked parts.

``data_samples/real/locked_split.json`` (scripts/lock_real_split.py) fixes, before any tuning,
which rows are locked: they are never used to train the champion or to choose anything, and are
scored once at the end. ``part`` selects ``"tuning"`` (the rest), ``"locked"`` or ``"all"``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

REAL_DIR = Path(__file__).resolve().parents[2] / "data_samples" / "real"
SPLIT = REAL_DIR / "locked_split.json"
# 29-code readings of tuning messages of the 7,239 (row = their row in messages_7label.csv)
READ29 = REAL_DIR / "tipdm7_read29.csv"


def _split() -> dict:
    return json.loads(SPLIT.read_text(encoding="utf-8"))


def _checked(path: Path, sha: str) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha:
        raise ValueError(f"{path}: sha256 {digest[:12]}… differs from the locked split's {sha[:12]}…")
    return path


def _select(df: pd.DataFrame, locked: np.ndarray, part: str) -> pd.DataFrame:
    if part not in ("tuning", "locked", "all"):
        raise ValueError(f"part must be tuning, locked or all, not {part!r}")
    if part == "all":
        return df
    return df[locked if part == "locked" else ~locked]


def load_labeled29(part: str = "tuning") -> pd.DataFrame:
    """The 644 hand-labelled 29-code messages (title, text, label7, category, clear, …)."""
    s = _split()["labeled29"]
    df = pd.read_csv(_checked(REAL_DIR.parent.parent / s["file"], s["sha256"])).fillna(
        {"title": "", "text": ""}
    )
    df["clear"] = df["clear"].astype(bool)
    return _select(df, df["message_id"].isin(s["locked_message_ids"]).to_numpy(), part)


def load_tipdm7(part: str = "tuning") -> pd.DataFrame:
    """The 7,239 7-label messages (compact form: columns text, label), original row index kept."""
    s = _split()["tipdm7"]
    df = pd.read_csv(_checked(REAL_DIR.parent.parent / s["file"], s["sha256"]))
    return _select(df, df.index.isin(s["locked_row_indices"]), part)


def load_read29(path: Path = READ29) -> pd.DataFrame:
    """29-code labels given by reading tuning messages of the 7,239 (``tipdm7_read29.csv``: row,
    label7, code, clear), joined to their text. Checked on load: a row that is not a tuning row of
    the 7,239, a label7 that differs from the publisher's, a code its label7 does not allow or a
    repeated row is a ``ValueError`` naming the file, line and field."""
    from triage.classify.compat import load_compat

    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"row", "label7", "code", "clear"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    t7 = load_tipdm7("tuning")
    compat = load_compat(REAL_DIR.parents[1] / "taxonomy" / "label_compat_tipdm7.yaml")
    for line, r in zip(range(2, len(df) + 2), df.itertuples(), strict=True):
        where = f"{path.name}:{line}"
        if not r.row.isdigit():
            raise ValueError(f"{where}: row must be a row number of messages_7label.csv, not {r.row!r}")
        if int(r.row) not in t7.index:
            raise ValueError(f"{where}: row {r.row} is not a tuning row of the 7,239 (locked or absent)")
        if r.label7 != t7.at[int(r.row), "label"]:
            raise ValueError(
                f"{where}: label7 {r.label7!r} differs from the message's {t7.at[int(r.row), 'label']!r}"
            )
        if r.code not in compat.codes.get(r.label7, ()):
            raise ValueError(f"{where}: code {r.code!r} is not allowed for label7 {r.label7!r}")
        if r.clear not in ("true", "false"):
            raise ValueError(f"{where}: clear must be true or false, not {r.clear!r}")
    dup = df["row"].duplicated()
    if dup.any():
        raise ValueError(
            f"{path.name}:{int(dup.to_numpy().argmax()) + 2}: row {df['row'][dup].iloc[0]} repeated"
        )
    rows = df["row"].astype("int64")
    return df.assign(row=rows, clear=df["clear"].eq("true"), text=t7.loc[rows, "text"].to_numpy())


def twins(raw: list[str], compact: list[str], min_cosine: float = 0.5) -> np.ndarray:
    """For each raw message, the index of its compact-form twin in ``compact`` (-1: none): the
    most similar by character-trigram TF-IDF cosine, if at least ``min_cosine`` (measured: twins
    score 0.5–1.0, unrelated messages below 0.45)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char", ngram_range=(3, 3)).fit(compact)
    sim = (vec.transform(raw) @ vec.transform(compact).T).tocsr()
    best = np.asarray(sim.argmax(axis=1)).ravel()
    score = np.asarray(sim.max(axis=1).todense()).ravel()
    return np.where(score >= min_cosine, best, -1)


def twin_rows(raw: list[str], compact: list[str], min_cosine: float = 0.5) -> np.ndarray:
    """Indices of every message in ``compact`` that is a twin (cosine ≥ ``min_cosine``) of some
    message in ``raw`` — near-duplicates included: 10 of the locked messages have two twins among
    the 7,239 (the same complaint posted twice), so the best match alone is not enough."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char", ngram_range=(3, 3)).fit(compact)
    sim = (vec.transform(raw) @ vec.transform(compact).T).tocsr()
    return np.unique(sim.indices[sim.data >= min_cosine])
