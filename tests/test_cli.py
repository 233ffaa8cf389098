"""The `triage` command end to end on the shipped sample night, the schema guard, and migrations
that go down and up again on both databases."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import inspect
from typer.testing import CliRunner

from triage.cli import app, console
from triage.store import get_engine, upgrade
from triage.store.db import current_revision, downgrade, head_revision

REPO = Path(__file__).resolve().parent.parent
SAMPLE_INBOX = REPO / "data_samples" / "inbox"
runner = CliRunner()


def test_an_unmigrated_database_is_refused_with_the_fix(env):
    r = runner.invoke(app, ["status", "--date", "2026-11-20"])
    assert r.exit_code == 1
    assert "schema revision none" in r.output and "run `triage db upgrade`" in r.output


def test_db_upgrade_command_then_status(env):
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 0, r.output
    assert f"at revision {head_revision()}" in r.output
    r = runner.invoke(app, ["status", "--date", "2026-11-20", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["tickets"] == 0


def test_migrations_go_down_to_nothing_and_up_again(db):
    assert current_revision() == head_revision()
    assert "tickets" in inspect(get_engine()).get_table_names()
    downgrade(revision="base")
    assert current_revision() is None
    assert not {"tickets", "queue_items", "quarantine"} & set(inspect(get_engine()).get_table_names())
    assert upgrade() == head_revision()


def test_migration_0004_fills_located_street_for_existing_items(db):
    """Queue items written before 0004 get their located street: the street they are queued to,
    else the street of their community (a centre item that was located but not dispatched)."""
    from sqlalchemy import text

    downgrade(revision="0003")
    now = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    common = {"kind": "ticket", "lead_unit": "street_office", "departments": "[]", "sla_tier": "general",
              "priority": 3, "due_at": now, "status": "dispatched", "created_at": now, "updated_at": now,
              "return_count": 0, "escalated": False, "version": 1}  # fmt: skip
    rows = [
        {"queue": "street", "street_code": "110105026", "community_code": None},
        {"queue": "centre", "street_code": None, "community_code": "110101001001"},
        {"queue": "centre", "street_code": None, "community_code": None},
    ]
    with get_engine().begin() as conn:
        for r in rows:
            cols = {**common, **r}
            conn.execute(
                text(
                    f"INSERT INTO queue_items ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
                ),
                cols,
            )
    assert upgrade() == head_revision()
    with get_engine().connect() as conn:
        got = conn.execute(text("SELECT located_street_code FROM queue_items ORDER BY id")).scalars().all()
    assert got == ["110105026", "110101001", None]


def test_run_nightly_on_the_sample_night_accounts_for_every_row_and_is_idempotent(sqlite_db, monkeypatch):
    r = runner.invoke(app, ["run-nightly", "--date", "2026-11-20", "--inbox", str(SAMPLE_INBOX)])
    assert r.exit_code == 0, r.output
    for stage in ("ingest", "classify", "route", "report"):
        assert f"✓ {stage}" in r.output
    st = json.loads(runner.invoke(app, ["status", "--date", "2026-11-20", "--json"]).output)
    assert st["rows_read"] == st["tickets"] + st["rows_quarantined"] == 1132
    assert st["classified"] == st["tickets"] == 1128
    assert st["unaccounted"] == 0 and st["without_deadline"] == 0
    # the champion's threshold is chosen on real messages (≥ 95 % right when auto-dispatched): on the
    # generated night builtin-v6 sends 1,055 of 1,128 straight to streets (v5: 968)
    assert st["to_street"] + st["to_centre"] == 1128 and st["to_street"] > 900
    assert Path(st["report"]).exists()

    again = runner.invoke(app, ["run-nightly", "--date", "2026-11-20", "--inbox", str(SAMPLE_INBOX)])
    assert again.exit_code == 0, again.output
    st2 = json.loads(runner.invoke(app, ["status", "--date", "2026-11-20", "--json"]).output)
    keys = ("tickets", "rows_quarantined", "classified", "to_street", "to_centre")
    assert [st2[k] for k in keys] == [st[k] for k in keys]
    assert st2["files"] == st["files"]  # the files were recognised and skipped, not loaded again

    # a citizen's "[/]" is text, not a Rich tag: the street's queue still prints (it crashed before)
    from sqlalchemy import select, update

    from triage.store import QueueItem, Ticket

    with get_engine().begin() as conn:
        tid, street = conn.execute(
            select(QueueItem.ticket_id, QueueItem.street_code).where(QueueItem.queue == "street").limit(1)
        ).one()
        conn.execute(update(Ticket).where(Ticket.ticket_id == tid).values(text="[/] 楼道[bold]堆物[link=x]"))
    monkeypatch.setattr(console, "width", 300)  # one line per row, whatever the terminal
    shown = runner.invoke(app, ["queue", "show", "--street", street, "--limit", "2000"])
    assert shown.exit_code == 0, shown.output
    assert "[/] 楼道[bold]堆物" in shown.output


def test_hotspots_events_masks_numbers_and_prints_hostile_text_literally(tmp_path):
    f = tmp_path / "msgs.csv"
    f.write_text(
        "留言编号,留言主题,留言详情,留言时间\n"
        + "".join(
            f"{i},南湖西里楼道堆物 [/]电话13812345678,南湖西里楼道堆物 身份证110105199001011234,2026-11-0{i} 10:00\n"
            for i in (1, 2, 3)
        ),
        encoding="utf-8",
    )
    args = ["hotspots", "events", "--input", str(f), "--id-col", "留言编号", "--text-col", "留言详情",
            "--time-col", "留言时间"]  # fmt: skip
    for extra in ([], ["--json"], ["--title-col", "留言主题"]):
        r = runner.invoke(app, args + extra, env={"COLUMNS": "300"})
        assert r.exit_code == 0, r.output
        assert "13812345678" not in r.output and "110105199001011234" not in r.output
        assert "3 件" in r.output or '"size": 3' in r.output
    assert "南湖西里楼道堆物 [/]电话138****5678" in r.output  # the title, masked and shown as written


def test_an_error_naming_a_hostile_file_name_is_printed_literally(tmp_path):
    r = runner.invoke(app, ["hotspots", "events", "--input", str(tmp_path / "[/]x.csv"), "--id-col", "a",
                            "--text-col", "b", "--time-col", "c"])  # fmt: skip
    assert r.exit_code == 1 and "[/]x.csv: no such file" in r.output


def test_quarantine_list_shows_a_nights_rows_by_reason_masked(db, tmp_path):
    """`triage quarantine list --date D [--reason R] [--json]`: file, row, field, reason, with the
    citizen's numbers masked (the command did not exist)."""
    f = tmp_path / "night.csv"
    f.write_text(
        "工单编号,受理时间,诉求内容,诉求地址,来电号码\n"
        "A1,2026-11-20 09:00,楼道堆物,望京西园三区,13912345678\n"
        "A2,2026-11-20 09:05,,望京西园三区,13912345678\n"
        "A3,not-a-time,电话13800001111请回电,望京西园三区,13800001111\n",
        encoding="utf-8",
    )
    assert runner.invoke(app, ["ingest", str(f), "--date", "2026-11-20"]).exit_code == 0
    r = runner.invoke(app, ["quarantine", "list", "--date", "2026-11-20"])
    assert r.exit_code == 0, r.output
    assert "2 quarantined row(s) for night 2026-11-20" in r.output
    assert "row 3, field 'text': [empty_text] text is empty" in r.output and "[bad_timestamp]" in r.output
    assert r.output.count("row 3") == 1  # the place is said once, not again inside the reason
    assert "13800001111" not in r.output and "13912345678" not in r.output
    r = runner.invoke(
        app, ["quarantine", "list", "--date", "2026-11-20", "--reason", "bad_timestamp", "--json"]
    )
    assert r.exit_code == 0, r.output
    (row,) = [json.loads(line) for line in r.output.splitlines()]
    assert (row["row"], row["field"], row["reason_code"], row["ticket_id"]) == (
        4,
        "received_at",
        "bad_timestamp",
        "A3",
    )
    assert row["source"].endswith("night.csv") and "13800001111" not in r.output
    assert "138****1111" in json.dumps(row["raw"], ensure_ascii=False)
    r = runner.invoke(app, ["quarantine", "list", "--date", "2026-11-19"])
    assert r.exit_code == 0 and "no quarantined rows for night 2026-11-19" in r.output


def test_migration_0009_lets_postgresql_store_basically_satisfied(db):
    """基本满意 is stored as basically_satisfied (19 characters); the column held 16, so PostgreSQL
    refused the call-back and the closed-ticket import. Down and up again on both databases."""
    from tests.test_api_support import WANGJING, seed_item
    from triage import lifecycle
    from triage.auth import Principal

    downgrade(revision="0004")
    assert upgrade() == head_revision()
    it = seed_item(WANGJING)
    from triage.store import QueueItem

    admin = Principal(token_id=0, name="centre", role="admin", street_code=None)
    with get_engine().begin() as conn:
        conn.execute(QueueItem.__table__.update().values(status="fixed"))
    r = lifecycle.callback(it["id"], None, admin, "basically_satisfied")
    assert r["satisfaction"] == "basically_satisfied"
