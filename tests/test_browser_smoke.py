"""The headless browser harness itself works: it renders a local page and sees console errors."""

from __future__ import annotations

import pytest

from tests.conftest import browser_errors

pytestmark = pytest.mark.browser


def test_chromium_renders_chinese_and_reports_console_errors(chrome, tmp_path):
    page = tmp_path / "p.html"
    page.write_text(
        '<!doctype html><meta charset="utf-8"><h1 id="t">接诉即办</h1><script>console.error("boom")</script>',
        encoding="utf-8",
    )
    chrome.get(page.as_uri())
    assert chrome.find_element("id", "t").text == "接诉即办"
    assert any("boom" in m for m in browser_errors(chrome))
