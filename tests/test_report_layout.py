"""The nightly report for people (issue 21.9): a contents bar linking every section, long tables
folded with their row counts, each table downloadable as CSV and XLSX from inside the one
self-contained file, and the same bytes when the night is re-run — checked in headless Chromium."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pandas as pd
from selenium.webdriver.common.by import By

from tests.conftest import browser_errors
from tests.test_report_hotspots import NIGHT, sample_night  # noqa: F401 - the module's fixture

DATA_URI = re.compile(
    r'<a href="data:([^;]+);(?:charset=utf-8;)?base64,([A-Za-z0-9+/=]+)" download="([^"]+)"'
)


def _report(sample_night) -> Path:  # noqa: F811
    return Path(sample_night["run"]["report"]["report"])


def test_rerunning_the_night_writes_the_same_bytes(sample_night, tmp_path):  # noqa: F811
    from triage.pipeline import report_stage
    from triage.report.nightly import write_nightly_report

    path = _report(sample_night)
    first = path.read_bytes()
    assert "生成时间".encode() not in first  # the time is in the ledger, not in the file
    report_stage(NIGHT)  # the same night again, as run-nightly would
    assert path.read_bytes() == first
    assert write_nightly_report(NIGHT, tmp_path / "again.html").read_bytes() == first


def test_contents_bar_folded_tables_and_downloads_inside_the_file(sample_night):  # noqa: F811
    html = _report(sample_night).read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from anywhere
    nav = re.search(r'<nav id="contents".*?</nav>', html, re.S).group(0)
    links = re.findall(r'href="#([^"]+)"', nav)
    assert links[:3] == ["headline", "files", "quarantine"] and "streets" in links and "hotspots" in links
    for target in links:
        assert f'<section id="{target}">' in html
    # every table: a <details> with its row count; long ones start folded
    tables = re.findall(
        r'<details class="tbl" id="t-([^"]+)"( open)?>\s*<summary><b>[^<]*</b> · ([\d,]+) 行', html
    )
    ids = {t[0] for t in tables}
    assert {"files", "categories", "streets", "surges", "tasks"} <= ids
    for tid, is_open, n in tables:
        assert (int(n.replace(",", "")) > 15) == (not is_open), tid
    streets = next(t for t in tables if t[0] == "streets")
    assert int(streets[2].replace(",", "")) > 15 and not streets[1]  # the long one is folded
    # the downloads: a CSV and an XLSX per table, holding exactly the rows shown
    links = DATA_URI.findall(html)
    by_name = {name: (mime, base64.b64decode(b64)) for mime, b64, name in links}
    assert len(by_name) == 2 * len(tables)
    for tid, _, n in tables:
        mime, csv = by_name[f"nightly-{NIGHT}-{tid}.csv"]
        assert mime == "text/csv" and csv.startswith(b"\xef\xbb\xbf")
        frame = pd.read_csv(io.BytesIO(csv), encoding="utf-8-sig")
        assert len(frame) == int(n.replace(",", "")), tid
        _, xlsx = by_name[f"nightly-{NIGHT}-{tid}.xlsx"]
        assert len(pd.read_excel(io.BytesIO(xlsx), engine="openpyxl")) == len(frame), tid
    cats = pd.read_csv(io.BytesIO(by_name[f"nightly-{NIGHT}-categories.csv"][1]), encoding="utf-8-sig")
    assert {"类别 category", "code", "工单 tickets", "占比 share %"} <= set(cats.columns)
    assert "13812345678" not in html  # masked, in the page and in the downloads
    assert all(b"13812345678" not in body for _, body in by_name.values())


def test_report_in_chromium_contents_links_fold_and_download(sample_night, chrome, tmp_path):  # noqa: F811
    path = _report(sample_night)
    browser_errors(chrome)
    chrome.set_window_size(1280, 900)
    chrome.get(path.as_uri())
    nav = chrome.find_element(By.ID, "contents")
    assert "概况" in nav.text and "街乡镇" in nav.text and "未诉先办" in nav.text
    chrome.find_element(By.CSS_SELECTOR, 'nav#contents a[href="#streets"]').click()
    assert chrome.execute_script("return location.hash") == "#streets"
    top = chrome.execute_script("return document.getElementById('streets').getBoundingClientRect().top")
    assert 0 <= top < 120  # scrolled to it, below the sticky bar
    folded = chrome.find_element(By.ID, "t-streets")
    assert folded.get_attribute("open") is None
    height = chrome.execute_script("return document.body.scrollHeight")
    folded.find_element(By.CSS_SELECTOR, "summary b").click()  # the title (the links download)
    assert folded.get_attribute("open") == "true"
    assert chrome.execute_script("return document.body.scrollHeight") > height  # the rows were there, folded
    # the download link is a data: URI the browser can fetch without any server
    href = folded.find_element(By.CSS_SELECTOR, "a.dl-csv").get_attribute("href")
    assert href.startswith("data:text/csv;charset=utf-8;base64,")
    assert (
        folded.find_element(By.CSS_SELECTOR, "a.dl-csv").get_attribute("download")
        == f"nightly-{NIGHT}-streets.csv"
    )
    text = base64.b64decode(href.split(",", 1)[1]).decode("utf-8-sig")
    assert text.startswith("街乡镇 street,code,")
    chrome.execute_script("window.scrollTo(0, 0)")
    chrome.save_screenshot(str(tmp_path / "report.png"))
    assert browser_errors(chrome) == []
