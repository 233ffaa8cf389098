"""The clerks' pages in headless Chromium against a real server: a clerk's whole flow, and that
another street's ticket cannot be opened."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests import test_api_support
from tests.conftest import browser_errors
from tests.test_api_support import WANGJING, WANSHOULU, seed_item

live = test_api_support.live
pytestmark = pytest.mark.browser


def _wait_text(chrome, element_id: str, text: str) -> str:
    """Form posts navigate asynchronously: wait until the new page shows ``text``."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    seen: dict[str, str] = {}

    def shows_text(d) -> bool:
        for e in d.find_elements(By.ID, element_id):
            if text in (t := e.text):
                seen["text"] = t
                return True
        return False

    # the old page's element goes stale mid-navigation: that just means "not yet"
    WebDriverWait(chrome, 20, ignored_exceptions=(StaleElementReferenceException,)).until(shows_text)
    return seen["text"]


def _sign_in(chrome, live, who: str) -> None:
    chrome.delete_all_cookies()
    chrome.get(live.url + "/web/login")
    chrome.find_element(By.ID, "token").send_keys(live.tokens[who])
    chrome.find_element(By.ID, "signin").click()
    _wait_text(chrome, "queue", "")


def test_clerk_flow_acknowledge_resolve_return_and_download(chrome, live):
    # stored raw (bypassing ingest cleaning) so the page itself must escape it
    overdue = seed_item(
        WANGJING, due_in_hours=-3, text="楼下烧烤摊<script>alert(1)</script>油烟大", masked=False
    )
    later = seed_item(WANGJING, due_in_hours=30, text="小区门口占道摆摊")
    to_return = seed_item(WANGJING, due_in_hours=60, text="这件事其实在酒仙桥")

    chrome.delete_all_cookies()
    browser_errors(chrome)  # drain what earlier tests left in the shared browser's log
    chrome.get(live.url + "/web/queue")
    assert "/web/login" in chrome.current_url  # not signed in → sign-in page
    _sign_in(chrome, live, "wangjing")
    assert "望京街道" in chrome.find_element(By.TAG_NAME, "h1").text
    rows = chrome.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    ids = [int(r.get_attribute("data-id")) for r in rows]
    assert ids.index(overdue["id"]) < ids.index(later["id"]) < ids.index(to_return["id"])  # by deadline
    row = chrome.find_element(By.CSS_SELECTOR, f'tr[data-id="{overdue["id"]}"]')
    assert "overdue" in row.get_attribute("class") and "超期" in row.text
    assert "<script>" in row.text  # shown as text, not run

    # open → acknowledge → resolve with a note
    chrome.find_element(By.CSS_SELECTOR, f'tr[data-id="{overdue["id"]}"] a.open-item').click()
    assert chrome.find_element(By.ID, "status").text == "派单"
    chrome.find_element(By.ID, "acknowledge").click()
    assert _wait_text(chrome, "msg", "已签收") == "已签收"
    assert chrome.find_element(By.ID, "status").text == "签收"
    chrome.find_element(By.ID, "resolve-note").send_keys("已联系城管劝离摊贩")
    chrome.find_element(By.ID, "resolve").click()
    assert _wait_text(chrome, "status", "办结") == "办结"
    assert "已联系城管劝离摊贩" in chrome.find_element(By.ID, "events").text

    # return without a reason is refused; with one, the ticket leaves the queue
    chrome.get(f"{live.url}/web/items/{to_return['id']}")
    chrome.find_element(By.ID, "return").click()
    assert "请填写说明" in _wait_text(chrome, "error", "请填写说明")
    chrome.find_element(By.ID, "return-note").send_keys("地点在酒仙桥街道")
    chrome.find_element(By.ID, "return").click()
    assert "已退单" in _wait_text(chrome, "msg", "已退单")
    assert str(to_return["id"]) not in [
        r.get_attribute("data-id") for r in chrome.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    ]

    # the sheet downloads with the street's items (fetched with the browser's own cookie)
    csv = chrome.execute_async_script(
        "const done = arguments[0]; fetch('/web/export.csv').then(r => r.text()).then(done);"
    )
    assert later["ticket_id"] in csv and to_return["ticket_id"] not in csv
    # the refused return answered 422 on purpose (Chromium logs that status); nothing else may fail
    assert [m for m in browser_errors(chrome) if "status of 422" not in m] == []


def test_another_streets_ticket_cannot_be_opened_or_worked(chrome, live):
    theirs = seed_item(WANSHOULU, text="万寿路的工单")
    _sign_in(chrome, live, "wangjing")
    chrome.get(f"{live.url}/web/items/{theirs['id']}")
    assert chrome.find_element(By.ID, "notfound").text == "未找到工单"
    assert "万寿路的工单" not in chrome.page_source
    # a hand-made form post to the other street's item changes nothing
    chrome.execute_script(
        "const f = document.createElement('form'); f.method = 'post';"
        f"f.action = '/web/items/{theirs['id']}/acknowledge';"
        "const v = document.createElement('input'); v.name = 'version'; v.value = '1'; f.appendChild(v);"
        "document.body.appendChild(f); f.submit();"
    )
    assert _wait_text(chrome, "notfound", "未找到工单") == "未找到工单"
    with live.client("wanshoulu") as c:
        got = c.get(f"/api/v1/items/{theirs['id']}").json()
    assert got["status"] == "dispatched" and got["version"] == 1
    # signing out ends the session
    chrome.get(live.url + "/web/queue")
    chrome.find_element(By.ID, "logout").click()
    _wait_text(chrome, "signin", "登录")
    chrome.get(live.url + "/web/queue")
    assert "/web/login" in chrome.current_url
