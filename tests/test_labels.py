"""Labels for retraining: file import, analysts' corrections (the API's entry point) and the
training view that prefers corrections — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

NIGHT = dt.date(2026, 11, 20)


@pytest.fixture
def tickets(db, tmp_path) -> pd.DataFrame:
    from triage.ingest import ingest_file
    from triage.synth import generate_tickets
    from triage.tables import write_table

    df = generate_tickets(12, seed=2, start=NIGHT, end=NIGHT).tickets
    f = tmp_path / "night.csv"
    write_table(df.drop(columns=["category", "true_street_code", "true_community_code"]), f)
    ingest_file(f, night=NIGHT)
    return df


def test_import_correct_and_gather(tickets, tmp_path):
    from triage.labels import LabelError, import_labels, labeled_tickets, record_correction

    f = tmp_path / "labels.csv"
    rows = tickets[["ticket_id", "category"]].iloc[:5].assign(labeled_by="alice")
    rows.loc[rows.index[0], "category"] = "占道经营"  # a Chinese name is accepted
    pd.concat([rows, pd.DataFrame([{"ticket_id": "NOPE", "category": "other", "labeled_by": "x"}])]).to_csv(
        f, index=False
    )
    r = import_labels(f)
    assert (r["imported"], r["rejected"]) == (5, 1) and "NOPE" in r["problems"][0]

    tid = tickets["ticket_id"].iloc[1]
    row = record_correction(tid, "group_rental", "analyst-7")
    assert row["source"] == "correction" and row["category"] == "group_rental"
    record_correction(tid, "群租房", "analyst-7")  # the same person again: replaced, not duplicated

    got = labeled_tickets().set_index("ticket_id")
    assert len(got) == 5
    assert got.loc[tid, "category"] == "group_rental"  # the correction beats alice's import
    assert got.loc[tickets["ticket_id"].iloc[0], "category"] == "street_vending"
    assert got.loc[tid, "text"]  # the ticket's text comes along for training

    with pytest.raises(LabelError, match="not in the database"):
        record_correction("NOPE", "other", "a")
    with pytest.raises(LabelError, match="not a category"):
        record_correction(tid, "外星人", "a")
    with pytest.raises(LabelError, match="labeled_by"):
        record_correction(tid, "other", " ")
