"""Label compatibility files (taxonomy/label_compat_*.yaml): the shipped one is valid and covers
the 7 TipDM labels of the real data; a broken one is refused naming file, entry and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from triage.classify.compat import compat_for, load_compat
from triage.taxonomy import CATEGORY_CODES, TaxonomyError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "taxonomy" / "label_compat_tipdm7.yaml"


def test_shipped_file_covers_the_real_7_labels():
    c = load_compat(SHIPPED)
    labels = set(pd.read_csv(ROOT / "data_samples/real/tipdm2020c_train/messages_7label.csv")["label"])
    assert labels == c.labels
    assert all(set(codes) <= set(CATEGORY_CODES) for codes in c.codes.values())
    # every hand-labelled real message's code is compatible with its 7-label
    l29 = pd.read_csv(ROOT / "data_samples/real/tipdm_labeled29.csv").dropna(subset=["label7"])
    bad = l29[[cat not in c.codes[lab] for lab, cat in zip(l29["label7"], l29["category"], strict=True)]]
    assert bad.empty, bad[["message_id", "label7", "category"]]


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    p = tmp_path / "label_compat_x.yaml"
    text = SHIPPED.read_text(encoding="utf-8")
    assert old in text
    p.write_text(text.replace(old, new, 1), encoding="utf-8")
    return p


def test_unknown_code_names_file_entry_and_field(tmp_path):
    p = _broken(tmp_path, "codes: [education,", "codes: [schools,")
    with pytest.raises(TaxonomyError) as e:
        load_compat(p)
    msg = str(e.value)
    assert str(p) in msg and "#4 (教育文体)" in msg and "'codes'" in msg and "'schools'" in msg


def test_unmapped_label_is_refused(tmp_path):
    text = SHIPPED.read_text(encoding="utf-8")
    start = text.index("  - label: 卫生计生")
    p = tmp_path / "label_compat_x.yaml"
    p.write_text(text[:start], encoding="utf-8")
    with pytest.raises(TaxonomyError, match=r"label_compat_x\.yaml.*without an entry: 卫生计生"):
        load_compat(p)


def test_entry_for_undeclared_label_and_unknown_field(tmp_path):
    with pytest.raises(TaxonomyError, match=r"entry #3 \(交通\).*'label'.*not in 'labels'"):
        load_compat(_broken(tmp_path, "  - label: 交通运输", "  - label: 交通"))
    with pytest.raises(TaxonomyError, match=r"entry #1 \(城乡建设\), field 'colour'"):
        load_compat(_broken(tmp_path, "  - label: 城乡建设\n", "  - label: 城乡建设\n    colour: red\n"))


def test_label_set_matching_no_mapping_lists_unknown_labels_and_mappings(tmp_path):
    for f in SHIPPED.parent.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    assert compat_for({"交通运输", "卫生计生"}, tmp_path).name == "tipdm7"
    with pytest.raises(ValueError) as e:
        compat_for({"交通运输", "水电气", "户籍"}, tmp_path)
    msg = str(e.value)
    assert "户籍, 水电气" in msg and "label_compat_tipdm7.yaml (tipdm7:" in msg
