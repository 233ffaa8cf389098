"""The whole lifecycle through the real server: 派单 → 签收 → 办理 → 办结 → 回访 → 结案, and two
returns with escalation and re-dispatch; plus the bulk closed-ticket extract."""

from __future__ import annotations

import pandas as pd
import pytest

from tests import test_api_support
from tests.test_api_support import JIUXIANQIAO, WANGJING, WANSHOULU, seed_item

live = test_api_support.live


def test_full_lifecycle_with_audit_trail(live):
    it = seed_item(WANGJING)
    iid = it["id"]
    with live.client("wangjing") as s, live.client("admin") as adm:
        r = s.post(f"/api/v1/items/{iid}/acknowledge", json={"version": 1, "note": "已收到"}).json()
        assert (r["status"], r["version"], r["acknowledged_at"] is not None) == ("acknowledged", 2, True)
        r = s.post(f"/api/v1/items/{iid}/updates", json={"version": 2, "note": "城管已到场"}).json()
        assert (r["status"], r["version"]) == ("in_progress", 3)
        r = s.post(f"/api/v1/items/{iid}/resolve", json={"version": 3, "note": "摊贩已劝离"}).json()
        assert (r["status"], r["resolved_at"] is not None) == ("fixed", True)
        assert (
            s.post(
                f"/api/v1/items/{iid}/callback", json={"version": 4, "satisfaction": "satisfied"}
            ).status_code
            == 403
        )
        bad = adm.post(f"/api/v1/items/{iid}/callback", json={"version": 4, "satisfaction": "meh"})
        assert bad.status_code == 422
        r = adm.post(f"/api/v1/items/{iid}/callback", json={"version": 4, "satisfaction": "satisfied"}).json()
        assert (r["status"], r["satisfaction"]) == ("callback", "satisfied")
        r = adm.post(f"/api/v1/items/{iid}/close", json={"version": 5}).json()
        assert r["status"] == "closed" and r["version"] == 6
        ev = s.get(f"/api/v1/items/{iid}").json()["events"]
    trail = [(e["action"], e["from_status"], e["to_status"]) for e in ev]
    assert trail == [
        ("route", None, "dispatched"),
        ("acknowledge", "dispatched", "acknowledged"),
        ("update", "acknowledged", "in_progress"),
        ("resolve", "in_progress", "fixed"),
        ("callback", "fixed", "callback"),
        ("close", "callback", "closed"),
    ]
    assert (
        ev[1]["actor"] == "street:wangjing"
        and ev[3]["note"] == "摊贩已劝离"
        and ev[5]["actor"] == "admin:admin"
    )
    assert all(e["at"] for e in ev)


def test_two_returns_escalate_and_redispatch_follows_operator_then_resolver(live):
    # the address names 望京 and the text 酒仙桥: the resolver's second choice after 望京 is 酒仙桥
    it = seed_item(WANGJING, address="朝阳区望京街道花家地西里", text="酒仙桥街道那边的市场门口占道经营")
    iid = it["id"]
    with live.client("wangjing") as wj, live.client("admin") as adm, live.client("wanshoulu") as ws:
        r = wj.post(f"/api/v1/items/{iid}/return", json={"version": 1, "reason": "地点在酒仙桥，不属本街道"})
        assert r.json() == {
            "id": iid,
            "status": "returned",
            "return_count": 1,
            "escalated": False,
            "version": 2,
        }
        assert (
            wj.get(f"/api/v1/items/{iid}").status_code == 404
        )  # back at the centre, out of the street's view
        centre = adm.get("/api/v1/queue", params={"street": "centre", "page_size": 500}).json()["items"]
        assert iid in [c["id"] for c in centre]
        # the operator picks 万寿路 explicitly
        r = adm.post(f"/api/v1/items/{iid}/redispatch", json={"version": 2, "street_code": WANSHOULU}).json()
        assert (r["status"], r["street_code"], r["queue"]) == ("dispatched", WANSHOULU, "street")
        r = ws.post(f"/api/v1/items/{iid}/return", json={"version": 3, "reason": "也不是我们的"}).json()
        assert (r["return_count"], r["escalated"]) == (2, True)
        # no street given: the resolver's best street that has not returned it → 酒仙桥
        r = adm.post(f"/api/v1/items/{iid}/redispatch", json={"version": 4}).json()
        assert r["street_code"] == JIUXIANQIAO and r["escalated"] is True and r["return_count"] == 2
        assert r["priority"] == 2  # escalation raised the priority by one step
        ev = adm.get(f"/api/v1/items/{iid}").json()["events"]
    returns = [e for e in ev if e["action"] == "return"]
    assert [(e["from_street"], e["note"]) for e in returns] == [
        (WANGJING, "地点在酒仙桥，不属本街道"),
        (WANSHOULU, "也不是我们的"),
    ]
    assert [e["to_street"] for e in ev if e["action"] == "redispatch"] == [WANSHOULU, JIUXIANQIAO]


