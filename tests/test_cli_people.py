"""The command line for people (issue 21.11 and 21.13): -h and --version, whole option names at
80 columns, one --date spelling, bilingual help, rounded scores, Beijing times with the zone, no
raw JSON from the stages, status and report counting hotspots alike, and `model evaluate`'s
refusal of unknown labels and its aligned per-class table."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pandas as pd
import pytest
import typer
from rich.cells import cell_len
from typer.testing import CliRunner

from triage.cli import app

runner = CliRunner()
CJK = re.compile(r"[\u4e00-\u9fff]")


def _commands() -> list[tuple[list[str], Any]]:
    """Every command and group, with the words that reach it."""
    out = []

    def walk(cmd: Any, path: list[str]) -> None:
        out.append((path, cmd))
        if hasattr(cmd, "commands"):  # a group (Typer bundles its own Click: no isinstance)
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def test_dash_h_and_version_everywhere():
    from importlib.metadata import version

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"triage {version('triage')}"
    for path, _ in _commands():
        r = runner.invoke(app, [*path, "-h"])
        assert r.exit_code == 0 and "Usage:" in r.output, (path, r.output)


def test_help_at_80_columns_shows_every_option_name_whole_and_bilingual():
    for path, cmd in _commands():
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
        assert r.exit_code == 0, (path, r.output)
        for p in cmd.params:
            if p.param_type_name == "option" and not p.hidden:
                for name in p.opts:
                    assert re.search(rf"(^|[\s,/]){re.escape(name)}([\s,/=]|$)", r.output, re.M), (path, name)
        if path:  # like the top-level line: Chinese, then English
            short = cmd.get_short_help_str(limit=200)
            assert CJK.search(short) and re.search(r"[A-Za-z]{3}", short), (path, short)


def test_the_night_is_date_everywhere_and_night_a_hidden_alias(env):
    night_cmds = []
    for path, cmd in _commands():
        names = {n: p for p in cmd.params if p.param_type_name == "option" for n in p.opts}
        assert not ("--night" in names and not names["--night"].hidden), path  # never listed
        if "--night" in names:
            assert "--date" in names and names["--night"].hidden, path
            night_cmds.append(path)
    assert {"ingest", "status", "report", "run-nightly"} <= {p[-1] for p in night_cmds}
    assert ["hotspots", "run"] in night_cmds and ["hotspots", "surges"] in night_cmds
    runner.invoke(app, ["db", "upgrade"])
    a = runner.invoke(app, ["status", "--date", "2026-11-20", "--json"])
    b = runner.invoke(app, ["status", "--night", "2026-11-20", "--json"])
    assert a.exit_code == b.exit_code == 0 and a.output == b.output
    r = runner.invoke(app, ["status", "--date", "2026-11-20", "--night", "2026-11-21"])
    assert r.exit_code == 2 and "disagree" in r.output


def test_model_list_rounds_and_token_list_shows_beijing_time(db, monkeypatch):
    from triage.auth import create_token, list_tokens
    from triage.cli import console

    monkeypatch.setattr(console, "width", 200)

    r = runner.invoke(app, ["model", "list"])
    assert r.exit_code == 0 and "macro-F1" in r.output
    assert not re.search(r"\d\.\d{5,}", r.output), r.output  # 0.928, not 0.9278257789915443
    assert re.search(r"macro-F1 \d\.\d{3} ", r.output) and re.search(r"coverage \d+\.\d%", r.output)
    assert re.search(r"trained \d{4}-\d\d-\d\d \d\d:\d\d \+08:00", r.output)

    create_token("clerk", "street", "110105026")
    created = list_tokens()[0]["created_at"]
    created = created.replace(tzinfo=dt.UTC) if created.tzinfo is None else created
    bj = created.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
    r = runner.invoke(app, ["token", "list"], terminal_width=200)
    assert r.exit_code == 0 and f"created {bj} +08:00" in r.output


def test_stages_print_sentences_not_json_and_status_counts_hotspots_like_the_report(
    db, tmp_path, monkeypatch
):
    from triage.cli import console
    from triage.cli.main import summarize_stage

    monkeypatch.setattr(console, "width", 300)
    from triage.store import HotspotEvent, HotspotSignal, get_engine

    night = dt.date(2026, 11, 20)
    r = runner.invoke(app, ["hotspots", "run", "--date", night.isoformat()])
    assert r.exit_code == 0, r.output
    assert "✓ hotspots: 0 surges" in r.output and "✓ proactive: 0 proactive tasks created" in r.output
    assert "{" not in r.output
    assert "{" not in summarize_stage("later_stage", {"rows": 3, "seconds": 1.2, "detail": {"a": 1}})

    # 3 street and 2 district surges, 20 events (the report lists the top 15)
    now = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    sig = {"night": night, "category": "street_vending", "observed": 9, "expected": 2.0, "p_value": 1e-5,
           "q_value": 1e-4, "method": "glm_nb", "history_days": 60, "significant": True}  # fmt: skip
    with get_engine().begin() as conn:
        conn.execute(
            HotspotSignal.__table__.insert(),
            [{**sig, "level": "street", "unit_code": c} for c in ("110105026", "110108001", "110105011")]
            + [{**sig, "level": "district", "unit_code": c} for c in ("110105", "110108")]
            + [{**sig, "level": "street", "unit_code": "110101001", "significant": False}],
        )
        conn.execute(
            HotspotEvent.__table__.insert(),
            [{"night": night, "event_key": f"e{i}", "street_code": "110105026", "district_code": "110105",
              "category": "street_vending", "place": "南湖西里", "title": f"事件{i}", "size": 3,
              "first_seen": now, "last_seen": now, "score": float(i), "member_ids": []} for i in range(20)],
        )  # fmt: skip
    st = runner.invoke(app, ["status", "--date", night.isoformat()])
    assert "hotspots: 5 surges (3 street, 2 district)" in st.output and "20 events" in st.output
    out = tmp_path / "r.html"
    assert runner.invoke(app, ["report", "--date", night.isoformat(), "--out", str(out)]).exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert re.search(r"<b>5</b><span>显著激增", html) and re.search(r"<b>20</b><span>热点事件", html)
    # the file holds no time (re-runs are identical); the ledger does, and status shows it
    assert runner.invoke(app, ["report", "--date", night.isoformat()]).exit_code == 0
    st = runner.invoke(app, ["status", "--date", night.isoformat()])
    assert re.search(
        r"report: \S+nightly-2026-11-20\.html \(written \d{4}-\d\d-\d\d \d\d:\d\d \+08:00\)", st.output
    )


# --- model evaluate (21.11) ------------------------------------------------------------------
@pytest.fixture(scope="module")
def chinese_model(tmp_path_factory):
    """A small model on Chinese labels (taxonomy none), trained once for the module."""
    tmp = tmp_path_factory.mktemp("zh")
    words = {"噪音扰民": "楼上装修噪音太大晚上还在施工", "占道经营": "小区门口有人占道摆摊卖水果",
             "供暖": "家里暖气不热室温只有十五度", "OK": "please fix the broken street light"}  # fmt: skip
    rows = [{"text": f"{t} 第{i}次", "label": lab} for lab, t in words.items() for i in range(8)]
    f = tmp / "train.csv"
    pd.DataFrame(rows).to_csv(f, index=False)
    out = tmp / "zh-model"
    r = runner.invoke(app, ["model", "train", "--input", str(f), "--text-col", "text", "--label-col", "label",
                            "--out", str(out), "--taxonomy", "none", "--min-class-size", "2"])  # fmt: skip
    assert r.exit_code == 0, r.output
    return out, words


def test_evaluate_refuses_unknown_labels_unless_allowed(chinese_model, tmp_path):
    model, words = chinese_model
    f = tmp_path / "eval.csv"
    pd.DataFrame(
        [{"text": words["噪音扰民"], "label": "噪音扰民"}, {"text": "路面有坑", "label": "道路破损"}]
    ).to_csv(f, index=False)
    args = [
        "model",
        "evaluate",
        "--model",
        str(model),
        "--input",
        str(f),
        "--text-col",
        "text",
        "--label-col",
        "label",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "'道路破损' (1)" in r.output and "--allow-unknown-labels" in r.output
    r = runner.invoke(app, [*args, "--allow-unknown-labels"])
    assert r.exit_code == 0 and "scored as errors" in r.output


def test_evaluate_table_keeps_columns_aligned_and_names_classes_absent_from_the_file(
    chinese_model, tmp_path, monkeypatch
):
    from triage.cli import console

    monkeypatch.setattr(console, "width", 120)
    model, words = chinese_model
    f = tmp_path / "eval.csv"
    pd.DataFrame(
        [{"text": words[k], "label": k} for k in ("噪音扰民", "供暖", "OK") for _ in range(2)]
    ).to_csv(f, index=False)
    r = runner.invoke(app, ["model", "evaluate", "--model", str(model), "--input", str(f), "--text-col", "text",
                            "--label-col", "label"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = [
        line
        for line in r.output.splitlines()
        if re.search(r"\d\.\d{3}\s+\d\.\d{3}\s+\d\.\d{3}\s+\d+\s*$", line)
    ]
    assert {line.split()[0] for line in rows} == {"噪音扰民", "供暖", "OK"}  # 占道经营 has no example here
    # the P column starts at the same display column on every row, Chinese label or not
    starts = {cell_len(line[: re.search(r"\d\.\d{3}", line).start()]) for line in rows}
    assert len(starts) == 1, r.output
    # a class the model predicted but the file has no example of is named, not scored as a row
    absent = [line for line in r.output.splitlines() if "absent from the file" in line]
    assert not absent or "占道经营" in absent[0]
