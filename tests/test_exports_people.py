"""Queue exports are for people: Chinese names for category, SLA tier, status, units and yes/no,
with the codes in their own columns (issue 21.8) — API, web download and CLI, on both databases."""

from __future__ import annotations

import io

import httpx
import pandas as pd
from typer.testing import CliRunner

from tests import test_api_support
from tests.test_api_support import WANGJING, seed_item

live = test_api_support.live


def _check(frame: pd.DataFrame, ticket_id: str) -> None:
    row = frame.set_index("工单编号 ticket_id").loc[ticket_id]
    assert row["类别 category"] == "占道经营" and row["类别代码 category_code"] == "street_vending"
    assert row["时限 sla_tier"] != "general" and row["时限代码 sla_tier_code"] == "general"
    assert row["状态 status"] == "派单" and row["状态代码 status_code"] == "dispatched"
    assert row["主办单位 lead_unit"] != "street_office" and "街道" in row["主办单位 lead_unit"]
    assert row["主办单位代码 lead_unit_code"] == "street_office"
    assert row["协办单位代码 department_codes"] == "urban_management_enforcement"
    assert "urban_management" not in row["协办单位 departments"]
    assert row["超期 overdue"] in ("是", "否") and row["督办 escalated"] == "否"
    # no English code or Python boolean anywhere in the people's columns
    people = [c for c in frame.columns if "code" not in c and c != "工单编号 ticket_id"]
    values = {str(v) for v in row[people].tolist()}
    assert not values & {"True", "False", "street_vending", "dispatched", "general", "street_office"}


def test_api_and_web_exports_speak_chinese_with_codes_alongside(live):
    overdue = seed_item(WANGJING, due_in_hours=-3)
    with live.client("wangjing") as c:
        csv = c.get("/api/v1/queue/export.csv")
        xlsx = c.get("/api/v1/queue/export.xlsx")
    with httpx.Client(base_url=live.url, cookies={"t345_session": live.tokens["wangjing"]}) as c:
        web = c.get("/web/export.csv")  # the clerk's 下载表格 link, signed in by cookie
    assert csv.status_code == xlsx.status_code == web.status_code == 200
    for frame in (
        pd.read_csv(io.BytesIO(csv.content), encoding="utf-8-sig", dtype=str),
        pd.read_excel(io.BytesIO(xlsx.content), engine="openpyxl", dtype=str),
        pd.read_csv(io.BytesIO(web.content), encoding="utf-8-sig", dtype=str),
    ):
        _check(frame, overdue["ticket_id"])
        assert frame.set_index("工单编号 ticket_id").loc[overdue["ticket_id"], "超期 overdue"] == "是"


def test_cli_queue_export_speaks_chinese(db, tmp_path):
    from triage.cli import app

    item = seed_item(WANGJING)
    out = tmp_path / "q.xlsx"
    r = CliRunner().invoke(app, ["queue", "export", "--street", WANGJING, "--out", str(out)])
    assert r.exit_code == 0, r.output
    frame = pd.read_excel(out, engine="openpyxl", dtype=str)
    _check(frame, item["ticket_id"])
    assert frame.set_index("工单编号 ticket_id").loc[item["ticket_id"], "超期 overdue"] == "否"
