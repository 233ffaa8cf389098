"""The centre's review desk in headless Chromium against a real server (SQLite and PostgreSQL):
sign in as admin, confirm by keyboard, change category and street with the pickers, batch confirm,
a stale version's message, counted actions; and the desk's access rules and escaping."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests import test_api_support
from tests.conftest import browser_errors
from tests.review_support import labels_for, seed_centre
from tests.test_api_support import JIUXIANQIAO, WANGJING, WANSHOULU, seed_item
from tests.test_web import _sign_in, _wait_text

live = test_api_support.live
pytestmark = pytest.mark.browser


class Operator:
    """Drives the page and counts what the operator does (a click, a key, one picker entry)."""

    def __init__(self, chrome):
        self.chrome, self.actions = chrome, 0

    def click(self, css: str) -> None:
        self.actions += 1
        self.chrome.find_element(By.CSS_SELECTOR, css).click()

    def key(self, k: str) -> None:
        self.actions += 1
        self.chrome.find_element(By.TAG_NAME, "body").send_keys(k)

    def type(self, element_id: str, text: str) -> None:
        self.actions += 1
        self.chrome.find_element(By.ID, element_id).send_keys(text)


def _item(live, item_id: int) -> dict:
    with live.client("admin") as c:
        return c.get(f"/api/v1/items/{item_id}").json()


def test_desk_flow_keyboard_pickers_batch_and_stale(chrome, live):
    from triage.auth import create_token

    # oldest deadlines first, so these are the desk's first rows whatever other tests left
    right = seed_centre(located=WANGJING, due_in_hours=-900,
                        text="望京花家地西里门口占道摆摊<script>alert(1)</script>", masked=False)  # fmt: skip
    wrong = seed_centre(located=WANGJING, due_in_hours=-899, text="酒仙桥一套房子隔成十几间出租")
    batch = [seed_centre(located=WANGJING, due_in_hours=-800 + i) for i in range(3)]
    stale = seed_centre(located=WANGJING, due_in_hours=-700)

    browser_errors(chrome)
    _sign_in(chrome, live, "admin")
    chrome.find_element(By.ID, "nav-review").click()
    _wait_text(chrome, "counts", "退单")
    assert "<script>" in chrome.find_element(By.CSS_SELECTOR, f'tr[data-id="{right["id"]}"]').text

    # suggestion 1 and the located street are right: open, press 1 → 2 actions, next ticket opens
    op = Operator(chrome)
    op.click(f'tr[data-id="{right["id"]}"] a.open-item')
    _wait_text(chrome, "shortcuts", "快捷键")
    assert "<script>" in chrome.find_element(By.ID, "text").text  # escaped, shown as text
    assert (
        "占道经营" in chrome.find_element(By.ID, "s1").text and "52%" in chrome.find_element(By.ID, "s1").text
    )
    op.key("1")
    _wait_text(chrome, "msg", "已派往 望京街道")
    assert op.actions == 2
    got = _item(live, right["id"])
    assert (got["status"], got["street_code"], got["category"]) == ("dispatched", WANGJING, "street_vending")

    # "confirm and next" landed on the next ticket; change both category and street: ≤ 4 actions
    assert f"/web/review/{wrong['id']}" in chrome.current_url
    op = Operator(chrome)
    op.type("category-other", "群租房")
    op.type("street-other", "酒仙桥街道")
    op.click("#confirm")
    _wait_text(chrome, "msg", "已派往 酒仙桥街道")
    assert op.actions + 1 <= 4  # + opening it had it not come next
    got = _item(live, wrong["id"])
    assert (got["street_code"], got["category"]) == (JIUXIANQIAO, "group_rental")
    with live.client("jiuxianqiao") as c:
        assert wrong["id"] in [
            it["id"] for it in c.get("/api/v1/queue", params={"page_size": 500}).json()["items"]
        ]
    assert [(lb["category"], lb["source"]) for lb in labels_for(wrong["ticket_id"])] == [
        ("group_rental", "review")
    ]
    assert [(lb["category"], lb["source"]) for lb in labels_for(right["ticket_id"])] == [
        ("street_vending", "review")
    ]

    # n skips to the following ticket
    here = chrome.current_url
    chrome.find_element(By.TAG_NAME, "body").send_keys("n")
    _wait_text(chrome, "shortcuts", "快捷键")
    assert chrome.current_url != here

    # batch: tick three, one click
    chrome.get(live.url + "/web/review")
    op = Operator(chrome)
    for b in batch:
        op.click(f'tr[data-id="{b["id"]}"] input.pick')
    op.click("#batch-confirm")
    _wait_text(chrome, "msg", "已批量派单 3 件")
    assert all(_item(live, b["id"])["status"] == "dispatched" for b in batch)

    # stale: another operator decides first; pressing 1 shows who and the ticket as it now is
    chrome.get(f"{live.url}/web/review/{stale['id']}")
    _wait_text(chrome, "shortcuts", "快捷键")
    other = test_api_support.Live(live.url, live.backend, {"o2": create_token("operator2b", "admin")[0]})
    with other.client("o2") as o2:
        r = o2.post(f"/api/v1/review/{stale['id']}/decide",
                    json={"version": 1, "category": "street_vending", "street_code": WANSHOULU})  # fmt: skip
        assert r.status_code == 200
    chrome.find_element(By.TAG_NAME, "body").send_keys("1")
    err = _wait_text(chrome, "error", "已被他人处理")
    assert "admin:operator2b" in err
    assert chrome.find_element(By.ID, "decided").text.startswith("本工单已不在中心队列")
    assert _item(live, stale["id"])["street_code"] == WANSHOULU
    # the 409 was on purpose; nothing else failed in the browser
    assert [m for m in browser_errors(chrome) if "status of 409" not in m] == []


def test_returned_item_from_the_street_to_the_desk(chrome, live):
    it = seed_item(WANSHOULU, text="这件事在望京，不归万寿路")
    with live.client("wanshoulu") as c:
        assert c.post(f"/api/v1/items/{it['id']}/return",
                      json={"version": 1, "reason": "地点在望京街道，不属于本街道"}).status_code == 200  # fmt: skip
    _sign_in(chrome, live, "admin")
    chrome.find_element(By.ID, "nav-returned").click()
    _wait_text(chrome, "review", "")
    assert chrome.find_element(By.CSS_SELECTOR, f'tr[data-id="{it["id"]}"]').is_displayed()
    # the clerk page of a returned item now has an action form and a link to the desk
    chrome.get(f"{live.url}/web/items/{it['id']}")
    assert chrome.find_element(By.ID, "form-decide").is_displayed()
    chrome.find_element(By.ID, "open-desk").click()
    _wait_text(chrome, "events", "地点在望京街道")  # the return reason in the history
    assert WANSHOULU not in [e.get_attribute("value") for e in chrome.find_elements(By.NAME, "street")]
    chrome.find_element(By.ID, "street-other").send_keys(WANGJING)
    chrome.find_element(By.ID, "s1").click()
    _wait_text(chrome, "msg", "已派往 望京街道")
    assert _item(live, it["id"])["street_code"] == WANGJING


def test_revoked_token_mid_session_goes_back_to_sign_in(chrome, live):
    from triage.auth import create_token, revoke_token

    secret, rec = create_token("temp-operator", "admin")
    it = seed_centre(located=WANGJING)
    chrome.delete_all_cookies()
    chrome.get(live.url + "/web/login")
    chrome.find_element(By.ID, "token").send_keys(secret)
    chrome.find_element(By.ID, "signin").click()
    _wait_text(chrome, "queue", "")
    chrome.get(f"{live.url}/web/review/{it['id']}")
    _wait_text(chrome, "shortcuts", "快捷键")
    revoke_token(str(rec["id"]))
    chrome.find_element(By.TAG_NAME, "body").send_keys("1")
    _wait_text(chrome, "signin", "登录")
    assert "/web/login" in chrome.current_url
    assert _item(live, it["id"])["status"] == "pending_dispatch"


def test_street_token_gets_403_on_the_desk_and_analyst_queue_honours_centre(live):
    it = seed_centre(located=WANGJING)
    early = seed_item(WANGJING, due_in_hours=-5000)  # first of every unfiltered list
    with live.client("wangjing") as c:
        assert c.get("/web/review").status_code == 403
        assert c.get(f"/web/review/{it['id']}").status_code == 403
        r = c.post(f"/web/review/{it['id']}/decide", data={"version": "1", "category": "street_vending",
                                                           "street": WANGJING})  # fmt: skip
        assert r.status_code == 403
        assert c.post("/web/review/batch", data={"pick": f"{it['id']}:1"}).status_code == 403
    assert _item(live, it["id"])["status"] == "pending_dispatch"
    with live.client("analyst") as c:
        assert c.get("/web/review").status_code == 403  # the desk is the centre's; analysts read the API
        page = c.get("/web/queue", params={"street": "centre"}).text
        assert f'data-id="{early["id"]}"' not in page and f'data-id="{it["id"]}"' in page
        assert "市民热线服务中心" in page
        assert c.get("/web/queue", params={"street": "x"}).status_code == 422
