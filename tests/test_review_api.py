"""The centre's review desk API against a real server on SQLite and PostgreSQL: the queue with its
suggestions and reasons, a decision (dispatch + deadline + audit + label), stale versions naming
who decided, unknown categories and streets named, batches, and street tokens refused."""

from __future__ import annotations

import datetime as dt

from tests import test_api_support
from tests.review_support import labels_for, seed_centre
from tests.test_api_support import JIUXIANQIAO, WANGJING, WANSHOULU

live = test_api_support.live


def _ids(body):
    return [it["id"] for it in body["items"]]


def test_review_queue_lists_centre_items_with_reasons_top3_and_candidates(live):
    low = seed_centre(located=WANGJING, due_in_hours=5)
    nostreet = seed_centre(located=None, address=None, text="我家楼上噪音很大", due_in_hours=1)
    ret = seed_centre(located=WANGJING, returned_by=[WANSHOULU], due_in_hours=20)
    esc = seed_centre(located=WANGJING, returned_by=[WANSHOULU, JIUXIANQIAO], escalated=True, due_in_hours=30)
    with live.client("admin") as c:
        body = c.get("/api/v1/review", params={"page_size": 200}).json()
        ids = _ids(body)
        assert ids.index(nostreet["id"]) < ids.index(low["id"]) < ids.index(ret["id"]) < ids.index(esc["id"])
        by_id = {it["id"]: it for it in body["items"]}
        assert by_id[low["id"]]["reason"] == "low_confidence"
        assert by_id[nostreet["id"]]["reason"] == "no_street"
        assert by_id[ret["id"]]["reason"] == "returned" and by_id[esc["id"]]["reason"] == "escalated"
        top = by_id[low["id"]]["top3"]
        assert [t["category"] for t in top] == ["street_vending", "group_rental", "sanitation"]
        assert top[0]["name"] == "占道经营" and top[0]["confidence"] == 0.52
        assert by_id[low["id"]]["street_candidates"][0] == {
            "code": WANGJING,
            "name": "望京街道",
            "district": "朝阳区",
        }
        # a street that returned the ticket is never offered again
        assert WANSHOULU not in [s["code"] for s in by_id[ret["id"]]["street_candidates"]]
        assert body["counts"]["escalated"] >= 1 and set(body["counts"]) == {
            "low_confidence",
            "no_street",
            "returned",
            "escalated",
        }
        only = c.get("/api/v1/review", params={"reason": "returned", "page_size": 200}).json()
        assert ret["id"] in _ids(only) and esc["id"] not in _ids(only) and low["id"] not in _ids(only)
        assert only["total"] == len(only["items"])
        assert c.get("/api/v1/review", params={"reason": "bogus"}).status_code == 422
        # learn order returns the same items, most instructive first
        learn = c.get("/api/v1/review", params={"order": "learn", "page_size": 200}).json()
        assert sorted(_ids(learn)) == sorted(ids)
        # analysts may read the desk
        with live.client("analyst") as a:
            assert a.get("/api/v1/review").status_code == 200


def test_decide_dispatches_with_deadline_audit_and_label_then_stale_is_409_naming_who(live):
    from triage.taxonomy import load_taxonomy

    it = seed_centre(located=WANGJING)
    with live.client("admin") as c:
        r = c.post(f"/api/v1/review/{it['id']}/decide",
                   json={"version": 1, "category": "群租房", "street_code": JIUXIANQIAO})  # fmt: skip
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["status"] == "dispatched" and got["street_code"] == JIUXIANQIAO
        assert got["category"] == "group_rental" and got["version"] == 2 and got["queue"] == "street"
        hours = load_taxonomy().tiers[load_taxonomy().category("group_rental").sla_tier].hours
        due = dt.datetime.fromisoformat(got["due_at"]) - dt.datetime.fromisoformat(got["received_at"])
        assert due == dt.timedelta(hours=hours)
        ev = c.get(f"/api/v1/items/{it['id']}").json()["events"][-1]
        assert ev["action"] == "decide" and ev["actor"] == "admin:admin" and ev["to_street"] == JIUXIANQIAO
        assert "改判" in ev["note"]
        # the street now sees it in its own queue
        with live.client("jiuxianqiao") as s:
            assert it["id"] in _ids(s.get("/api/v1/queue", params={"page_size": 500}).json())
        # a second operator with the old version: 409 naming who decided
        r2 = c.post(f"/api/v1/review/{it['id']}/decide",
                    json={"version": 1, "category": "street_vending", "street_code": WANGJING})  # fmt: skip
        assert r2.status_code == 409 and "admin:admin" in r2.json()["detail"]
        # with the current version it is no longer at the centre: still 409
        r3 = c.post(f"/api/v1/review/{it['id']}/decide",
                    json={"version": 2, "category": "street_vending", "street_code": WANGJING})  # fmt: skip
        assert r3.status_code == 409
    [label] = labels_for(it["ticket_id"])
    assert (label["category"], label["source"], label["labeled_by"]) == ("group_rental", "review", "admin")
    assert label["labeled_at"] is not None


