"""The intra-day dispatch (`triage dispatch`, DAG intraday_dispatch): new inbox files are ingested,
classified and routed within the run, a file still being written is left for the next run, a
file seen before (even renamed) is skipped, and the nightly run afterwards routes nothing twice.
Street items carry the time they were dispatched (the street's SLA clock)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from triage.tables import write_table

DAGS = Path(__file__).resolve().parent.parent / "dags"
runner = CliRunner()


def today() -> dt.date:
    from triage.ingest.loader import local_today

    return local_today()


def tickets(n: int, seed: int, prefix: str):
    from triage.synth import generate_tickets

    day = today() - dt.timedelta(days=1)  # received yesterday: never "in the future" for validation
    return generate_tickets(n, seed=seed, start=day, end=day, labeled=False, id_prefix=prefix).tickets


def settle(path: Path, seconds_ago: float = 60) -> Path:
    """Make a file look finished: last changed ``seconds_ago`` (the settle rule's input)."""
    t = time.time() - seconds_ago
    os.utime(path, (t, t))
    return path


def counts() -> dict[str, int]:
    from triage.store import Prediction, QueueEvent, QueueItem, Ticket, get_engine

    with get_engine().connect() as c:
        n = lambda q: c.execute(q).scalar_one()  # noqa: E731
        return {
            "tickets": n(select(func.count()).select_from(Ticket)),
            "predictions": n(select(func.count()).select_from(Prediction)),
            "items": n(select(func.count()).select_from(QueueItem).where(QueueItem.kind == "ticket")),
            "route_events": n(
                select(func.count()).select_from(QueueEvent).where(QueueEvent.action == "route")
            ),
        }


def test_dispatch_takes_new_files_once_and_leaves_growing_ones(db, tmp_path):
    from triage.pipeline import dispatch_stage
    from triage.store import QueueItem, get_engine

    inbox = tmp_path / "inbox"
    folder = inbox / today().isoformat()
    a = settle(write_table(tickets(120, 1, "A"), folder / "a.csv"))

    first = dispatch_stage(inbox)
    assert first["ingested_files"] == 1 and first["rows_new"] == 120
    assert first["to_street"] + first["to_centre"] == 120
    assert counts() == {"tickets": 120, "predictions": 120, "items": 120, "route_events": 120}
    with get_engine().connect() as c:
        items = c.execute(select(QueueItem.queue, QueueItem.dispatched_at, QueueItem.created_at)).all()
    assert all(
        (i.dispatched_at == i.created_at) if i.queue == "street" else i.dispatched_at is None for i in items
    )

    # nothing new: nothing happens; the same bytes under another name are recognised by the ledger
    again = dispatch_stage(inbox)
    assert again["rows_new"] == 0 and again["to_street"] + again["to_centre"] == 0
    settle(write_table(tickets(120, 1, "A"), folder / "a-copy.csv"))
    assert a.read_bytes() == (folder / "a-copy.csv").read_bytes()
    copy = dispatch_stage(inbox)
    assert copy["skipped_files"] == 2 and copy["rows_new"] == 0 and counts()["tickets"] == 120

    # a file still being written (changed just now) is left for the next run, then taken whole
    growing = folder / "b.csv"
    write_table(tickets(40, 2, "B"), growing)
    wait = dispatch_stage(inbox)
    assert wait["waiting_files"] == 1 and wait["rows_new"] == 0
    assert [r["source"] for r in wait["reports"] if r["status"] == "waiting"] == [str(growing)]
    write_table(tickets(80, 2, "B"), growing)  # the writer finishes
    settle(growing)
    done = dispatch_stage(inbox)
    assert done["rows_new"] == 80 and done["to_street"] + done["to_centre"] == 80
    assert counts() == {"tickets": 200, "predictions": 200, "items": 200, "route_events": 200}


def test_a_file_removed_before_it_is_read_fails_with_its_name_and_the_run_goes_on(sqlite_db, tmp_path):
    from triage.pipeline import ingest_new_files

    night = today()
    gone = settle(write_table(tickets(10, 3, "G"), tmp_path / "gone.csv"))
    kept = settle(write_table(tickets(10, 4, "K"), tmp_path / "kept.csv"))
    listed = [(night, gone), (night, kept)]
    gone.unlink()  # removed between the listing and the reading
    reports = ingest_new_files(listed, settle_s=10)
    assert reports[0]["status"] == "rejected" and str(gone) in reports[0]["message"]
    assert reports[1]["status"] == "ingested" and reports[1]["rows_new"] == 10


def test_dispatch_cli_json(sqlite_db, tmp_path):
    from triage.cli import app

    inbox = tmp_path / "inbox"
    settle(write_table(tickets(30, 5, "C"), inbox / today().isoformat() / "c.jsonl"))
    r = runner.invoke(app, ["dispatch", "--inbox", str(inbox), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["rows_new"] == 30 and out["to_street"] + out["to_centre"] == 30
    r = runner.invoke(app, ["dispatch", "--inbox", str(inbox)])
    assert r.exit_code == 0 and "0 new tickets" in r.output and "1 already done" in r.output


@pytest.mark.airflow
def test_intraday_dag_dispatches_then_the_night_routes_nothing_twice(airflow_db, sqlite_db, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    from triage.store import IngestFile, QueueItem, get_engine

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.get_dag("intraday_dispatch")
    assert dag.max_active_runs == 1 and not dag.catchup and dag.timetable.expression == "*/10 * * * *"
    assert dag.on_failure_callback

    inbox = tmp_path / "inbox"
    folder = inbox / today().isoformat()
    settle(write_table(tickets(150, 6, "D"), folder / "morning.csv"))
    conf = {"inbox": str(inbox)}
    run = dag.test(run_conf=conf)
    assert run.state == "success"
    assert counts() == {"tickets": 150, "predictions": 150, "items": 150, "route_events": 150}
    with get_engine().connect() as c:
        first_items = dict(c.execute(select(QueueItem.ticket_id, QueueItem.created_at)).all())

    growing = write_table(tickets(60, 7, "E"), folder / "noon.csv")  # being written during this run
    run2 = dag.test(run_conf=conf)
    assert run2.state == "success"
    assert counts()["tickets"] == 150  # nothing new taken; the growing file waits

    # the night (same folder, all files finished by then) routes only what was not routed yet
    settle(growing)
    nightly = bag.get_dag("nightly_triage")
    night = nightly.test(
        logical_date=pendulum.datetime(today().year, today().month, today().day, 1, 30, tz="Asia/Shanghai"),
        run_conf={"inbox": str(inbox), "night": today().isoformat()},
    )
    assert night.state == "success"
    assert counts() == {"tickets": 210, "predictions": 210, "items": 210, "route_events": 210}
    with get_engine().connect() as c:
        after = dict(c.execute(select(QueueItem.ticket_id, QueueItem.created_at)).all())
        files = c.execute(select(IngestFile.source, IngestFile.status)).all()
    assert {t: after[t] for t in first_items} == first_items  # the morning's items untouched
    assert sorted(f.status for f in files) == ["ingested", "ingested"]


@pytest.mark.airflow
def test_both_dags_carry_a_deadline_alert_and_a_failure_callback(airflow_db, monkeypatch):
    """As the scheduler parses them (the tests' dag.test() runs parse with the deadline off)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import SyncCallback

    monkeypatch.setenv("TRIAGE_DAG_DEADLINES", "1")
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    for dag_id, minutes in (("intraday_dispatch", 8), ("nightly_triage", 120)):
        dag = bag.get_dag(dag_id)
        (alert,) = dag.deadline
        assert alert.interval == dt.timedelta(minutes=minutes)
        assert isinstance(alert.callback, SyncCallback) and alert.callback.path == "triage.notify.run_late"
        assert alert.callback.kwargs == {"dag_id": dag_id}
        assert dag.on_failure_callback is not None


def test_migration_0007_fills_dispatched_at_and_goes_down_again(db):
    """Street items written before 0007 get the time of their last dispatch to the street holding
    them (else their creation time); centre items none. Down again drops the column and table."""
    from sqlalchemy import inspect, text

    from triage.store import get_engine, upgrade
    from triage.store.db import downgrade, head_revision

    downgrade(revision="0004")
    created = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
    redispatched = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    common = {"kind": "ticket", "lead_unit": "street_office", "departments": "[]", "sla_tier": "general",
              "priority": 3, "due_at": created, "status": "dispatched", "created_at": created,
              "updated_at": created, "return_count": 0, "escalated": False, "version": 1}  # fmt: skip
    rows = [
        {"queue": "street", "street_code": "110105026"},  # routed there: its creation
        {"queue": "street", "street_code": "110105027"},  # re-dispatched there later
        {"queue": "centre", "street_code": None},
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
        ids = conn.execute(text("SELECT id FROM queue_items ORDER BY id")).scalars().all()
        for action, at, street in (("route", created, None), ("redispatch", redispatched, "110105027")):
            conn.execute(
                text(
                    "INSERT INTO queue_events (item_id, at, actor, action, to_street) VALUES (:i, :at, 'x', :a, :s)"
                ),
                {
                    "i": ids[1],
                    "at": at.replace(tzinfo=None) if db == "sqlite" else at,
                    "a": action,
                    "s": street,
                },
            )
    assert upgrade() == head_revision()
    from triage.store import QueueItem

    with get_engine().connect() as conn:
        got = conn.execute(select(QueueItem.dispatched_at).order_by(QueueItem.id)).scalars().all()
    assert got == [created, redispatched, None]
    downgrade(revision="0004")
    insp = inspect(get_engine())
    assert "notifications" not in insp.get_table_names()
    assert "dispatched_at" not in {c["name"] for c in insp.get_columns("queue_items")}
    assert upgrade() == head_revision()


def test_a_ticket_dispatched_intraday_then_changed_in_the_nights_extract_keeps_its_dispatch(db, tmp_path):
    """The duplicate rule of the night applies: the changed row is quarantined as a conflicting
    duplicate naming where the stored ticket came from; the dispatched item is not touched."""
    from triage.pipeline import ingest_stage, route_stage
    from triage.store import Quarantine, QueueItem, get_engine

    inbox = tmp_path / "inbox"
    folder = inbox / today().isoformat()
    df = tickets(20, 9, "F")
    settle(write_table(df, folder / "morning.csv"))
    from triage.pipeline import dispatch_stage

    assert dispatch_stage(inbox)["rows_new"] == 20
    with get_engine().connect() as c:
        before = c.execute(select(QueueItem.ticket_id, QueueItem.id, QueueItem.version)).all()
    night = df.copy()
    night.loc[night.index[0], "text"] = night.loc[night.index[0], "text"] + "（补充说明）"
    write_table(night, folder / "night-extract.csv")
    ingest = ingest_stage(today(), inbox)
    assert ingest["rows_quarantined"] == 1 and ingest["rows_unchanged"] == 19
    assert route_stage(today())["to_street"] + route_stage(today())["to_centre"] == 0
    with get_engine().connect() as c:
        q = c.execute(select(Quarantine.reason_code, Quarantine.reason)).one()
        after = c.execute(select(QueueItem.ticket_id, QueueItem.id, QueueItem.version)).all()
    assert q.reason_code == "conflicting_duplicate"
    assert "night-extract.csv" in q.reason and "was already ingested from file #1" in q.reason
    assert sorted(after) == sorted(before)


def test_dispatch_names_a_missing_inbox(sqlite_db, tmp_path):
    from triage.cli import app

    r = runner.invoke(app, ["dispatch", "--inbox", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "does not exist" in r.output


def test_redispatch_restarts_the_street_clock(db, tmp_path):
    """退单 then 派单 by the centre to another street: dispatched_at is the new dispatch."""
    from triage.auth import Principal
    from triage.lifecycle import redispatch, return_item
    from triage.pipeline import dispatch_stage
    from triage.store import QueueItem, get_engine

    inbox = tmp_path / "inbox"
    settle(write_table(tickets(20, 10, "R"), inbox / today().isoformat() / "r.csv"))
    dispatch_stage(inbox)
    with get_engine().connect() as c:
        item = c.execute(
            select(QueueItem.id, QueueItem.street_code, QueueItem.dispatched_at).where(
                QueueItem.queue == "street"
            )
        ).first()
    clerk = Principal(token_id=1, name="clerk", role="street", street_code=item.street_code)
    back = return_item(item.id, None, clerk, "不属于本街道辖区")
    assert back["dispatched_at"] == item.dispatched_at  # the last dispatch stays on record
    other = "110105026" if item.street_code != "110105026" else "110105027"
    again = redispatch(
        item.id, None, Principal(token_id=2, name="ops", role="admin", street_code=None), other
    )
    assert again["street_code"] == other and again["dispatched_at"] > item.dispatched_at
