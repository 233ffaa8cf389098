"""Incremental pull from a SQL source: a real SQLite "operational database" read into the
product database (SQLite and PostgreSQL), advancing a watermark, converging on re-runs."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from triage.ingest import InputFileError, ingest_sql
from triage.store import Quarantine, SourceWatermark, Ticket, get_engine

NIGHT = dt.date(2026, 11, 20)
COLS = ["工单编号", "受理时间", "诉求内容", "诉求地址", "来电号码"]


@pytest.fixture
def source(tmp_path):
    """The hotline's operational table, with Chinese column names and naive Beijing times."""
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    eng = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table(
        "hotline_orders", meta,
        sa.Column("工单编号", sa.String, primary_key=True),
        sa.Column("受理时间", sa.DateTime),
        sa.Column("诉求内容", sa.Text),
        sa.Column("诉求地址", sa.Text),
        sa.Column("来电号码", sa.String),
    )  # fmt: skip
    meta.create_all(eng)

    def add(*rows):
        with eng.begin() as c:
            c.execute(table.insert(), [dict(zip(COLS, r, strict=True)) for r in rows])

    yield url, add
    eng.dispose()


def n_tickets() -> int:
    with get_engine().connect() as c:
        return c.execute(select(func.count()).select_from(Ticket)).scalar_one()


def test_pull_is_incremental_keeps_late_rows_and_converges(db, source):
    url, add = source
    t = dt.datetime(2026, 11, 20, 9, 0)
    add(
        ("S1", t, "望京西园三区楼下有人占道经营，联系电话13812345678", "朝阳区望京街道", "13812345678"),
        ("S2", t + dt.timedelta(minutes=5), "小区物业不作为，垃圾堆积", "海淀区学院路街道", None),
        ("S3", t + dt.timedelta(minutes=9), "", "东城区", None),  # empty text → quarantine
    )
    r1 = ingest_sql(url, "hotline_orders", watermark_column="受理时间", night=NIGHT)
    assert (r1.rows_read, r1.rows_new, r1.rows_quarantined) == (3, 2, 1)
    assert n_tickets() == 2

    # nothing new: the boundary row is read again and counts as unchanged, nothing is written twice
    r2 = ingest_sql(url, "hotline_orders", watermark_column="受理时间", night=NIGHT)
    assert r2.rows_new == 0 and n_tickets() == 2
    assert r2.rows_read == r2.rows_unchanged + r2.rows_quarantined

    # a late-committed row with exactly the watermark's timestamp, and a newer one
    add(
        ("S4", t + dt.timedelta(minutes=9), "井盖丢失，很危险", "西城区德胜街道", None),
        ("S5", t + dt.timedelta(hours=2), "夜间施工噪音扰民", "丰台区", None),
    )
    r3 = ingest_sql(url, "hotline_orders", watermark_column="受理时间", night=NIGHT)
    assert r3.rows_new == 2 and n_tickets() == 4

    with get_engine().connect() as c:
        wm = c.execute(select(SourceWatermark.watermark)).scalar_one()
        text = c.execute(select(Ticket.text).where(Ticket.ticket_id == "S1")).scalar_one()
        reasons = [q.reason_code for q in c.execute(select(Quarantine)).all()]
    assert wm.replace(tzinfo=wm.tzinfo or dt.UTC) == dt.datetime(
        2026, 11, 20, 3, 0, tzinfo=dt.UTC
    )  # 11:00 Beijing
    assert "13812345678" not in text and "138****5678" in text
    assert reasons == ["empty_text"]  # quarantined once, not once per pull


def test_missing_table_and_watermark_column_are_clear_errors(db, source):
    url, _ = source
    with pytest.raises(InputFileError, match="table 'nope' not found"):
        ingest_sql(url, "nope", night=NIGHT)
    with pytest.raises(InputFileError, match="watermark column 'updated_at' not in table; it has 工单编号"):
        ingest_sql(url, "hotline_orders", watermark_column="updated_at", night=NIGHT)
