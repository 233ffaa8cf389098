"""What the Airflow assets mean, in code the DAGs call (dags/ keep only the wiring).

- ``triage://labels``: "enough new human labels to retrain on". Labels arrive from outside Airflow
  (label import on the CLI, analysts' corrections in the API, the centre's review desk), all into
  the ``labels`` table; the nightly DAG's ``new_labels`` task emits the asset when at least
  ``retrain_min_new_labels`` labels arrived since the last emission, and the retrain DAG runs on
  that asset or on its weekly schedule, whichever comes first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from triage.store import Label, SourceWatermark, get_engine, upsert
from triage.store.models import utcnow

LABELS_URI = "triage://labels"
_WATERMARK = "asset:labels"  # source_watermarks row: labels up to here were announced


def new_labels(min_new: int) -> dict[str, Any]:
    """Count labels stored since the last announcement; when there are ``min_new`` or more, move
    the mark past them and return ``announce: True`` (the caller emits the asset)."""
    with get_engine().begin() as conn:
        mark = conn.execute(
            select(SourceWatermark.watermark).where(SourceWatermark.source == _WATERMARK)
        ).scalar_one_or_none()
        since = mark or dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        n, newest = conn.execute(
            select(func.count(), func.max(Label.labeled_at)).where(Label.labeled_at > since)
        ).one()
        if n < min_new:
            return {"new_labels": n, "announce": False}
        upsert(
            conn, SourceWatermark.__table__,
            [{"source": _WATERMARK, "watermark": newest, "updated_at": utcnow()}], ["source"],
            ["watermark", "updated_at"],
        )  # fmt: skip
    return {"new_labels": n, "announce": True}
