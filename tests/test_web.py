"""The clerks' pages in headless Chromium against a real server: a clerk's whole flow, that
another street's ticket cannot be opened, that clerks read names rather than codes and messages
that fit the error, and that the header's sign-out button is readable."""

from __future__ import annotations

import httpx
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


# --- what a clerk reads: names, not codes; messages that fit the error; a readable header ----------
def _page(live, who: str, path: str, **form) -> httpx.Response:
    """A /web page as the given token sees it (the pages accept the Bearer header like the API)."""
    with live.client(who) as c:
        return c.post(path, data=form) if form else c.get(path)


def test_queue_and_item_show_category_department_and_action_names(live):
    item = seed_item(WANGJING, text="小区门口有人摆摊卖菜")
    queue = _page(live, "wangjing", "/web/queue").text
    row = queue[queue.index(f'data-id="{item["id"]}"') :].split("</tr>")[0]
    assert "占道经营" in row and ">street_vending<" not in row  # the code stays as the cell's title only
    assert 'title="street_vending"' in row

    page = _page(live, "wangjing", f"/web/items/{item['id']}").text
    units = page[page.index('id="units"') :].split("</tr>")[0]
    assert "属地街道（乡镇）" in units and "城市管理综合行政执法局（城管执法）" in units
    assert ">street_office<" not in units and ">urban_management_enforcement<" not in units
    category = page[page.index('id="category"') :].split("</tr>")[0]
    assert "占道经营" in category
    events = page[page.index('id="events"') :]
    assert ">派单<" in events and ">route<" not in events

    # an analyst's correction shows as 更正类别 with the two category names in its note
    with live.client("analyst") as c:
        r = c.post(f"/api/v1/items/{item['id']}/category", json={"version": 1, "category": "group_rental"})
        assert r.status_code == 200, r.text
    events = _page(live, "wangjing", f"/web/items/{item['id']}").text
    events = events[events.index('id="events"') :]
    assert "更正类别" in events and ">recategorize<" not in events
    assert "占道经营 → 群租房" in events and "street_vending → group_rental" not in events


def test_analyst_sees_no_action_forms_and_gets_the_not_allowed_message(live):
    item = seed_item(WANGJING)
    page = _page(live, "analyst", f"/web/items/{item['id']}")
    assert page.status_code == 200
    assert 'id="form-acknowledge"' not in page.text and 'id="form-return"' not in page.text
    assert 'id="read-only"' in page.text
    # a hand-made post is refused with the role message, never the note hint
    r = _page(live, "analyst", f"/web/items/{item['id']}/acknowledge", version="1", note="")
    assert r.status_code == 403
    error = r.text[r.text.index('id="error"') :].split("</p>")[0]
    assert "无权" in error and "请填写说明" not in error
    assert 'id="form-acknowledge"' not in r.text
    with live.client("wangjing") as c:
        assert c.get(f"/api/v1/items/{item['id']}").json()["status"] == "dispatched"


def test_street_clerk_sees_the_forms_and_the_note_hint_on_a_too_short_note(live):
    item = seed_item(WANGJING)
    page = _page(live, "wangjing", f"/web/items/{item['id']}").text
    assert 'id="form-acknowledge"' in page and 'id="form-return"' in page and 'id="read-only"' not in page
    r = _page(live, "wangjing", f"/web/items/{item['id']}/return", version="1", note="x")
    assert r.status_code == 422
    error = r.text[r.text.index('id="error"') :].split("</p>")[0]
    assert "请填写说明（至少两个字）" in error and "无权" not in error
    assert 'id="form-return"' in r.text


def _rgba(css: str) -> tuple[float, ...]:
    """A computed CSS colour ("rgb(r, g, b)" / "rgba(r, g, b, a)") as (r, g, b, alpha)."""
    parts = [float(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")]
    return (*parts[:3], parts[3] if len(parts) > 3 else 1.0)


def _luminance(css: str) -> float:
    """WCAG relative luminance of an opaque computed CSS colour."""
    r, g, b, _ = _rgba(css)

    def lin(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def test_logout_button_is_readable(chrome, live):
    _sign_in(chrome, live, "wangjing")
    button = chrome.find_element(By.ID, "logout")
    assert button.is_displayed() and button.text == "退出"
    fg = button.value_of_css_property("color")
    bg = button.value_of_css_property("background-color")
    assert _rgba(bg)[3] == 1.0, f"the button's background {bg} is not opaque"
    hi, lo = sorted([_luminance(fg), _luminance(bg)], reverse=True)
    ratio = (hi + 0.05) / (lo + 0.05)
    assert ratio >= 4.5, f"退出: text {fg} on {bg} has contrast {ratio:.2f} < 4.5"
