"""The access policy through the real server: every (role × status × action) of the workflow
table answers what the table says — 404 for what the principal may not see, 403 for a role the
action is not for, 409 for a status it does not start from, 200 otherwise — on SQLite and
PostgreSQL. Plus where tokens are accepted (Bearer; ?api_key= only on Open311) and street codes
in ASCII digits only."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tests import test_api_support
from tests.test_api_support import WANGJING, WANSHOULU, seed_item
from triage.workflow import load_workflow

live = test_api_support.live
WF = load_workflow()
# the API route and a valid body for each action; an action without a route (the review desk's
# "decide") is performed through lifecycle.transition in-process, with the same policy
ROUTES = {
    "acknowledge": ("acknowledge", {}),
    "update": ("updates", {"note": "城管已到场"}),
    "resolve": ("resolve", {"note": "摊贩已劝离"}),
    "return": ("return", {"reason": "不属本街道"}),
    "redispatch": ("redispatch", {"street_code": WANSHOULU}),
    "callback": ("callback", {"satisfaction": "satisfied"}),
    "close": ("close", {}),
    "recategorize": ("category", {"category": "group_rental"}),
}
INPUTS = {"decide": {"street_code": WANSHOULU, "category": "群租房"}}
PRINCIPALS = {  # token key → (role, street)
    "wangjing": ("street", WANGJING),  # the item's own street
    "wanshoulu": ("street", WANSHOULU),  # another street
    "analyst": ("analyst", None),
    "admin": ("admin", None),
}


def _item_in(status: str) -> dict:
    """An item of 望京 in ``status``, in the queue the table puts that status in."""
    from triage.store import QueueItem, get_engine

    queue = WF.statuses[status].queue or "street"
    it = seed_item(WANGJING if queue == "street" else None)
    with get_engine().begin() as c:
        c.execute(update(QueueItem).where(QueueItem.id == it["id"]).values(status=status, queue=queue))
    return it


def expected(who: str, status: str, action: str) -> int:
    role, street = PRINCIPALS[who]
    queue = WF.statuses[status].queue or "street"
    if role == "street" and not (queue == "street" and street == WANGJING):
        return 404
    if role not in WF.transition(action).roles:
        return 403
    if status not in WF.starts(action):
        return 409
    return 200


def _in_process(who: str, action: str, item_id: int) -> int:
    from triage import lifecycle
    from triage.auth import Principal, Role

    role, street = PRINCIPALS[who]
    try:
        lifecycle.transition(action, item_id, 1, Principal(0, who, Role(role), street), **INPUTS[action])
    except lifecycle.LifecycleError as exc:
        return exc.status_code
    return 200


def test_every_action_of_the_table_has_a_route_or_an_in_process_check():
    assert set(WF.transitions) == set(ROUTES) | set(INPUTS)


@pytest.mark.parametrize("action", list(WF.transitions))
@pytest.mark.parametrize("who", list(PRINCIPALS))
def test_role_status_action_matrix_answers_as_the_table_says(live, who, action):
    wrong = []
    with live.client(who) as c:
        for status in WF.codes:
            it = _item_in(status)
            if action in ROUTES:
                route, body = ROUTES[action]
                got = c.post(f"/api/v1/items/{it['id']}/{route}", json={"version": 1, **body}).status_code
            else:
                got = _in_process(who, action, it["id"])
            want = expected(who, status, action)
            if got != want:
                wrong.append(f"{who} {action} on {status}: {got}, table says {want}")
            # reads follow the same policy: what the principal may not act on for 404 it cannot see
            if want == 404:
                assert c.get(f"/api/v1/items/{it['id']}").status_code == 404
    assert wrong == []


def test_tokens_in_the_query_string_only_on_open311(live):
    it = seed_item(WANGJING)
    tok = live.tokens["wangjing"]
    with live.client() as anon:
        for path in (
            "/api/v1/queue",
            "/api/v1/me",
            "/api/v1/stats",
            "/api/v1/queue/export.csv",
            f"/api/v1/items/{it['id']}",
        ):
            assert anon.get(path, params={"api_key": tok}).status_code == 401, path
        r = anon.get(
            "/open311/v2/requests.json", params={"api_key": tok, "service_request_id": it["ticket_id"]}
        )
        assert r.status_code == 200 and it["ticket_id"] in r.text
    with live.client("wangjing") as c:  # the header still works everywhere
        assert c.get("/api/v1/queue").status_code == 200


@pytest.mark.parametrize("code", ["１１０１０５０２６", "११०१०५०२६", "110105026\n", "٣١٠١٠٥٠٢٦"])
def test_street_codes_are_ascii_digits_only(live, code):
    with live.client("analyst") as c:
        for path in ("/api/v1/queue", "/api/v1/stats", "/api/v1/queue/export.csv"):
            assert c.get(path, params={"street": code}).status_code == 422, (path, code)
        r = c.post("/api/v1/items/1/redispatch", json={"version": 1, "street_code": code})
        assert r.status_code in (403, 422)
    with live.client("admin") as c:
        assert (
            c.post("/api/v1/items/1/redispatch", json={"version": 1, "street_code": code}).status_code == 422
        )
        assert c.get("/api/v1/queue", params={"street": WANGJING}).status_code == 200
