"""接诉即办 within minutes: every 10 minutes, the inbox files that arrived since the last run are
ingested, and just their tickets classified and routed with the current champion (the nightly run
later finds them done). Emergency tickets dispatched to a street raise an alert.

Thin wiring only: the task calls ``triage.pipeline.dispatch_stage`` (the CLI's `triage dispatch`).
One run at a time (max_active_runs=1), no catch-up of missed slots (the next run takes everything
that is new). A manual trigger may set ``inbox``. A failed run alerts at once (on_failure_callback);
a run still going after TRIAGE_INTRADAY_DEADLINE_MIN minutes raises a deadline alert.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from triage.config import get_settings
from triage.notify import dag_alerts

TZ = "Asia/Shanghai"


@dag(
    dag_id="intraday_dispatch",
    description="接诉即办日间派单: new inbox files → classify → route, every 10 minutes",
    schedule="*/10 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    # no task retries: the next run, 10 minutes later, takes up whatever this one left
    default_args={"retries": 0, "owner": "12345-ops"},
    params={
        "inbox": Param(None, type=["null", "string"], description="inbox folder (default TRIAGE_INBOX_DIR)")
    },
    **dag_alerts("intraday_dispatch", get_settings().intraday_deadline_min),
    tags=["triage", "intraday"],
)
def intraday_dispatch():
    @task
    def dispatch() -> dict:
        from airflow.sdk import get_current_context

        from triage.pipeline import dispatch_stage
        from triage.store import require_schema

        require_schema()
        counts = dispatch_stage(get_current_context()["params"].get("inbox"))
        for r in counts.pop("reports"):  # per-file details are in the ledger, not XCom
            if r["status"] in ("rejected", "waiting"):
                print(f"{r['status'].upper()}: {r['source']}: {r.get('message')}")
        return counts

    dispatch()


intraday_dispatch()
