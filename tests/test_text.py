"""Normalisation and PII masking: the functions every stored string goes through."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.text import caller_hash, clean_text, contains_pii, mask_phone, nfkc, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("東城區多福巷社區", "东城区多福巷社区"),  # traditional → simplified
        ("１２号楼ＡＢ", "12号楼AB"),  # full-width → half-width
        ("  多个\t\n空白\u3000字符  ", "多个 空白 字符"),
        ("零\u200b宽\ufeff字符", "零宽字符"),
        # a spreadsheet line break left escaped by a CSV conversion (as in the real TipDM export)
        ("上级领导:_x000D_\n　　我们是", "上级领导: 我们是"),
        ("制表_x0009_符_x0007_响铃", "制表 符响铃"),
        ("_x005F_ 与 _x4E2D_ 不是控制字符", "_x005F_ 与 _x4E2D_ 不是控制字符"),
        (None, ""),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("手机13812345678请回电", "手机138****5678请回电"),
        ("电话 138-1234-5678", "电话 138****5678"),
        ("+86 139 1234 5678", "139****5678"),
        ("座机010-62345678", "座机010-****5678"),
        ("联系电话62345678", "联系电话****5678"),
        ("身份证11010119900307123X", "身份证110***********123X"),
        ("身份證１１０１０１１９９００３０７１２３４", "身份证110***********1234"),
    ],
)
def test_pii_is_masked(raw, masked):
    assert clean_text(raw) == masked
    assert not contains_pii(clean_text(raw))


@pytest.mark.parametrize(
    "raw", ["金额20261120元", "共12345678元的预付卡", "2号楼3单元501", "工单BJ20261120-000123"]
)
def test_ordinary_numbers_are_not_masked(raw):
    assert clean_text(raw) == raw


def test_caller_hash_is_stable_salted_and_ignores_formatting():
    a = caller_hash("13812345678", "s1")
    assert a == caller_hash("+86 138-1234-5678", "s1")
    assert a != caller_hash("13812345678", "s2")
    assert "13812345678" not in a
    assert caller_hash("", "s1") is None
    assert mask_phone("13812345678") == "138****5678"


@settings(max_examples=2000, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list("ＡＢｚ０９！＂～　，。：；？（）\u3000abcAZ09 ,.投诉噪音臺灣體驗")
            + [
                "\u0301",
                "\u0308",
                "\u2460",
                "\ufb01",
                "\u3250",
                "\uff9e",
                "\uff76",
                "\u1100",
                "\u2126",
                "\u00b2",
            ]
        )
    )
)
def test_fast_nfkc_equals_unicode_nfkc(s):
    assert nfkc(s) == unicodedata.normalize("NFKC", s)
