"""The DAGs load the way the scheduler loads them, and the nightly DAG runs end to end through
Airflow (`dag.test()`) on a temporary SQLite database, producing queue items for every ticket."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import func, select

from triage.tables import write_table

pytestmark = pytest.mark.airflow
DAGS = Path(__file__).resolve().parent.parent / "dags"
NIGHT = dt.date(2026, 11, 20)


def load_dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dag_folder_loads_without_import_errors(airflow_db):
    bag = load_dagbag()
    assert bag.import_errors == {}
    assert "nightly_triage" in bag.dag_ids
    dag = bag.get_dag("nightly_triage")
    assert {t.task_id for t in dag.tasks} == {
        "check_database",
        "ingest",
        "shards",
        "classify",
        "route",
        "hotspots",
        "proactive",
        "report",
        "new_labels",
    }
    # the labels asset is emitted by the nightly DAG and retraining runs on it (or weekly)
    assert [a.uri.rstrip("/") for a in dag.get_task("new_labels").outlets] == ["triage://labels"]
    assert all(not t.outlets for t in dag.tasks if t.task_id != "new_labels")  # no asset nobody reads
    retrain = bag.get_dag("retrain_classifier")
    assert retrain.timetable.asset_condition.uri.rstrip("/") == "triage://labels"
    assert retrain.timetable.timetable.expression == "0 3 * * 0"
    assert dag.timetable.expression == "30 1 * * *"
    assert str(dag.timetable.timezone) == "Asia/Shanghai"
    assert all(t.retries >= 1 for t in dag.tasks)
    assert dag.get_task("hotspots").upstream_task_ids == {"route", "check_database"}
    assert dag.get_task("report").upstream_task_ids == {"proactive", "check_database"}
    monthly = bag.get_dag("monthly_governance")
    assert {t.task_id for t in monthly.tasks} == {"check_database", "governance", "report"}
    assert monthly.timetable.expression == "0 3 1 * *"


def test_dag_files_import_nothing_heavy_at_parse_time():
    import subprocess
    import sys

    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]); "
        "heavy = [m for m in ('sklearn', 'pandas', 'jieba', 'triage.pipeline') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    for f in DAGS.glob("*.py"):
        out = subprocess.run([sys.executable, "-c", code, str(f)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "", f"{f.name} imports {out.stdout.strip()} at parse time"


def test_nightly_dag_runs_end_to_end(airflow_db, sqlite_db, tmp_path):
    from triage.store import IngestFile, PipelineRun, Prediction, Quarantine, QueueItem, Ticket, get_engine
    from triage.synth import generate_tickets

    df = generate_tickets(240, seed=3, start=NIGHT, end=NIGHT, labeled=False).tickets
    inbox = tmp_path / "inbox" / NIGHT.isoformat()
    write_table(df.iloc[:150], inbox / "a.csv")
    bad = df.iloc[150:].copy()
    bad.loc[bad.index[0], "text"] = ""  # one row the quarantine must catch
    write_table(bad, inbox / "b.parquet")

    dag = load_dagbag().get_dag("nightly_triage")
    run = dag.test(
        logical_date=pendulum.datetime(2026, 11, 20, 1, 30, tz="Asia/Shanghai"),
        run_conf={"inbox": str(tmp_path / "inbox")},
    )
    assert run.state == "success"

    with get_engine().connect() as c:
        n = lambda q: c.execute(q).scalar_one()  # noqa: E731
        assert n(select(func.count()).select_from(IngestFile).where(IngestFile.status == "ingested")) == 2
        assert n(select(func.count()).select_from(Ticket)) == 239
        assert n(select(func.count()).select_from(Quarantine)) == 1
        assert n(select(func.count()).select_from(Prediction)) == 239
        items = c.execute(
            select(QueueItem.queue, QueueItem.due_at, QueueItem.street_code).where(QueueItem.kind == "ticket")
        ).all()
        assert len(items) == 239
        assert all(i.due_at is not None for i in items)
        assert all((i.queue == "street") == (i.street_code is not None) for i in items)
        assert sum(i.queue == "street" for i in items) > 150  # most tickets name a place
        stages = {r.stage for r in c.execute(select(PipelineRun.stage)).all()}
        assert stages == {"ingest", "classify", "route", "hotspots", "proactive", "report"}
        n_proactive_first = n(
            select(func.count()).select_from(QueueItem).where(QueueItem.kind == "proactive")
        )
    report = sqlite_db / "var" / "reports" / "nightly-2026-11-20.html"
    assert report.exists() and "接诉即办夜间分拣报告" in report.read_text(encoding="utf-8")

    # a second run of the same night changes nothing
    run2 = dag.test(
        logical_date=pendulum.datetime(2026, 11, 20, 1, 30, tz="Asia/Shanghai"),
        run_conf={"inbox": str(tmp_path / "inbox")},
    )
    assert run2.state == "success"
    with get_engine().connect() as c:
        assert c.execute(select(func.count()).select_from(Ticket)).scalar_one() == 239
        assert (
            c.execute(
                select(func.count()).select_from(QueueItem).where(QueueItem.kind == "ticket")
            ).scalar_one()
            == 239
        )
        # proactive tasks of a re-run night are updated, not duplicated
        n_proactive = c.execute(
            select(func.count()).select_from(QueueItem).where(QueueItem.kind == "proactive")
        ).scalar_one()
        assert n_proactive == n_proactive_first
