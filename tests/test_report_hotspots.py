"""The analysts' report: the sample night's injected surges appear in it, hostile ticket text is
escaped and PII masked, and both editions render in headless Chromium without console errors."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import browser_errors
from triage.tables import write_table

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data_samples"
NIGHT = dt.date(2026, 11, 20)
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def sample_night(tmp_path_factory):
    """History (the tickets of the streets with injected surges, chosen with the truth file) plus
    the full sample night and a few hostile tickets, through the product's own nightly path."""
    import os

    from triage.config import reset_settings
    from triage.store import dispose_engines, upgrade

    tmp = tmp_path_factory.mktemp("report")
    old = {k: os.environ.get(k) for k in ("TRIAGE_VAR_DIR", "TRIAGE_DATABASE_URL", "TRIAGE_DB_SCHEMA")}
    os.environ["TRIAGE_VAR_DIR"] = str(tmp / "var")
    os.environ["TRIAGE_DATABASE_URL"] = f"sqlite:///{tmp / 'var' / 'triage.db'}"
    os.environ.pop("TRIAGE_DB_SCHEMA", None)
    dispose_engines()
    reset_settings()
    try:
        from triage.pipeline import run_nightly

        upgrade()
        injected = json.loads((SAMPLES / "truth" / "injected.json").read_text())
        streets = {s["street_code"] for s in injected["surges"] if s["day"] == NIGHT.isoformat()}
        hist = pd.read_parquet(SAMPLES / "history" / "tickets_2026-10-10_2026-11-19.parquet")
        labels = pd.read_parquet(SAMPLES / "truth" / "history_labels.parquet")
        keep = labels.loc[labels["true_street_code"].isin(streets), "ticket_id"]
        hist_inbox = tmp / "history" / "2026-11-19"
        write_table(hist[hist["ticket_id"].isin(keep)], hist_inbox / "history.parquet")
        run_nightly(dt.date(2026, 11, 19), tmp / "history")
        inbox = tmp / "inbox" / NIGHT.isoformat()
        shutil.copytree(SAMPLES / "inbox" / NIGHT.isoformat(), inbox)
        hostile = pd.DataFrame(
            {
                "ticket_id": [f"X{i}" for i in range(12)],
                "received_at": [f"2026-11-{14 + i % 7} 1{i % 10}:00:00" for i in range(12)],
                "title": [f"{HOSTILE}垡头北里3号楼飞线充电" for _ in range(12)],
                "text": [
                    f"{HOSTILE}垡头北里3号楼楼道里电动车飞线充电，太危险了。来电人电话13812345678"
                    for _ in range(12)
                ],
                "address": ["朝阳区垡头街道垡头北里3号楼"] * 12,
                "channel": ["电话"] * 12,
                "caller_phone": ["13812345678", "13912345679", "13612345670"] * 4,
            }
        )
        write_table(hostile, inbox / "hostile.csv")
        out = run_nightly(NIGHT, tmp / "inbox")
        yield {"tmp": tmp, "injected": injected, "run": out}
    finally:
        dispose_engines()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_settings()


def test_injected_surges_of_the_sample_night_are_in_the_report(sample_night):
    html = Path(sample_night["run"]["report"]["report"]).read_text(encoding="utf-8")
    rows = re.findall(r'<tr class="surge">(.*?)</tr>', html, flags=re.S)
    from triage.taxonomy import load_taxonomy

    tax = load_taxonomy()
    tonight = [s for s in sample_night["injected"]["surges"] if s["day"] == NIGHT.isoformat()]
    assert len(tonight) == 3
    for s in tonight:
        name = tax.categories[s["category"]].name
        assert any(s["street_name"] in r and s["street_code"] in r and name in r for r in rows), s
    assert sample_night["run"]["hotspots"]["surges"] >= 3
    assert sample_night["run"]["proactive"]["tasks_created"] >= 3
    assert "主动治理任务" in html and "激增" in html


def test_hostile_ticket_text_is_escaped_and_masked(sample_night):
    html = Path(sample_night["run"]["report"]["report"]).read_text(encoding="utf-8")
    assert "垡头北里3号楼" in html  # the hostile tickets are shown (event drill-down)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert "13812345678" not in html


def test_monthly_edition_and_cli_out(sample_night, tmp_path):
    from typer.testing import CliRunner

    from triage.cli import app

    out = tmp_path / "m.html"
    r = CliRunner().invoke(app, ["report", "--month", "2026-11", "--out", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    assert "接诉即办月度治理报告" in html and "每月一题" in html and "治理类街乡镇" in html
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    r2 = CliRunner().invoke(app, ["report", "--date", "2026-11-20", "--out", str(tmp_path / "n.html")])
    assert r2.exit_code == 0 and (tmp_path / "n.html").exists()
    bad = CliRunner().invoke(app, ["report", "--month", "2026-13"])
    assert bad.exit_code == 2


@pytest.mark.browser
def test_reports_render_in_headless_chromium(sample_night, chrome, tmp_path):
    from triage.report.analysts import write_monthly_report

    nightly = Path(sample_night["run"]["report"]["report"])
    monthly = write_monthly_report("2026-11", tmp_path / "monthly.html")
    for page in (nightly, monthly):
        browser_errors(chrome)  # clear
        chrome.get(page.as_uri())
        assert "接诉即办" in chrome.title
        shot = tmp_path / (page.stem + ".png")
        assert chrome.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        assert browser_errors(chrome) == []
        assert chrome.find_elements("css selector", "svg polyline")  # the inline charts drew
    chrome.get(nightly.as_uri())
    details = chrome.find_elements("css selector", "details.event")
    assert details
    details[0].click()  # drill down into an event's member tickets
    assert details[0].find_elements("css selector", "table tr td code")
    assert chrome.execute_script("return typeof window.alert_called") == "undefined"