def test_agreeing_with_suggestion_one_is_a_label_too(live):
    it = seed_centre(located=WANGJING)
    with live.client("admin") as c:
        r = c.post(f"/api/v1/review/{it['id']}/decide",
                   json={"version": 1, "category": "street_vending", "street_code": WANGJING})  # fmt: skip
        assert r.status_code == 200
        assert "采纳建议1" in c.get(f"/api/v1/items/{it['id']}").json()["events"][-1]["note"]
    assert [(lb["category"], lb["source"]) for lb in labels_for(it["ticket_id"])] == [
        ("street_vending", "review")
    ]


def test_unknown_category_or_street_is_422_naming_it_and_changes_nothing(live):
    it = seed_centre(located=WANGJING)
    with live.client("admin") as c:
        for body, named in [
            ({"version": 1, "category": "no_such_cat", "street_code": WANGJING}, "no_such_cat"),
            ({"version": 1, "category": "street_vending", "street_code": "999999999"}, "999999999"),
            # a district or a community code is not a street of the gazetteer
            ({"version": 1, "category": "street_vending", "street_code": "110105"}, "110105"),
        ]:
            r = c.post(f"/api/v1/review/{it['id']}/decide", json=body)
            assert r.status_code == 422 and named in r.json()["detail"], r.text
        assert c.get(f"/api/v1/items/{it['id']}").json()["version"] == 1
    assert labels_for(it["ticket_id"]) == []


def test_batch_decides_each_on_its_own_and_refuses_empty_and_oversized(live):
    from triage.review import BATCH_LIMIT

    a, b, stale = (seed_centre(located=WANGJING) for _ in range(3))
    with live.client("admin") as c:
        r = c.post("/api/v1/review/decide-batch", json={"items": [
            {"id": a["id"], "version": 1, "category": "street_vending", "street_code": WANGJING},
            {"id": stale["id"], "version": 7, "category": "street_vending", "street_code": WANGJING},
            {"id": b["id"], "version": 1, "category": "nope", "street_code": WANGJING},
        ]})  # fmt: skip
        assert r.status_code == 200, r.text
        res = {x["id"]: x for x in r.json()["results"]}
        assert r.json()["decided"] == 1 and r.json()["failed"] == 2
        assert res[a["id"]]["ok"] and res[a["id"]]["version"] == 2
        assert (
            res[stale["id"]]["status"] == 409
            and res[b["id"]]["status"] == 422
            and "nope" in res[b["id"]]["detail"]
        )
        assert c.get(f"/api/v1/items/{a['id']}").json()["status"] == "dispatched"
        assert c.get(f"/api/v1/items/{b['id']}").json()["status"] == "pending_dispatch"
        assert c.post("/api/v1/review/decide-batch", json={"items": []}).status_code == 422
        one = {"id": a["id"], "version": 1, "category": "x", "street_code": WANGJING}
        over = c.post("/api/v1/review/decide-batch", json={"items": [one] * (BATCH_LIMIT + 1)})
        assert over.status_code == 422 and str(BATCH_LIMIT) in over.text
        # 10,000 items do not even get read: the body limit answers first
        assert c.post("/api/v1/review/decide-batch", json={"items": [one] * 10_000}).status_code == 413


def test_street_and_analyst_tokens_cannot_decide(live):
    it = seed_centre(located=WANGJING)
    body = {"version": 1, "category": "street_vending", "street_code": WANGJING}
    with live.client("wangjing") as c:
        assert c.get("/api/v1/review").status_code == 403
        assert c.post(f"/api/v1/review/{it['id']}/decide", json=body).status_code == 403
        assert (
            c.post("/api/v1/review/decide-batch", json={"items": [{**body, "id": it["id"]}]}).status_code
            == 403
        )
    with live.client("analyst") as c:
        assert c.post(f"/api/v1/review/{it['id']}/decide", json=body).status_code == 403
    with live.client() as c:
        assert c.get("/api/v1/review").status_code == 401
    labels = labels_for(it["ticket_id"])
    assert labels == []


def test_filters_with_control_characters_or_foreign_digits_are_422_not_500(live):
    # a NUL byte in a free-text filter reached PostgreSQL and answered 500 (found by the fuzz test)
    with live.client("admin") as c:
        for params in ({"channel": "电话\x00"}, {"category": "other\x00"}, {"district": "١١٠١٠٥"}):
            r = c.get("/api/v1/review", params=params)
            assert r.status_code == 422, (params, r.status_code)
        assert c.get("/api/v1/review", params={"channel": "电话"}).status_code == 200
