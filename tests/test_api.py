"""Street-office and analyst endpoints against a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import pytest

from tests import test_api_support
from tests.test_api_support import JIUXIANQIAO, WANGJING, WANSHOULU, seed_item

live = test_api_support.live  # the real-server fixture (module-scoped, SQLite and PostgreSQL)


def test_no_token_bad_token_and_revoked_token_are_401(live):
    from triage.auth import create_token, revoke_token

    with live.client() as c:
        assert c.get("/api/v1/queue").status_code == 401
        assert c.get("/api/v1/queue", headers={"Authorization": "Bearer t345_nope"}).status_code == 401
        assert c.get("/api/v1/items/1").status_code == 401
        assert c.post("/api/v1/items/1/acknowledge", json={"version": 1}).status_code == 401
        secret, rec = create_token("temp", "street", WANGJING)
        assert (
            c.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()["street_code"]
            == WANGJING
        )
        assert revoke_token(str(rec["id"])) == 1
        r = c.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_street_sees_only_its_own_queue_sorted_by_deadline_with_paging_and_filters(live):
    mine = [seed_item(WANGJING, due_in_hours=h) for h in (50, -5, 10)]
    other = seed_item(WANSHOULU, due_in_hours=-100)
    with live.client("wangjing") as c:
        body = c.get("/api/v1/queue", params={"page_size": 500}).json()
        ids = [it["id"] for it in body["items"]]
        assert other["id"] not in ids and {m["id"] for m in mine} <= set(ids)
        assert all(it["street_code"] == WANGJING for it in body["items"])
        dues = [it["due_at"] for it in body["items"]]
        assert dues == sorted(dues)
        assert body["total"] == len(ids)
        # paging: page 2 of size 1 is the second item
        p2 = c.get("/api/v1/queue", params={"page": 2, "page_size": 1}).json()
        assert p2["items"][0]["id"] == ids[1] and p2["total"] == body["total"]
        overdue = c.get("/api/v1/queue", params={"overdue": "true", "page_size": 500}).json()["items"]
        assert mine[1]["id"] in [it["id"] for it in overdue] and all(it["overdue"] for it in overdue)
        assert mine[0]["id"] not in [it["id"] for it in overdue]
        # a street token cannot widen its view with ?street=
        forced = c.get("/api/v1/queue", params={"street": WANSHOULU, "page_size": 500}).json()["items"]
        assert other["id"] not in [it["id"] for it in forced]
        by_cat = c.get("/api/v1/queue", params={"category": "no_such_category"}).json()
        assert by_cat["total"] == 0
        assert c.get("/api/v1/queue", params={"status": "bogus"}).status_code == 422
        assert c.get("/api/v1/queue", params={"page_size": 100000}).status_code == 422


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("GET", "/api/v1/items/{id}", None),
        ("POST", "/api/v1/items/{id}/acknowledge", {"version": 1}),
        ("POST", "/api/v1/items/{id}/updates", {"version": 1, "note": "处理中处理中"}),
        ("POST", "/api/v1/items/{id}/resolve", {"version": 1, "note": "已处理完毕"}),
        ("POST", "/api/v1/items/{id}/return", {"version": 1, "reason": "不属于本街道"}),
        ("GET", "/open311/v2/requests/{tid}.json", None),
        ("GET", "/open311/v2/tokens/{tid}.json", None),
    ],
)
def test_another_streets_item_is_404_everywhere_and_unchanged(live, method, path, body):
    it = seed_item(WANGJING)
    with live.client("wanshoulu") as c:
        r = c.request(method, path.format(id=it["id"], tid=it["ticket_id"]), json=body)
        assert r.status_code == 404, r.text
        lst = c.get("/open311/v2/requests.json", params={"service_request_id": it["ticket_id"]}).json()
        assert lst == []
        csv = c.get("/api/v1/queue/export.csv").text
        assert it["ticket_id"] not in csv
    with live.client("wangjing") as c:
        got = c.get(f"/api/v1/items/{it['id']}").json()
        assert got["version"] == 1 and got["status"] == "dispatched"


def test_unknown_item_is_404_and_huge_id_is_422(live):
    with live.client("admin") as c:
        assert c.get("/api/v1/items/999999").status_code == 404
        assert c.get("/api/v1/items/99999999999999999999").status_code == 422


def test_two_clerks_same_version_one_wins_the_other_gets_409(live):
    it = seed_item(WANGJING)
    with live.client("wangjing") as a, live.client("wangjing") as b:
        r1 = a.post(f"/api/v1/items/{it['id']}/acknowledge", json={"version": 1, "note": "甲签收"})
        r2 = b.post(f"/api/v1/items/{it['id']}/acknowledge", json={"version": 1, "note": "乙签收"})
        assert r1.status_code == 200 and r1.json()["version"] == 2
        assert r2.status_code == 409 and "version" in r2.json()["detail"]
        # an update with the stale version loses too; with the fresh one it works
        assert (
            b.post(f"/api/v1/items/{it['id']}/updates", json={"version": 1, "note": "乙处理"}).status_code
            == 409
        )
        assert (
            b.post(f"/api/v1/items/{it['id']}/updates", json={"version": 2, "note": "乙处理"}).status_code
            == 200
        )


def test_wrong_status_transition_is_409(live):
    it = seed_item(WANGJING)
    with live.client("wangjing") as c:
        r = c.post(f"/api/v1/items/{it['id']}/resolve", json={"version": 1, "note": "还没签收就办结"})
        assert r.status_code == 409


def test_validation_422_and_oversized_body_413(live):
    it = seed_item(WANGJING)
    with live.client("wangjing") as c:
        assert c.post(f"/api/v1/items/{it['id']}/return", json={"version": 1}).status_code == 422
        assert (
            c.post(f"/api/v1/items/{it['id']}/return", json={"version": 1, "reason": " "}).status_code == 422
        )
        assert c.post(f"/api/v1/items/{it['id']}/acknowledge", json={"version": 0}).status_code == 422
        assert c.post(f"/api/v1/items/{it['id']}/acknowledge", content=b"not json").status_code == 422
        big = {"version": 1, "note": "长" * 200_000}
        assert c.post(f"/api/v1/items/{it['id']}/acknowledge", json=big).status_code == 413
        assert c.get(f"/api/v1/items/{it['id']}").json()["version"] == 1


INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE queue_items; --",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '=HYPERLINK("http://evil")',
]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_are_data_not_code(live, evil):
    it = seed_item(WANGJING, text=evil)
    with live.client("wangjing") as c:
        assert c.get("/api/v1/queue", params={"category": evil}).json()["total"] == 0
        assert c.get("/open311/v2/requests.json", params={"service_request_id": evil}).json() == []
        r = c.post(f"/api/v1/items/{it['id']}/acknowledge", json={"version": 1, "note": evil})
        assert r.status_code == 200
        ev = c.get(f"/api/v1/items/{it['id']}").json()["events"]
        assert ev[-1]["note"] == evil  # stored verbatim, as data
        csv = c.get("/api/v1/queue/export.csv").text
        if evil.startswith("="):
            assert "'=HYPERLINK" in csv  # defused for spreadsheets
        assert c.get("/api/v1/queue", params={"page_size": 1}).status_code == 200  # table still there


def test_phone_and_id_numbers_are_masked_at_the_boundary(live):
    raw = "我电话13812345678，身份证110105199001011234，楼下摆摊"
    it = seed_item(WANGJING, text=raw, masked=False)  # simulate an unmasked row slipping into storage
    with live.client("wangjing") as c:
        for body in (
            c.get(f"/api/v1/items/{it['id']}").text,
            c.get("/api/v1/queue", params={"page_size": 500}).text,
            c.get(f"/open311/v2/requests/{it['ticket_id']}.json").text,
            c.get("/api/v1/queue/export.csv").text,
        ):
            assert "13812345678" not in body and "110105199001011234" not in body
            assert "138****5678" in body


def test_exports_csv_and_xlsx_contain_exactly_the_own_queue(live):
    import pandas as pd

    mine, other = seed_item(JIUXIANQIAO), seed_item(WANSHOULU)
    with live.client("jiuxianqiao") as c:
        r = c.get("/api/v1/queue/export.csv")
        assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
        df = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig")
        x = c.get("/api/v1/queue/export.xlsx")
        assert x.status_code == 200 and x.content[:2] == b"PK"
        dx = pd.read_excel(io.BytesIO(x.content), engine="openpyxl")
        total = c.get("/api/v1/queue").json()["total"]
    for frame in (df, dx):
        ids = set(frame["工单编号 ticket_id"])
        assert mine["ticket_id"] in ids and other["ticket_id"] not in ids and len(frame) == total


def _seed_task(street: str, title: str) -> int:
    """A proactive task (no ticket, its own title), written like the proactive stage does."""
    import datetime as dt

    from triage.store import QueueItem, get_engine

    now = dt.datetime.now(dt.UTC)
    with get_engine().begin() as conn:
        return conn.execute(
            QueueItem.__table__.insert().returning(QueueItem.id),
            {"kind": "proactive", "ticket_id": None, "queue": "street", "street_code": street,
             "district_code": street[:6], "category": "street_vending", "lead_unit": "街道办事处",
             "departments": [], "sla_tier": "general", "priority": 3, "due_at": now + dt.timedelta(days=7),
             "status": "dispatched", "route_method": "proactive", "return_count": 0, "escalated": False,
             "version": 1, "created_at": now, "updated_at": now, "task_key": f"surge:{street}:street_vending",
             "title": title, "evidence": {"type": "surge", "ticket_ids": []}},
        ).scalar_one()  # fmt: skip


def test_items_carry_one_title_the_tickets_masked_and_exported(live):
    import pandas as pd

    titled = seed_item(WANSHOULU, title="万寿路门口占道摆摊")
    # an old row stored before masking: the title must be masked on the way out
    raw = seed_item(WANSHOULU, title="摊主电话13812345678天天摆", text="楼下摆摊", masked=False)
    task_title = "[未诉先办·激增] 万寿路街道 占道经营：当日 9 件"
    task = _seed_task(WANSHOULU, task_title)
    with live.client("wanshoulu") as c:
        one = c.get(f"/api/v1/items/{titled['id']}").json()
        assert one["title"] == "万寿路门口占道摆摊" and "title_1" not in one
        assert c.get(f"/api/v1/items/{raw['id']}").json()["title"] == "摊主电话138****5678天天摆"
        assert c.get(f"/api/v1/items/{task}").json()["title"] == task_title
        page = c.get("/api/v1/queue", params={"page_size": 500})
        items = {it["id"]: it for it in page.json()["items"]}
        assert all("title_1" not in it for it in items.values())
        assert items[titled["id"]]["title"] == "万寿路门口占道摆摊"
        assert items[raw["id"]]["title"] == "摊主电话138****5678天天摆"
        assert items[task]["title"] == task_title
        csv = c.get("/api/v1/queue/export.csv")
        xlsx = c.get("/api/v1/queue/export.xlsx")
        web_item = c.get(f"/web/items/{raw['id']}").text
        web_queue = c.get("/web/queue").text
        o311 = c.get(f"/open311/v2/requests/{raw['ticket_id']}.json")
        listed = c.get("/open311/v2/requests.json", params={"service_request_id": raw["ticket_id"]})
    for body in (page.text, csv.text, web_item, o311.text, listed.text):
        assert "13812345678" not in body and "title_1" not in body
    assert "摊主电话138****5678天天摆" in web_item and task_title in web_queue
    assert o311.status_code == 200 and o311.json()[0]["service_request_id"] == raw["ticket_id"]
    assert [r["service_request_id"] for r in listed.json()] == [raw["ticket_id"]]
    for frame in (
        pd.read_csv(io.BytesIO(csv.content), encoding="utf-8-sig"),
        pd.read_excel(io.BytesIO(xlsx.content), engine="openpyxl"),
    ):
        assert not any("title_1" in col for col in frame.columns)
        titles = dict(zip(frame["编号 id"], frame["标题 title"], strict=True))
        assert titles[titled["id"]] == "万寿路门口占道摆摊"
        assert titles[raw["id"]] == "摊主电话138****5678天天摆"
        assert titles[task] == task_title


def test_analyst_reads_all_corrects_category_and_the_label_is_stored(live):
    from sqlalchemy import select

    from triage.store import Label, get_engine

    a, b = seed_item(WANGJING), seed_item(WANSHOULU)
    with live.client("analyst") as c:
        for it in (a, b):
            assert c.get(f"/api/v1/items/{it['id']}").status_code == 200
        assert c.get("/api/v1/queue", params={"street": WANSHOULU}).json()["total"] >= 1
        r = c.post(f"/api/v1/items/{a['id']}/category", json={"category": "群租房", "note": "其实是群租"})
        assert r.status_code == 200, r.text
        assert r.json()["category"] == "group_rental" and r.json()["version"] == 2
        assert c.post(f"/api/v1/items/{a['id']}/category", json={"category": "nonsense"}).status_code == 422
        # the analyst cannot work items like a street office
        assert c.post(f"/api/v1/items/{b['id']}/acknowledge", json={"version": 1}).status_code == 403
        stats = c.get("/api/v1/stats").json()
        assert stats["total"] >= 2 and sum(stats["by_status"].values()) == stats["total"]
        assert any(s["street_code"] == WANSHOULU for s in stats["per_street"])
    with get_engine().connect() as conn:
        lab = conn.execute(select(Label).where(Label.ticket_id == a["ticket_id"])).one()
    assert (lab.category, lab.labeled_by, lab.source) == ("group_rental", "analyst", "correction")
    with live.client("wangjing") as c:
        assert (
            c.post(f"/api/v1/items/{a['id']}/category", json={"category": "group_rental"}).status_code == 403
        )
        st = c.get("/api/v1/stats").json()
        assert st["street"] == WANGJING and st["per_street"] is None


def test_openapi_is_published_and_responses_carry_security_headers(live):
    with live.client() as c:
        r = c.get("/openapi.json")
        page = c.get("/web/login")
    spec = r.json()
    assert "/api/v1/queue" in spec["paths"] and "/open311/v2/requests.{fmt}" in spec["paths"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert (
        page.headers["x-frame-options"] == "DENY"
        and "default-src 'self'" in page.headers["content-security-policy"]
    )


def test_queue_totals_are_cached_briefly_per_filter_and_dropped_after_a_write(db, monkeypatch):
    """A busy street's count is the costly part of its first page: it is reused for
    TRIAGE_API_TOTAL_CACHE_SECONDS for the same filters, never across streets, and forgotten after a change."""
    from triage.api import common
    from triage.auth import Principal
    from triage.config import get_settings

    monkeypatch.setattr(get_settings(), "api_total_cache_seconds", 60.0)
    common.forget_totals()
    clerk = Principal(token_id=1, name="clerk", role="street", street_code=WANGJING)
    other = Principal(token_id=2, name="other", role="street", street_code=WANSHOULU)
    seed_item(WANGJING)
    seed_item(WANSHOULU)
    total, items = common.list_items(clerk)
    assert total == 1 and len(items) == 1
    seed_item(WANGJING)  # written behind this process's back (another worker, the nightly run)
    total, items = common.list_items(clerk)
    assert total == 1 and len(items) == 2  # the page is fresh; the total may lag by up to the TTL
    assert common.list_items(other)[0] == 1  # another street never shares a cached total
    assert common.list_items(clerk, category=["street_vending"])[0] == 2  # other filters, own count
    common.forget_totals()  # what the app does after every write request
    assert common.list_items(clerk)[0] == 2