def test_redispatch_without_any_candidate_asks_for_a_street(live):
    it = seed_item(WANGJING, address="望京街道", text="占道经营")
    with live.client("wangjing") as wj, live.client("admin") as adm:
        wj.post(f"/api/v1/items/{it['id']}/return", json={"version": 1, "reason": "不是本街道"})
        r = adm.post(f"/api/v1/items/{it['id']}/redispatch", json={"version": 2})
        assert r.status_code == 422 and "pick one" in r.json()["detail"]
        assert (
            adm.post(
                f"/api/v1/items/{it['id']}/redispatch", json={"version": 2, "street_code": "999999999"}
            ).status_code
            == 422
        )
        assert wj.post(f"/api/v1/items/{it['id']}/redispatch", json={"version": 2}).status_code in (403, 404)


@pytest.fixture
def extract_items(db):
    return [seed_item(WANGJING) for _ in range(3)]


def test_closed_extract_is_ingested_in_bulk_with_events_and_problems(db, extract_items, tmp_path):
    from sqlalchemy import select

    from triage.lifecycle import ingest_closed_extract
    from triage.store import QueueEvent, QueueItem, get_engine

    a, b, c = extract_items
    f = tmp_path / "closed.csv"
    pd.DataFrame(
        {
            "ticket_id": [a["ticket_id"], b["ticket_id"], "NOPE", c["ticket_id"]],
            "status": ["办结", "已结案", "办结", "???"],
            "resolved_at": ["2026-11-21 10:00", "", "", ""],
            "satisfaction": ["满意", "不满意", "", ""],
        }
    ).to_csv(f, index=False)
    r = ingest_closed_extract(f, actor="import:closed.csv")
    assert (r["rows"], r["updated"], r["rejected"]) == (4, 2, 2)
    assert any("NOPE" in p for p in r["problems"]) and any("row 5" in p for p in r["problems"])
    with get_engine().connect() as conn:
        rows = {x.ticket_id: x for x in conn.execute(select(QueueItem))}
        events = conn.execute(select(QueueEvent).where(QueueEvent.action == "import_closed")).all()
    ra = rows[a["ticket_id"]]
    assert (ra.status, ra.satisfaction, ra.version) == ("fixed", "satisfied", 2)
    assert ra.resolved_at.isoformat() == "2026-11-21T02:00:00+00:00"  # 10:00 Beijing
    assert rows[b["ticket_id"]].status == "closed" and rows[c["ticket_id"]].status == "dispatched"
    assert len(events) == 2
    again = ingest_closed_extract(f, actor="import:closed.csv")
    assert (again["updated"], again["unchanged"]) == (0, 2)
    # JSON Lines: a problem names the line (blank lines count); a null ticket_id is empty, not "nan"
    j = tmp_path / "closed.jsonl"
    j.write_text('\n{"ticket_id": null, "status": "???"}\n', encoding="utf-8")
    assert ingest_closed_extract(j)["problems"] == [
        f"{j}, row 2, field 'status': '???' is not 办结/回访/结案"
    ]


def test_staff_notes_and_return_reasons_are_stored_and_shown_masked(live):
    """Clerks type numbers too, in any width and spacing: notes and return reasons are cleaned when
    stored, and shown masked in the API, Open311, the clerks' pages and the nightly report."""
    from sqlalchemy import select

    from triage.report.nightly import nightly_context
    from triage.store import Prediction, QueueEvent, QueueItem, Ticket, get_engine

    it = seed_item(WANGJING)
    iid = it["id"]
    note = "已回电 １３７ ００００ ２２２２ 另 138\u200b1234\u200b5678 \u202e\ufffe"
    reason = "非本辖区 市民电话１３８１２３４５６７８ 身份证１１０１０５１９９００１０１１２３Ｘ"
    with live.client("wangjing") as s, live.client("analyst") as a:
        assert (
            s.post(f"/api/v1/items/{iid}/acknowledge", json={"version": 1, "note": note}).status_code == 200
        )
        assert s.post(f"/api/v1/items/{iid}/return", json={"version": 2, "reason": reason}).status_code == 200
        shown = [
            a.get(f"/api/v1/items/{iid}").text,
            a.get(f"/open311/v2/requests/{it['ticket_id']}.xml").text,
        ]
    with get_engine().connect() as c:
        stored = [n for (n,) in c.execute(select(QueueEvent.note).where(QueueEvent.item_id == iid))]
        stored.append(c.execute(select(QueueItem.centre_reason).where(QueueItem.id == iid)).scalar_one())
    with get_engine().begin() as c:  # the report counts classified tickets
        c.execute(
            Prediction.__table__.insert(),
            {"ticket_id": it["ticket_id"], "category": "street_vending", "confidence": 0.9, "top3": [],
             "needs_review": False, "model_version": "test"},
        )  # fmt: skip
        night = c.execute(select(Ticket.night).where(Ticket.ticket_id == it["ticket_id"])).scalar_one()
    report = nightly_context(night)
    shown.append(str(report["centre_reasons"]))
    for text in [*map(str, stored), *shown]:
        for digits in ("00002222", "0000 2222", "12345678", "1234\u200b5678", "19900101", "１３８"):
            assert digits not in text, text
        assert "\u202e" not in text and "\ufffe" not in text
    stored = [t for t in stored if t]
    assert any("137****2222" in t for t in stored) and any("110***********123X" in t for t in stored)
    assert "110***********123X" in shown[-1]  # the report lists the return reason, masked
