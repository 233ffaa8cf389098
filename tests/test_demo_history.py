"""The demo's history arrives handled (issue 21, item 2).

`make demo` loads the 41 nights before the sample night. They used to land as open items (every
street queue full of overdue October tickets, tonight's tickets on page 8, the three-rates
scoreboard 0.0 % everywhere). The history now comes with the centre's closed-ticket extract
(签收/办结/结案 times and satisfaction), applied by `triage queue import-closed` as scripts/demo.sh
does: the items are closed, their events are dated when things happened, the three rates have
something to count, and a street's /web/queue opens on tonight's tickets.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests import test_api_support
from tests.conftest import REPO
from tests.test_api_support import WANGJING

live = test_api_support.live

HISTORY = REPO / "data_samples" / "history"
TICKETS = HISTORY / "tickets_2026-10-10_2026-11-19.parquet"
CLOSED = HISTORY / "closed_2026-10-10_2026-11-19.parquet"
NIGHT = dt.date(2026, 11, 20)
runner = CliRunner()


def test_the_shipped_extract_closes_every_history_ticket_plausibly():
    tickets = pd.read_parquet(TICKETS)
    closed = pd.read_parquet(CLOSED)
    assert sorted(closed["ticket_id"]) == sorted(tickets["ticket_id"])
    assert set(closed["status"]) == {"结案"}
    df = closed.merge(tickets[["ticket_id", "received_at"]], on="ticket_id")
    t = {c: pd.to_datetime(df[c]) for c in ("received_at", "acknowledged_at", "resolved_at", "closed_at")}
    assert (t["received_at"] <= t["acknowledged_at"]).all()
    assert (t["acknowledged_at"] <= t["resolved_at"]).all() and (t["resolved_at"] <= t["closed_at"]).all()
    assert (t["closed_at"] < pd.Timestamp(NIGHT)).all()  # closed before the sample night begins
    hours = (t["resolved_at"] - t["received_at"]).dt.total_seconds() / 3600
    assert 24 < hours.median() < 24 * 7  # days, not seconds and not months
    sat = closed["satisfaction"]
    assert set(sat) == {"满意", "基本满意", "不满意", ""}
    rated = sat[sat != ""]
    assert 0.75 < len(rated) / len(sat) < 0.95  # some citizens are not reached on call-back
    assert 0.8 < rated.isin(["满意", "基本满意"]).mean() < 0.97


def _one_street_history(tmp_path, street: str) -> tuple[str, str, int]:
    """The shipped history of one street (by the generator's truth), and its closed-extract rows."""
    truth = pd.read_parquet(REPO / "data_samples" / "truth" / "history_labels.parquet")
    ids = set(truth.loc[truth["true_street_code"] == street, "ticket_id"])
    tickets = pd.read_parquet(TICKETS)
    tickets = tickets[tickets["ticket_id"].isin(ids)]
    closed = pd.read_parquet(CLOSED)
    closed = closed[closed["ticket_id"].isin(ids)]
    t, c = tmp_path / "history.parquet", tmp_path / "closed.parquet"
    tickets.to_parquet(t, index=False)
    closed.to_parquet(c, index=False)
    return str(t), str(c), len(tickets)


def _cli(*args: str) -> str:
    from triage.cli import app

    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def test_history_loaded_as_the_demo_does_is_closed_and_counted(live, tmp_path):
    from triage.hotspots.governance import load_rate_items, three_rates
    from triage.store import QueueEvent, QueueItem, Ticket, get_engine

    hist, closed, n = _one_street_history(tmp_path, WANGJING)
    _cli("ingest", hist, "--date", "2026-11-19")
    _cli("classify")
    _cli("route")
    out = _cli("queue", "import-closed", closed)
    assert f"{n} rows: {n} updated, 0 unchanged, 0 rejected" in out

    with get_engine().connect() as conn:
        statuses = dict(conn.execute(select(QueueItem.status, func.count()).group_by(QueueItem.status)).all())
        first_ack = conn.execute(
            select(func.min(QueueEvent.at), func.max(QueueEvent.at)).where(QueueEvent.action == "acknowledge")
        ).one()
        n_ack = conn.execute(
            select(func.count()).select_from(QueueItem).where(QueueItem.acknowledged_at.is_not(None))
        ).scalar_one()
    assert statuses == {"closed": n}  # nothing of the history is left open
    assert n_ack == n
    # events are dated when the street acted, inside the history, not at the import
    assert first_ack[0] >= dt.datetime(2026, 10, 9, 16, tzinfo=dt.UTC)
    assert first_ack[1] < dt.datetime(2026, 11, 19, 16, tzinfo=dt.UTC)

    # the three rates of November have something real to show for the street (they were 0.0 %)
    items = load_rate_items(dt.date(2026, 11, 1), NIGHT)
    assert len(items) > 50
    rates = three_rates(items, "street").set_index("street")
    mine = rates.loc[WANGJING]
    assert 0.5 < mine["response_raw"] <= 1.0
    assert mine["resolution_raw"] == 1.0
    assert 0.5 < mine["satisfaction_raw"] < 1.0
    # 满意 and 基本满意 both count (basically_satisfied was stored but counted as not satisfied)
    rated = items[(items["street"] == WANGJING) & items["rated"]]
    ok = rated["satisfaction"].isin(["satisfied", "basically_satisfied"]).sum()
    assert (rated["satisfaction"] == "basically_satisfied").any()
    assert mine["satisfaction_raw"] == pytest.approx(ok / len(rated))

    # applying the extract again changes nothing
    assert f"{n} rows: 0 updated, {n} unchanged, 0 rejected" in _cli("queue", "import-closed", closed)

    # tonight's ticket for the street opens its queue page (it was on page 8 behind October)
    night_csv = tmp_path / "night.csv"
    night_csv.write_text(
        "工单编号,受理时间,诉求内容,诉求地址\nNIGHT-1,2026-11-20 09:00,小区门口有人占道摆摊卖菜，影响通行,朝阳区望京街道花家地西里3号楼\n",
        encoding="utf-8",
    )
    _cli("ingest", str(night_csv), "--date", "2026-11-20")
    _cli("classify")
    _cli("route")
    with get_engine().connect() as conn:
        item = conn.execute(select(QueueItem).where(QueueItem.ticket_id == "NIGHT-1")).one()
        history_ids = {
            r.id
            for r in conn.execute(
                select(QueueItem.id)
                .join(Ticket, Ticket.ticket_id == QueueItem.ticket_id)
                .where(Ticket.night < NIGHT, QueueItem.street_code == WANGJING, QueueItem.queue == "street")
            )
        }
    assert item.street_code == WANGJING and item.queue == "street"
    with live.client("wangjing") as c:
        page = c.get("/web/queue").text
        everything = c.get("/web/queue?status=all").text
    assert f'data-id="{item.id}"' in page and "待办共 1 件" in page
    assert not any(f'data-id="{i}"' in page for i in history_ids)
    assert len(history_ids) > 100
    assert f"全部共 {len(history_ids) + 1} 件" in everything  # closed items stay reachable


def test_demo_script_applies_the_extract_after_routing_the_history():
    """scripts/demo.sh is what `make demo` runs: the extract must follow the history's routing."""
    script = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")
    route = script.index('"$BIN/triage" route')
    applied = script.index(f'"$BIN/triage" queue import-closed "$ROOT/data_samples/history/{CLOSED.name}"')
    assert route < applied < script.index('"$BIN/airflow" dags test')
