"""Address resolution on the tricky names callers actually use."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from triage.geo import get_resolver

# (address, district, street, community or None, method prefix)
CASES = [
    ("朝阳望京街道望京西园三区5号楼", "110105", "110105026", None, "address"),
    ("沙河镇七里渠南村", "110114", "110114004", "110114004218", "address:community"),  # 镇 → 地区
    ("东城区多福巷社区", "110101", "110101001", "110101001001", "address:community"),
    (
        "東城區多福巷社區１２號",
        "110101",
        "110101001",
        "110101001001",
        "address:community",
    ),  # traditional + full width
    (
        "回龙观龙泽苑",
        "110114",
        "110114012",
        "110114012006",
        "address:community",
    ),  # community in a split-off street
    ("东花市南里东区3号楼", "110101", "110101013", None, "address"),  # 东花市 not 花市
    ("花市枣苑", "110101", "110101013", "110101013003", "address:community"),
    ("朝阳区平房乡", "110105", "110105029", None, "address:street"),  # 乡 → 地区
    ("北七家镇", "110114", "110114115", None, "address:street"),
    ("长阳镇", "110111", "110111105", None, "address:street"),
    ("丰台新村街道", "110106", "110106010", None, "address:street"),
    ("大兴亦庄", "110115", "110115004", None, "address:street"),
    # a short unique stem naming a compound (钟鼓社区 → 钟鼓家园, 土井社区 → 土井北里)
    ("钟鼓家园", "110101", "110101002", "110101002004", "address:community"),
    ("土井北里5号楼", "110108", "110108028", "110108028015", "address:community"),
    # the official street name outranks a bare stem of another street (南苑)
    ("丰台区和义街道南苑北里一区14号楼", "110106", "110106016", None, "address:street"),
    # a community of another district never overrides the street named (太阳城 is in 昌平)
    ("仁和地区太阳城一区13号楼", "110113", "110113003", None, "address:street"),
    # a street named outright wins over an estate read as a community of another street
    # (南湖东园北 is in 东湖街道); they agree when the community is the named street's own
    ("朝阳区望京街道南湖东园北门", "110105", "110105026", None, "address:street"),
    ("朝阳区东湖街道南湖东园北", "110105", "110105043", "110105043002", "address:community"),
]


@pytest.mark.parametrize(("address", "district", "street", "community", "method"), CASES)
def test_resolves_tricky_names(address, district, street, community, method):
    r = get_resolver().resolve(address)
    assert (r.district_code, r.street_code) == (district, street), r
    if community:
        assert r.community_code == community
    assert r.method.startswith(method)
    assert 0 < r.confidence <= 1


@pytest.mark.parametrize(
    "address", ["我家楼下", "家附近", "小区门口", "平房漏水了", "新村", "", None, "钟鼓", "半壁店村"]
)
def test_no_street_is_invented_from_nothing(address):
    r = get_resolver().resolve(address)
    assert r.street_code is None


def test_street_candidates_put_the_resolution_first_then_other_named_streets():
    c = get_resolver().street_candidates("朝阳区望京街道花家地", "其实在酒仙桥那边")
    assert c[:2] == ["110105026", "110105011"]
    assert get_resolver().street_candidates("我家楼下", "") == []


def test_district_alone_never_yields_a_street():
    r = get_resolver().resolve("海淀区")
    assert (r.district_code, r.street_code, r.method) == ("110108", None, "address:district")


def test_ambiguous_area_gives_district_only():
    r = get_resolver().resolve("天通苑")  # 天通苑北 and 天通苑南 are both candidates
    assert (r.district_code, r.street_code) == ("110114", None)


def test_text_is_used_when_the_address_is_vague():
    r = get_resolver().resolve("小区门口", text="海淀区中关村街道某小区门口有人摆摊")
    assert r.street_code == "110108011" and r.method.startswith("text")


def test_structured_fields_win():
    r = get_resolver().resolve("家附近", district="昌平区", street="沙河地区")
    assert r.street_code == "110114004" and r.method.startswith("fields")


def test_cli_resolve_json(tmp_path):
    from triage.cli import app

    f = tmp_path / "addr.csv"
    pd.DataFrame({"addr": ["沙河镇七里渠南村", "家附近"], "txt": ["", "望京街道"]}).to_csv(f, index=False)
    out = CliRunner().invoke(
        app, ["geo", "resolve", "--input", str(f), "--address-col", "addr", "--text-col", "txt", "--json"]
    )
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.strip().splitlines()]
    assert rows[0]["street_code"] == "110114004" and rows[0]["method"] == "address:community"
    assert rows[1]["street_code"] == "110105026"
    missing = CliRunner().invoke(app, ["geo", "resolve", "--input", str(f), "--address-col", "nope"])
    assert missing.exit_code == 1 and "'nope' not found" in missing.output and "'addr'" in missing.output
