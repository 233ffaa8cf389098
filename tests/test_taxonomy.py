"""The taxonomy loads, has the 29 fixed codes, and a broken file names file, entry and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from triage.taxonomy import CATEGORY_CODES, TaxonomyError, clear_cache, load_taxonomy

REPO_TAX = Path(__file__).resolve().parent.parent / "taxonomy"


def test_builtin_taxonomy_is_complete_and_consistent():
    tax = load_taxonomy(REPO_TAX)
    assert tax.codes == list(CATEGORY_CODES)
    assert len(tax.codes) == 29
    outside = [c.code for c in tax.categories.values() if not c.in_special_action]
    assert outside == [
        "traffic_parking",
        "labor_social_security",
        "education",
        "health_medical",
        "consumer_rights",
        "other",
    ]
    assert {t.code: t.hours for t in tax.tiers.values()} == {
        "emergency": 2,
        "urgent": 24,
        "general": 168,
        "complex": 360,
    }
    assert tax.category("group_rental").clauses == ["(四)12", "(七)21"]
    assert tax.code_for("物业管理") == "property_management"
    keywords = tax.all_keywords()
    assert len(keywords) == len(set(keywords)), "a keyword must point to one category"
    for c in tax.categories.values():
        assert len(c.keywords) >= 20, c.code
        assert c.name and c.scope and c.sla_tier in tax.tiers


def _broken_copy(tmp_path: Path, mutate) -> Path:
    d = tmp_path / "tax"
    shutil.copytree(REPO_TAX, d)
    data = yaml.safe_load((d / "categories.yaml").read_text(encoding="utf-8"))
    mutate(data)
    (d / "categories.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    clear_cache()
    return d


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["categories"][3].update(sla_tier="whenever"),
            "entry #4 (group_rental), field 'sla_tier': unknown SLA tier",
        ),
        (
            lambda d: d["categories"][0].update(departments=["nobody"]),
            "entry #1 (street_vending), field 'departments': unknown department",
        ),
        (
            lambda d: d["categories"][0].update(clauses=["(四)99"]),
            "field 'clauses': clause '(四)99' does not exist",
        ),
        (lambda d: d["categories"][1].update(code="street_vending"), "duplicate code 'street_vending'"),
        (lambda d: d["categories"][2].pop("scope"), "entry #3 (wall_opening), field 'scope': Field required"),
        (lambda d: d["categories"].pop(), "categories missing: other"),
        (lambda d: d.pop("version"), "missing top-level 'version'"),
    ],
)
def test_broken_taxonomy_names_file_entry_and_field(tmp_path, mutate, expected):
    d = _broken_copy(tmp_path, mutate)
    with pytest.raises(TaxonomyError) as e:
        load_taxonomy(d)
    assert str(d / "categories.yaml") in str(e.value)
    assert expected in str(e.value)


def test_unparseable_yaml_is_reported(tmp_path):
    d = tmp_path / "tax"
    shutil.copytree(REPO_TAX, d)
    (d / "sla_tiers.yaml").write_text("tiers: [oops", encoding="utf-8")
    clear_cache()
    with pytest.raises(TaxonomyError, match="sla_tiers.yaml: not valid YAML"):
        load_taxonomy(d)
