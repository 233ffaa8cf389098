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


def test_import_lists_every_problem_with_the_row_a_person_sees(tickets, tmp_path):
    from typer.testing import CliRunner

    from triage.cli import app
    from triage.labels import import_labels, labeled_tickets

    t = tickets["ticket_id"].tolist()
    rows = pd.DataFrame(
        [
            {"ticket_id": t[0], "category": "other", "labeled_by": "bob"},  # row 2: stored
            {"ticket_id": t[1], "category": "potholes", "labeled_by": "bob"},  # row 3: unknown category
            {"ticket_id": "", "category": "other", "labeled_by": "bob"},  # row 4: empty id
            {"ticket_id": t[2], "category": " ", "labeled_by": "bob"},  # row 5: empty category
            {"ticket_id": t[3], "category": "education", "labeled_by": "bob"},  # row 6 …
            {"ticket_id": t[3], "category": "sanitation", "labeled_by": "bob"},  # … row 7 disagrees
            {"ticket_id": t[0], "category": "其他", "labeled_by": "bob"},  # row 8: the same as row 2
            {"ticket_id": t[3], "category": "education", "labeled_by": "bob"},  # row 9: still in conflict
        ]
    )
    f = tmp_path / "labels.csv"
    rows.to_csv(f, index=False)
    r = import_labels(f)
    assert (r["imported"], r["rejected"], r["repeated"]) == (1, 6, 1)  # the conflict withholds 3 rows
    assert [p.split(", ", 1)[1] for p in r["problems"]] == [
        "row 3, field 'category': 'potholes' is not a category code or name",
        "row 4, field 'ticket_id': empty",
        "row 5, field 'category': empty",
        f"rows 6, 7, 9: 'bob' labels ticket {t[3]!r} education / sanitation / education; none is stored — keep one",
    ]
    assert set(labeled_tickets()["ticket_id"]) == {t[0]}

    out = CliRunner().invoke(app, ["label", "import", str(f)])
    assert out.exit_code == 1 and out.output.count(str(f)) == 4  # every problem printed, not the first
    assert "categories (code or name): street_vending 占道经营" in out.output  # what 'potholes' could be

    # JSON Lines: rows are lines (blank ones count), and null fields are empty, not "nan"
    j = tmp_path / "labels.jsonl"
    j.write_text(
        "\n"
        + '{"ticket_id": null, "category": "other", "labeled_by": "z"}\n'
        + f'{{"ticket_id": "{t[1]}", "category": null, "labeled_by": "z"}}\n\n'
        + f'{{"ticket_id": "{t[1]}", "category": "potholes", "labeled_by": "z"}}\n'
        + f'{{"ticket_id": "{t[4]}", "category": "other", "labeled_by": null}}\n',
        encoding="utf-8",
    )
    r = import_labels(j)
    assert [p.split(", ", 1)[1] for p in r["problems"]] == [
        "row 2, field 'ticket_id': empty",
        "row 3, field 'category': empty",
        "row 5, field 'category': 'potholes' is not a category code or name",
        "row 6, field 'labeled_by': empty (who gave this label?)",
    ]
    assert r["imported"] == 0  # an empty labeled_by is refused, never guessed (it was the file's name)
    assert t[4] not in set(labeled_tickets()["ticket_id"])


def test_category_names_are_accepted_as_people_write_them(tickets, tmp_path):
    from triage.labels import import_labels, labeled_tickets

    variants = [
        "环境卫生(垃圾、污水、公厕、村容)",  # half-width brackets; the taxonomy writes （）
        "架空线与“蜘蛛网”",  # curly quotes; the taxonomy writes straight ones
        "Sanitation",
        " 物業管理 ",  # traditional script, padded
        "占道 经营",
    ]
    f = tmp_path / "variants.csv"
    rows = tickets[["ticket_id"]].iloc[: len(variants)].assign(category=variants, labeled_by="bob")
    rows.to_csv(f, index=False)
    r = import_labels(f)
    assert (r["imported"], r["rejected"]) == (5, 0), r["problems"]
    got = labeled_tickets().set_index("ticket_id")["category"]
    assert list(got.loc[rows["ticket_id"]]) == [
        "sanitation", "overhead_cables", "sanitation", "property_management", "street_vending",
    ]  # fmt: skip


def test_importing_the_same_file_twice_says_nothing_new_and_changes_nothing(tickets, tmp_path):
    """Issue 21.12: the second import reports 0 new, N unchanged (it said "N labels stored" twice)
    and rewrites nothing; a changed category counts as changed."""
    from sqlalchemy import select
    from typer.testing import CliRunner

    from triage.cli import app
    from triage.store import Label, get_engine

    f = tmp_path / "labels.csv"
    rows = tickets[["ticket_id", "category"]].assign(labeled_by="alice")
    rows.to_csv(f, index=False)
    n = len(rows)
    first = CliRunner().invoke(app, ["label", "import", str(f)])
    assert first.exit_code == 0 and f"{n} rows: {n} new, 0 unchanged, 0 changed, 0 rejected" in first.output
    with get_engine().connect() as conn:
        stamps = conn.execute(select(Label.ticket_id, Label.labeled_at).order_by(Label.ticket_id)).all()
    second = CliRunner().invoke(app, ["label", "import", str(f)])
    assert second.exit_code == 0 and f"{n} rows: 0 new, {n} unchanged, 0 changed, 0 rejected" in second.output
    with get_engine().connect() as conn:
        assert (
            conn.execute(select(Label.ticket_id, Label.labeled_at).order_by(Label.ticket_id)).all() == stamps
        )

    rows.loc[rows.index[0], "category"] = (
        "group_rental" if rows["category"].iloc[0] != "group_rental" else "other"
    )
    rows.to_csv(f, index=False)
    third = CliRunner().invoke(app, ["label", "import", str(f)])
    assert f"{n} rows: 0 new, {n - 1} unchanged, 1 changed, 0 rejected" in third.output


def test_an_empty_labeled_by_is_refused_with_its_rows_and_a_missing_column_warns(tickets, tmp_path):
    from typer.testing import CliRunner

    from triage.cli import app

    t = tickets["ticket_id"].tolist()
    f = tmp_path / "labels.csv"
    pd.DataFrame({"ticket_id": t[:3], "category": ["other"] * 3, "labeled_by": ["bob", "", "  "]}).to_csv(
        f, index=False
    )
    r = CliRunner().invoke(app, ["label", "import", str(f)])
    assert r.exit_code == 1
    assert "3 rows: 1 new, 0 unchanged, 0 changed, 2 rejected" in r.output
    assert (
        f"{f}, row 3, field 'labeled_by': empty" in r.output and f"{f}, row 4, field 'labeled_by'" in r.output
    )

    g = tmp_path / "from-vendor.csv"
    pd.DataFrame({"ticket_id": t[3:5], "category": ["other"] * 2}).to_csv(g, index=False)
    r = CliRunner().invoke(app, ["label", "import", str(g)])
    assert r.exit_code == 0 and "2 rows: 2 new" in r.output
    assert "no 'labeled_by' column; labels stored as labelled by 'from-vendor.csv'" in r.output
