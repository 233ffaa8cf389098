"""Weekly retraining of the ticket classifier from analysts' labels, with a promotion gate.

Thin wiring around ``triage.classify.retrain.retrain``: gather the labels table, train a
challenger (on the shipped training sample plus the labelled tickets by default), score champion
and challenger on the same held-out slice of labelled tickets (analysts' real labels), promote only
with evidence: at least 100 held-out tickets (``min_holdout``), a 95 % paired bootstrap interval of
the macro-F1 difference that rules out a loss above 0.005, and no class with ≥ 5 held-out tickets
losing more than 0.05 recall; too little evidence is "not enough evidence: not promoted". The
decision, the evidence and both scores are
written into the challenger's model card. Runs when the nightly DAG announces enough new labels
(the ``triage://labels`` asset) or Sundays 03:00 Beijing time, whichever comes first; trigger it
by hand any time (params below).
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from triage.assets import LABELS_URI

TZ = "Asia/Shanghai"


@dag(
    dag_id="retrain_classifier",
    description="重新训练分类器: labels → challenger → gate → promote",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 0", timezone=TZ), assets=Asset(LABELS_URI)
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": dt.timedelta(minutes=5), "owner": "12345-models"},
    params={
        "base": Param(
            "data_samples/training/champion_train.parquet",
            type=["null", "string"],
            description="base training file added to the labels (relative to the checkout); null for labels only",
        ),
        "min_labels": Param(
            50, type="integer", minimum=2, description="skip retraining below this many labels"
        ),
        "min_holdout": Param(
            100,
            type="integer",
            minimum=1,
            description="held-out labelled tickets needed before a challenger may be promoted",
        ),
        "seed": Param(0, type="integer"),
        "promote": Param(True, type="boolean", description="promote the challenger if it passes the gate"),
        "estimator_params": Param(
            {}, type="object", description='TicketClassifier overrides, e.g. {"C": 1.0}'
        ),
    },
    tags=["triage", "model"],
)
def retrain_classifier():
    @task
    def retrain() -> dict:
        from pathlib import Path

        from airflow.sdk import get_current_context

        from triage.classify.retrain import retrain as run
        from triage.config import get_settings
        from triage.store import require_schema

        get_settings().require_production_secrets()
        require_schema()
        p = get_current_context()["params"]
        base = p.get("base")
        if base and not Path(base).is_absolute():
            base = get_settings().home / base
        result = run(
            base=base,
            seed=int(p["seed"]),
            min_labels=int(p["min_labels"]),
            promote=bool(p["promote"]),
            min_holdout=int(p.get("min_holdout", 100)),
            params=dict(p.get("estimator_params") or {}),
        )
        print(f"retrain: {result['decision']} {result.get('reasons', '')}")
        return {k: result.get(k) for k in ("decision", "version", "champion", "reasons")}

    retrain()


retrain_classifier()
