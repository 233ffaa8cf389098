"""`retrain()` on the edge of what the labels table allows (called directly; the DAG wiring is tested
in test_retrain_dag.py): small label counts give a held-out slice or a clear skip, never a crash;
`promote=false` is recorded as such; the same inputs twice do not make a second challenger."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

NIGHT = dt.date(2026, 11, 20)


def _tickets_and_base(tmp_path: Path, monkeypatch, per_class: int, n_classes: int = 5) -> pd.DataFrame:
    """Tickets of the n commonest generated categories in the database, and a small base file of
    other generated tickets of the same categories; returns the ticket frame (with true labels)."""
    from triage.classify import registry
    from triage.config import reset_settings
    from triage.ingest import ingest_file
    from triage.synth import generate_tickets
    from triage.tables import write_table

    monkeypatch.setenv("TRIAGE_MODELS_DIR", str(tmp_path / "models"))
    reset_settings()
    registry._CHAMPION_CACHE.clear()
    df = generate_tickets(600, seed=8, start=NIGHT, end=NIGHT).tickets
    cats = list(df["category"].value_counts().index[:n_classes])
    df = df[df["category"].isin(cats)]
    tickets = df.groupby("category").head(per_class)
    write_table(
        tickets.drop(columns=["category", "true_street_code", "true_community_code"]), tmp_path / "t.csv"
    )
    ingest_file(tmp_path / "t.csv", night=NIGHT)
    base = df.drop(tickets.index).groupby("category").head(12)[["title", "text", "category"]]
    base.assign(source="synthetic").to_parquet(tmp_path / "base.parquet")
    return tickets


def _label(tmp_path: Path, rows: pd.DataFrame) -> None:
    from triage.labels import import_labels
    from triage.tables import write_table

    write_table(rows[["ticket_id", "category"]].assign(labeled_by="alice"), tmp_path / "labels.csv")
    assert import_labels(tmp_path / "labels.csv")["rejected"] == 0


def _versions(tmp_path: Path) -> list[str]:
    return sorted(d.name for d in (tmp_path / "models").iterdir() if d.is_dir())


def test_few_labels_give_one_held_out_ticket_per_category_instead_of_a_crash(
    sqlite_db, tmp_path, monkeypatch
):
    from triage.classify.retrain import retrain

    tickets = _tickets_and_base(tmp_path, monkeypatch, per_class=2)  # 10 labels: 20 % would be 2 < 5
    _label(tmp_path, tickets)
    r = retrain(base=tmp_path / "base.parquet", min_labels=2)
    assert r["decision"] == "promoted" and r["reasons"] == ["no champion yet"]
    assert r["holdout"]["n"] == 5  # one per category; the other five train with the base file
    # without a base file the five remaining labels cannot train anything: a skip, with the reason
    (tmp_path / "models" / "CHAMPION").unlink()
    r = retrain(min_labels=2, seed=1)
    assert r["decision"] == "skipped" and "cannot train a challenger" in r["reasons"][0]


def test_single_labels_only_are_skipped_with_the_reason(sqlite_db, tmp_path, monkeypatch):
    from triage.classify.retrain import retrain

    tickets = _tickets_and_base(tmp_path, monkeypatch, per_class=1)
    _label(tmp_path, tickets)
    r = retrain(base=tmp_path / "base.parquet", min_labels=2)
    assert r["decision"] == "skipped" and "no category has two labels" in r["reasons"][0]
    assert not (tmp_path / "models").exists() or _versions(tmp_path) == []


def test_promote_false_is_recorded_and_the_same_inputs_do_not_retrain(sqlite_db, tmp_path, monkeypatch):
    from triage.classify import registry
    from triage.classify.retrain import retrain

    tickets = _tickets_and_base(tmp_path, monkeypatch, per_class=8)
    _label(tmp_path, tickets)
    base = tmp_path / "base.parquet"
    first = retrain(base=base, min_labels=10, version="first")
    assert first["decision"] == "promoted" and registry.champion_version() == "first"

    # the same labels, base and settings: skipped, no second challenger (the weekly run would
    # otherwise promote an identical model every Sunday)
    again = retrain(base=base, min_labels=10)
    assert again["decision"] == "skipped" and "unchanged since first" in again["reasons"][0]
    assert _versions(tmp_path) == ["first"]

    # other settings, against a champion now: a held-out slice of 8 tickets cannot tell the two
    # apart, so the gate does not promote and the card says why, with the numbers
    held = retrain(base=base, min_labels=10, seed=3, version="held")
    assert held["gate"] == "not enough evidence" and held["decision"] == "not enough evidence: not promoted"
    assert registry.champion_version() == "first"
    card = json.loads((tmp_path / "models" / "held" / "card.json").read_text())
    assert card["promotion"]["evidence"]["holdout_n"] == card["promotion"]["holdout"]["n"] == 8
    assert "held-out slice of 8 labelled tickets (< 100)" in card["promotion"]["reasons"][0]
    listed = {v["version"]: v["promotion"] for v in registry.list_versions()}
    assert listed == {"first": "promoted", "held": "not enough evidence: not promoted"}


def test_a_broken_champion_or_base_file_is_a_skip_with_the_reason_before_training(
    sqlite_db, tmp_path, monkeypatch
):
    from triage.classify.retrain import retrain

    tickets = _tickets_and_base(tmp_path, monkeypatch, per_class=8)
    _label(tmp_path, tickets)
    models = tmp_path / "models"
    models.mkdir()
    (models / "CHAMPION").write_text("gone\n")
    r = retrain(base=tmp_path / "base.parquet", min_labels=10)
    assert r["decision"] == "skipped" and "the champion cannot be loaded" in r["reasons"][0]
    assert _versions(tmp_path) == []  # nothing trained and thrown away
    (models / "CHAMPION").unlink()
    bad_base = tmp_path / "messages.csv"
    pd.DataFrame({"留言主题": ["x"], "留言详情": ["y"], "一级分类": ["z"]}).to_csv(bad_base, index=False)
    r = retrain(base=bad_base, min_labels=10)
    assert (
        r["decision"] == "skipped"
        and "no column(s) title, text, category; it has 留言主题" in r["reasons"][0]
    )


def test_a_dry_run_does_not_stop_the_real_run_from_promoting(sqlite_db, tmp_path, monkeypatch):
    from triage.classify import registry
    from triage.classify.retrain import retrain

    tickets = _tickets_and_base(tmp_path, monkeypatch, per_class=8)
    _label(tmp_path, tickets)
    base = tmp_path / "base.parquet"
    dry = retrain(base=base, min_labels=10, version="dry", promote=False)
    assert dry["decision"] == "passed, not promoted" and registry.champion_version() is None
    real = retrain(base=base, min_labels=10, version="real")
    assert real["decision"] == "promoted" and registry.champion_version() == "real"
    assert retrain(base=base, min_labels=10)["decision"] == "skipped"  # now nothing is new


def test_evidence_gate_needs_a_large_enough_slice_and_a_paired_interval():
    import numpy as np

    from triage.classify.retrain import NOT_ENOUGH, evidence_gate

    rng = np.random.default_rng(0)
    y = np.array(["a", "b", "c", "d"] * 40, dtype=object)  # 160 held-out tickets, 40 per class
    same = y.copy()
    same[rng.choice(len(y), 30, replace=False)] = "a"
    # the case: 17 tickets, both models the same → not enough evidence, whatever the scores
    small = evidence_gate(y[:17], same[:17], same[:17])
    assert small["decision"] == NOT_ENOUGH and "17 labelled tickets (< 100)" in small["reasons"][0]
    # identical predictions on 160: the interval is [0, 0], nothing is lost → promoted
    tie = evidence_gate(y, same, same)
    assert tie["decision"] == "promoted" and tie["evidence"]["macro_f1_difference_95ci"]["low"] == 0
    # a challenger that differs on many tickets, equal on average: the interval is wide → not promoted
    other = y.copy()
    other[rng.choice(len(y), 30, replace=False)] = "b"
    wide = evidence_gate(y, same, other)
    ci = wide["evidence"]["macro_f1_difference_95ci"]
    assert ci["low"] < -0.005 < ci["high"]
    assert wide["decision"] in (NOT_ENOUGH, "refused")
    # clearly better: promoted, with the interval above zero
    better = evidence_gate(y, same, y)
    assert better["decision"] == "promoted" and better["evidence"]["macro_f1_difference_95ci"]["low"] > 0
