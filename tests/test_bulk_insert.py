"""store.insert_ignore on SQLite and PostgreSQL. Large batches take the driver's bulk path (COPY
into a temporary table on PostgreSQL, one prepared statement through sqlite3's executemany on
SQLite): what lands must be exactly what the plain INSERT path stores (bind processing, JSON,
Python-side defaults, serial ids, conflicts skipped and counted)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from triage.store import Quarantine, get_engine, insert_ignore
from triage.store import db as store_db


def _rows(start: int, n: int) -> list[dict]:
    return [
        {
            "source_sha256": "f" * 64,
            "source": "夜间导出.csv",
            "row_number": i,
            "ticket_id": f"T{i}",
            "field": "text" if i % 2 else None,
            "reason_code": "empty_text",
            "reason": f"夜间导出.csv, row {i}: text is empty; 引号\"'\\t\\n and \\N stay text",
            "raw": {"诉求内容": "", "nested": [1, 2.5, None, "一"], "i": i},
            "night": dt.date(2026, 11, 20),
            # created_at left out: the Python-side default (utcnow) must fill it
        }
        for i in range(start, start + n)
    ]


def test_large_batches_store_the_same_as_small_ones(db, monkeypatch):
    table = Quarantine.__table__
    keys = ["source_sha256", "row_number"]
    with get_engine().begin() as conn:
        monkeypatch.setattr(store_db, "_COPY_MIN_ROWS", 10**9)  # the plain INSERT path
        assert insert_ignore(conn, table, _rows(0, 300), keys) == 300
        monkeypatch.setattr(store_db, "_COPY_MIN_ROWS", 200)  # the bulk path (COPY on PostgreSQL)
        # 100 already stored, 300 new, and one repeated inside the batch: 300 inserted
        batch = _rows(200, 400) + _rows(450, 1)
        assert insert_ignore(conn, table, batch, keys) == 300
        assert insert_ignore(conn, table, _rows(0, 600), keys) == 0  # a re-run inserts nothing
    with get_engine().connect() as conn:
        stored = conn.execute(select(Quarantine).order_by(Quarantine.row_number)).all()
    assert [q.row_number for q in stored] == list(range(600))
    ids = [q.id for q in stored]
    # PostgreSQL draws a serial id for every row offered, conflicting or not; staging the batch
    # must not draw a second one per row
    assert len(set(ids)) == 600 and max(ids) <= 300 + 401
    small, large = stored[10], stored[450]
    for q, i in ((small, 10), (large, 450)):
        assert q.raw == {"诉求内容": "", "nested": [1, 2.5, None, "一"], "i": i}
        assert q.reason.endswith("引号\"'\\t\\n and \\N stay text") and q.source == "夜间导出.csv"
        assert q.night == dt.date(2026, 11, 20) and q.created_at is not None
    assert small.field is None and large.field is None and stored[451].field == "text"
    assert type(small.created_at) is type(large.created_at)
    assert (small.created_at.tzinfo is None) == (large.created_at.tzinfo is None)


def test_a_stage_refreshes_the_planner_statistics_of_what_it_loaded(db):
    """After a bulk load PostgreSQL must know the table is no longer empty (ANALYZE): with the
    statistics of an empty table the planner chose a nested loop that had not finished after
    minutes at 1M tickets."""
    from sqlalchemy import text

    from triage.pipeline import STAGE_WRITES, record_stage

    assert "quarantine" in STAGE_WRITES["ingest"]

    def load() -> dict:
        with get_engine().begin() as conn:
            insert_ignore(conn, Quarantine.__table__, _rows(0, 500), ["source_sha256", "row_number"])
        return {"rows": 500}

    record_stage(dt.date(2026, 11, 20), "ingest", -1, load)
    if db != "postgresql":
        return  # SQLite plans from its indexes; nothing to refresh
    with get_engine().connect() as conn:
        reltuples = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('quarantine')")
        ).scalar_one()
    assert reltuples == 500  # -1 (never analysed) without the refresh


def test_read_frame_streams_in_chunks_and_types_columns_as_one_frame_would(db, monkeypatch):
    """Chunked reading must give the frame a single read would: same rows in order, and a text
    column that is NULL throughout one chunk is still typed as text."""
    import pandas as pd

    from triage.store import read_frame

    with get_engine().begin() as conn:
        insert_ignore(conn, Quarantine.__table__, _rows(0, 250), ["source_sha256", "row_number"])
    query = select(Quarantine.row_number, Quarantine.field).order_by(Quarantine.row_number)
    with get_engine().connect() as conn:
        whole = read_frame(conn, query)
        monkeypatch.setattr(store_db, "_READ_CHUNK_ROWS", 1)  # chunk 0 holds row 0, whose field is NULL
        chunked = read_frame(conn, query)
        empty = read_frame(conn, query.where(Quarantine.row_number < 0), ["n", "f"])
    assert list(chunked["row_number"]) == list(range(250)) and chunked["field"].isna().sum() == 125
    pd.testing.assert_frame_equal(chunked, whole)
    assert empty.empty and list(empty.columns) == ["n", "f"]
