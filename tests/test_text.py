"""Normalisation and PII masking: the functions every stored string goes through."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.text import (
    caller_hash,
    clean_text,
    contains_pii,
    mask_phone,
    mask_pii,
    mask_text,
    nfkc,
    normalize,
)

ROOT = Path(__file__).resolve().parents[1]


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
        # the forms a reviewer found unmasked: right after Latin letters, 15-digit first-generation
        # IDs, spaced IDs, dictated Chinese numerals, country prefixes, brackets, dots, dashes
        ("身份证ID11010519900101123X。", "身份证ID110***********123X。"),
        ("老身份证110105900101123", "老身份证110********1123"),
        ("身份证 110105 19900101 1234", "身份证 110***********1234"),
        ("一三八一二三四五六七八是我电话", "138****5678是我电话"),
        ("手机号:幺三九 幺二三四 五六七八", "手机号:139****5678"),
        ("打008613812345678", "打138****5678"),
        ("电话8613812345678", "电话138****5678"),
        ("拨0 13812345678", "拨0 138****5678"),
        ("(010)62345678找王", "010-****5678找王"),
        ("+86-10-62345678", "010-****5678"),
        ("138.1234.5678", "138****5678"),
        ("138—1234—5678", "138****5678"),
        ("电话13812345678 2号楼", "电话138****5678 2号楼"),
        ("拨打 6234 5678", "拨打 ****5678"),
        # second review: IDs in any grouping, 两/洞 dictated, more phone words
        ("身份证号:110105 1990 0101 1234", "身份证号:110***********1234"),
        ("身份证号:110105-1990-0101-1234", "身份证号:110***********1234"),
        ("身份证号 110105 1990.01.01 1234", "身份证号 110***********1234"),
        ("身份证号110105 1990 0101 123X", "身份证号110***********123X"),
        ("1101 0519 9001 0112 34", "110***********1234"),
        ("电话幺三八两两三四五六七八", "电话138****5678"),
        ("手机号幺三九洞幺两三四五六七", "手机号139****4567"),
        ("固话 6234 5678", "固话 ****5678"),
        ("宅电62345678", "宅电****5678"),
        ("回电62345678", "回电****5678"),
        ("0731-88888888", "0731-****8888"),
        # third review: a bracketed mobile prefix, slashes, a 3 + 5 local number
        ("电话(138)1234-5678", "电话138****5678"),
        ("138/1234/5678", "138****5678"),
        ("宅电 623 45678", "宅电 ****5678"),
    ],
)
def test_pii_is_masked(raw, masked):
    assert clean_text(raw) == masked
    assert not contains_pii(clean_text(raw))


@pytest.mark.parametrize(
    "raw",
    [
        "金额20261120元",
        "共12345678元的预付卡",
        "2号楼3单元501",
        "工单BJ20261120-000123",
        "2021-11-13 15:30",
        "2021年11月13日至2022年1月1日",
        "一二三四五六七八九十",
        "订单号2021111312345678",
        "3号楼1-2-301室",
        # numbers that merely start with 0 are not landlines (no such area code, or too short)
        "发票代码 011001900111",
        "电费户号 0103456789",
        "编号 0012345678",
        "银行卡6222021990010112345",  # 19 digits: not an 18-digit ID
        "三三两两",
    ],
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


def test_caller_hash_is_an_hmac_that_legacy_hashes_convert_to():
    import hashlib
    import hmac

    from triage.text import legacy_caller_hash, rehash_legacy

    legacy = hashlib.sha256(b"s1:13812345678").hexdigest()[:20]  # what was stored before
    assert legacy_caller_hash("13812345678", "s1") == legacy
    new = caller_hash("13812345678", "s1")
    assert new == hmac.new(b"s1", legacy.encode(), hashlib.sha256).hexdigest()[:32] != legacy
    assert rehash_legacy(legacy, "s1") == new and len(new) == 32


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+86 138-1234-5678", "138****5678"),
        ("(010)62345678", "010****5678"),
        ("62345678", "****5678"),  # a local number: 3 + 4 shown would leave one digit hidden
        ("6234567", "****4567"),
        ("123", "****"),
    ],
)
def test_caller_number_shows_at_most_the_conventional_digits(phone, masked):
    assert mask_phone(phone) == masked


def test_unencodable_and_xml_invalid_characters_are_removed():
    # half an emoji from a broken JSON escape, and noncharacters that break XML output
    s = normalize("摊贩很多\ud83d结束\ufffe\uffff\ufdd0 😀")
    assert s == "摊贩很多结束 😀"
    s.encode("utf-8")  # does not raise


def test_masking_is_idempotent_on_every_sample_text():
    import pandas as pd

    texts = pd.read_parquet(ROOT / "data_samples/training/labeled_tickets.parquet")["text"]
    for t in texts.head(3000):
        once = clean_text(t)
        assert mask_pii(once) == once


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


def test_text_shown_to_people_is_normalised_before_masking():
    # staff's notes and older rows were never cleaned: full-width digits and zero-width characters
    assert mask_text("回电１３８１２３４５６７８") == "回电138****5678"
    assert mask_text("回电 138\u200b1234\u200b5678") == "回电 138****5678"
    assert mask_text("臺灣 ok") == "臺灣 ok"  # the script is kept
    assert mask_text(None) is None and mask_text("") == ""
    assert (
        mask_text("已处理，谢谢\u202e\ufffe\x01") == "已处理，谢谢"
    )  # as written, less invisible characters
