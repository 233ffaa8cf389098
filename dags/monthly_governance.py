"""接诉即办 monthly governance: 治理类街乡镇 candidates, 每月一题 themes, the three-rates scoreboard.

Runs at 03:00 Beijing time on the 1st for the month that just ended and writes the monthly edition
of the analysts' report (var/reports/monthly-YYYY-MM.html). Thin wiring only, counts through XCom.
A manual run may set the ``month`` param (YYYY-MM).
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

TZ = "Asia/Shanghai"


def month_of_run() -> str:
    ctx = get_current_context()
    explicit = (ctx["params"] or {}).get("month")
    if explicit:
        return dt.date.fromisoformat(f"{explicit}-01").strftime("%Y-%m")
    # the data interval of the run on the 1st is the month that just ended
    when = ctx.get("data_interval_start") or ctx.get("logical_date") or ctx["dag_run"].run_after
    return pendulum.instance(when).in_timezone(TZ).strftime("%Y-%m")


@dag(
    dag_id="monthly_governance",
    description="接诉即办月度治理: governance lists, monthly themes, three-rates scoreboard, monthly report",
    schedule=CronDataIntervalTimetable("0 3 1 * *", timezone=TZ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5), "owner": "12345-analysts"},
    params={"month": Param(None, type=["null", "string"], description="override the month (YYYY-MM)")},
    tags=["triage", "monthly", "hotspots"],
)
def monthly_governance():
    @task
    def check_database() -> str:
        from triage.config import get_settings
        from triage.store import require_schema

        get_settings().require_production_secrets()
        require_schema()
        return month_of_run()

    @task
    def governance(month: str) -> dict:
        from triage.hotspots.governance import month_bounds
        from triage.report.analysts import scoreboard

        start, end = month_bounds(month)
        b = scoreboard(start, end, month)
        return {"month": month, "candidates": len(b["candidates"]), "themes": len(b["themes"]),
                "streets_scored": len(b["streets"]), "has_handling": b["has_handling"]}  # fmt: skip

    @task
    def report(counts: dict) -> dict:
        from triage.report.analysts import write_monthly_report

        return {**counts, "report": str(write_monthly_report(counts["month"]))}

    report(governance(check_database()))


monthly_governance()
