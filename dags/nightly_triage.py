"""接诉即办 nightly triage: ingest → classify (sharded) → route (sharded) → hotspots → proactive → report,
and new_labels, which emits the ``triage://labels`` asset the retrain DAG listens to when enough
new labels (imports, analysts' corrections, the review desk) have arrived.

Thin wiring only: every task calls a function of ``triage.pipeline``; nothing heavy is imported
when the scheduler parses this file. Tasks pass small dicts of counts through XCom, never data.

The night processed is the run's logical date in Beijing time. Scheduled runs cover the day that
just ended (the run for night D starts at 01:30 on D+1). A manual run may set the ``night`` param
(YYYY-MM-DD) and an ``inbox`` folder; otherwise TRIAGE_INBOX_DIR/<night>/ is read.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import (
    Asset,
    CronDataIntervalTimetable,
    Param,
    dag,
    get_current_context,
    task,
)

from triage.assets import LABELS_URI
from triage.config import get_settings
from triage.notify import dag_alerts

TZ = "Asia/Shanghai"
LABELS = Asset(LABELS_URI)  # retrain_classifier runs on it (or weekly)
CLASSIFY_SHARDS = get_settings().classify_shards
# a failed task is retried after this delay (a worker lost mid-task, a database restart)
RETRY_DELAY = dt.timedelta(seconds=get_settings().retry_delay_s)


def night_of_run() -> str:
    """The Beijing date this run processes, as YYYY-MM-DD."""
    ctx = get_current_context()
    explicit = (ctx["params"] or {}).get("night")
    if explicit:
        return dt.date.fromisoformat(explicit).isoformat()
    when = ctx.get("logical_date") or ctx.get("data_interval_start") or ctx["dag_run"].run_after
    return pendulum.instance(when).in_timezone(TZ).date().isoformat()


@dag(
    dag_id="nightly_triage",
    description="接诉即办夜间分拣: ingest, classify, route, hotspots, proactive tasks, report",
    schedule=CronDataIntervalTimetable("30 1 * * *", timezone=TZ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": RETRY_DELAY, "owner": "12345-ops"},
    params={
        "night": Param(None, type=["null", "string"], description="override the night (YYYY-MM-DD)"),
        "inbox": Param(None, type=["null", "string"], description="inbox folder (default TRIAGE_INBOX_DIR)"),
    },
    **dag_alerts("nightly_triage", get_settings().nightly_deadline_min),
    tags=["triage", "nightly"],
)
def nightly_triage():
    @task
    def check_database() -> str:
        """Fail fast with a clear message if the database is unreachable or not migrated."""
        from triage.store import require_schema

        get_settings().require_production_secrets()
        require_schema()
        return night_of_run()

    @task
    def ingest(night: str) -> dict:
        from triage.pipeline import ingest_stage

        inbox = get_current_context()["params"].get("inbox")
        counts = ingest_stage(dt.date.fromisoformat(night), inbox)
        counts.pop("reports", None)  # per-file details are in the ledger table, not XCom
        if counts["rejected_files"]:
            print(f"WARNING: {counts['rejected_files']} file(s) rejected; see ingest_files / the report")
        if counts.get("failed_files"):
            print(f"WARNING: {counts['failed_files']} file(s) changed while read: run the night again")
        return counts

    @task
    def shards(_: dict) -> list[int]:
        return list(range(CLASSIFY_SHARDS))

    @task
    def classify(shard: int, night: str) -> dict:
        from triage.pipeline import classify_stage

        return classify_stage(dt.date.fromisoformat(night), shard, CLASSIFY_SHARDS)

    @task
    def route(shard: int, night: str, classified: list) -> dict:
        from triage.pipeline import route_stage

        return route_stage(dt.date.fromisoformat(night), shard, CLASSIFY_SHARDS)

    @task
    def hotspots(_: list, night: str) -> dict:
        from triage.pipeline import hotspots_stage

        return hotspots_stage(dt.date.fromisoformat(night))

    @task
    def proactive(_: dict, night: str) -> dict:
        from triage.pipeline import proactive_stage

        return proactive_stage(dt.date.fromisoformat(night))

    @task
    def report(_: dict, night: str) -> dict:
        from triage.pipeline import report_stage

        return report_stage(dt.date.fromisoformat(night))

    @task(outlets=[LABELS])
    def new_labels(_: str) -> dict:
        """Emit the labels asset only when enough new labels arrived (a skipped task emits nothing)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from triage.assets import new_labels as count

        result = count(get_settings().retrain_min_new_labels)
        if not result["announce"]:
            raise AirflowSkipException(f"{result['new_labels']} new label(s): not enough to retrain on")
        return result

    night = check_database()
    new_labels(night)
    ingested = ingest(night)
    shard_ids = shards(ingested)
    classified = classify.partial(night=night).expand(shard=shard_ids)
    # routing is sharded the same way, so both cores (or all workers) share it too
    routed = route.partial(night=night, classified=classified).expand(shard=shard_ids)
    found = hotspots(routed, night)
    tasks = proactive(found, night)
    report(tasks, night)


nightly_triage()
