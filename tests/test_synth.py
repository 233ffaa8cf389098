"""Tests for the seeded synthetic ticket generator (triage.synth)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import numpy as np
import pandas as pd
import pytest

from triage.synth import CATEGORY_CODES, SynthResult, generate_tickets
from triage.synth.places import LAT_RANGE, LON_RANGE, load_places

N = 20_000
INPUT_COLUMNS = [
    "ticket_id",
    "received_at",
    "title",
    "text",
    "address",
    "district",
    "street",
    "community",
    "channel",
    "caller_phone",
    "lat",
    "lon",
]
LABEL_COLUMNS = ["category", "true_street_code", "true_community_code"]
MOBILE = re.compile(r"(?<!\d)1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")
LANDLINE = re.compile(r"(?:010-?|（010）)6\d{7}(?!\d)")
IDNO = re.compile(r"(?<![0-9])\d{17}[\dX](?![0-9])")
FULLWIDTH = re.compile(r"[０-９Ａ-Ｚａ-ｚ]")
_ID_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@pytest.fixture(scope="module")
def res() -> SynthResult:
    return generate_tickets(N, seed=5)


@pytest.fixture(scope="module")
def df(res) -> pd.DataFrame:
    return res.tickets


@pytest.fixture(scope="module")
def nfkc(df) -> pd.Series:
    return df["text"].map(lambda s: unicodedata.normalize("NFKC", s))


# ---- determinism ---------------------------------------------------------------------------


def test_same_seed_is_byte_identical():
    a = generate_tickets(3000, seed=1)
    b = generate_tickets(3000, seed=1)
    pd.testing.assert_frame_equal(a.tickets, b.tickets)
    assert a.tickets.to_csv(index=False).encode() == b.tickets.to_csv(index=False).encode()
    assert a.truth == b.truth


def test_different_seed_differs():
    a = generate_tickets(3000, seed=1).tickets
    b = generate_tickets(3000, seed=2).tickets
    assert not a.equals(b)
    assert (a["text"] != b["text"]).mean() > 0.99


def test_unlabeled_has_same_inputs_without_labels():
    lab = generate_tickets(2000, seed=3).tickets
    unl = generate_tickets(2000, seed=3, labeled=False).tickets
    assert list(unl.columns) == INPUT_COLUMNS
    pd.testing.assert_frame_equal(lab[INPUT_COLUMNS], unl)


# ---- schema ----------------------------------------------------------------------------------


def test_columns_and_dtypes(df):
    assert list(df.columns) == INPUT_COLUMNS + LABEL_COLUMNS
    assert len(df) == N
    for c in INPUT_COLUMNS + LABEL_COLUMNS:
        if c in ("lat", "lon"):
            assert df[c].dtype == np.float64
        else:
            assert pd.api.types.is_string_dtype(df[c]), c
            assert df[c].dropna().map(type).eq(str).all(), c
    for c in (
        "ticket_id",
        "received_at",
        "text",
        "channel",
        "category",
        "true_street_code",
        "true_community_code",
    ):
        assert df[c].notna().all(), c


def test_ticket_ids_unique_and_dated(df):
    assert df["ticket_id"].is_unique
    assert df["ticket_id"].str.fullmatch(r"BJ\d{8}-\d{6}").all()
    ymd = df["received_at"].str.slice(0, 10).str.replace("-", "")
    assert (df["ticket_id"].str.slice(2, 10) == ymd).all()
    other = generate_tickets(50, seed=1, id_prefix="TJ", surges=False, events=False).tickets
    assert other["ticket_id"].str.startswith("TJ").all()


def test_received_at_period_and_rhythm(df):
    assert df["received_at"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all()
    ts = pd.to_datetime(df["received_at"])
    assert ts.min() >= pd.Timestamp("2026-10-10") and ts.max() < pd.Timestamp("2026-11-21")
    assert ts.dt.normalize().nunique() == 42
    assert list(df["received_at"]) == sorted(df["received_at"])  # export order: by time
    hours = ts.dt.hour.value_counts(normalize=True)
    peak = hours.reindex([9, 10, 11, 14, 15, 16, 17]).mean()
    night = hours.reindex([1, 2, 3, 4]).fillna(0).mean()
    assert peak > 5 * night
    assert hours.get(23, 0) > 0  # some late-night noise complaints
    per_day = ts.dt.normalize().value_counts()
    wd = per_day[per_day.index.day_of_week < 5].mean()
    we = per_day[per_day.index.day_of_week >= 5].mean()
    assert wd > 1.15 * we


def test_custom_period():
    r = generate_tickets(500, seed=4, start=date(2026, 1, 1), end=date(2026, 1, 10))
    ts = pd.to_datetime(r.tickets["received_at"])
    assert ts.min() >= pd.Timestamp("2026-01-01") and ts.max() < pd.Timestamp("2026-01-11")
    assert all("2026-01-01" <= s["day"] <= "2026-01-10" for s in r.truth["surges"])


@pytest.mark.parametrize("n", [0, 1, 59, 200])
def test_small_n(n):
    r = generate_tickets(n, seed=9)
    assert len(r.tickets) == n
    assert list(r.tickets.columns) == INPUT_COLUMNS + LABEL_COLUMNS


# ---- content -----------------------------------------------------------------------------------


def test_labels_and_mix(df):
    assert set(df["category"]) == set(CATEGORY_CODES)
    assert len(CATEGORY_CODES) == 29
    share = df["category"].value_counts(normalize=True)
    assert share.index[0] == "property_management"
    assert 0.09 < share["property_management"] < 0.15
    assert share["road_handover"] < 0.01


def test_text_lengths_and_variety(df):
    n = df["text"].str.len()
    assert n.min() >= 20 and n.max() <= 600
    assert 140 <= n.mean() <= 260
    assert df["text"].nunique() / len(df) > 0.95
    t = df["title"].dropna()
    t = t[t != ""]
    assert t.str.len().between(5, 30).all()
    assert 0.10 < 1 - len(t) / len(df) < 0.20


def test_pii_rates(nfkc):
    phone = nfkc.str.contains(MOBILE) | nfkc.str.contains(LANDLINE)
    ids = nfkc.str.extract(f"({IDNO.pattern})", expand=False).dropna()
    assert 0.06 < phone.mean() < 0.10
    assert 0.02 < len(ids) / len(nfkc) < 0.045
    for x in ids:  # valid-looking: ISO 7064 mod 11-2 check character
        s = sum(int(c) * w for c, w in zip(x[:17], _ID_W, strict=True))
        assert x[17] == "10X98765432"[s % 11]


def test_traditional_and_fullwidth_rows(df):
    import opencc

    t2s = opencc.OpenCC("t2s")
    trad = df["text"].head(5000).map(lambda s: t2s.convert(s) != s).mean()
    assert 0.03 < trad < 0.08
    assert 0.03 < df["text"].str.contains(FULLWIDTH).mean() < 0.08


def test_structured_fields(df):
    places = load_places()
    st = places.streets.set_index("code")
    cm = places.comms.set_index("code")
    assert 0.33 < df["district"].notna().mean() < 0.47
    sub = df[df["district"].notna()]
    assert (sub["district"] == st.loc[sub["true_street_code"], "district_name"].to_numpy()).all()
    sub = df[df["street"].notna()]
    assert (sub["street"] == st.loc[sub["true_street_code"], "name"].to_numpy()).all()
    sub = df[df["community"].notna()]
    assert (sub["community"] == cm.loc[sub["true_community_code"], "short"].to_numpy()).all()
    assert (
        cm.loc[df["true_community_code"], "street_code"].to_numpy() == df["true_street_code"].to_numpy()
    ).all()
    geo = df.dropna(subset=["lat", "lon"])
    assert 0.45 < len(geo) / len(df) < 0.55
    assert geo["lat"].between(*LAT_RANGE).all() and geo["lon"].between(*LON_RANGE).all()
    assert df["lat"].isna().equals(df["lon"].isna())
    assert set(df["channel"]) <= {"电话", "网站", "微信", "App", "微博"}
    assert df["channel"].value_counts().index[0] == "电话"
    ph = df["caller_phone"].dropna()
    assert 0.8 < len(ph) / len(df) < 0.9
    assert ph.str.fullmatch(r"1[3-9]\d{9}").all()
    assert ph.value_counts().iloc[0] >= 5  # frequent callers


def test_addresses_use_real_names(df):
    places = load_places()
    cm = places.comms.set_index("code")
    st = places.streets.set_index("code")
    empty = df["address"].isna() | (df["address"] == "")
    assert 0.07 < empty.mean() < 0.14
    sub = df[~empty].head(3000)
    hits = 0
    for addr, cc, sc in zip(sub["address"], sub["true_community_code"], sub["true_street_code"], strict=True):
        a = unicodedata.normalize("NFKC", addr)
        names = list(cm.at[cc, "estates"]) + [cm.at[cc, "short"]] + list(st.at[sc, "spoken"])
        hits += any(n in a for n in names)
    assert hits / len(sub) > 0.85  # the rest: "我家楼下", traditional script ...
    suburban = df[df["true_street_code"] == "110114004"]["address"].dropna()  # 沙河地区
    assert suburban.str.contains("沙河镇|沙河").any()


def test_spatial_skew(df):
    top = df["true_street_code"].value_counts()
    places = load_places()
    names = places.streets.set_index("code").loc[top.index[:25], "name"].tolist()
    assert {"回龙观街道", "沙河地区", "北七家镇", "长阳镇"} & set(names)
    assert top.iloc[0] > 5 * top.median()


# ---- injected signals -----------------------------------------------------------------------


def test_events_truth(res, df):
    import opencc

    t2s = opencc.OpenCC("t2s")
    events = res.truth["events"]
    assert 4 <= len(events) <= 6
    by_id = df.set_index("ticket_id")
    for ev in events:
        ids = ev["ticket_ids"]
        assert 10 <= len(ids) <= 60
        rows = by_id.loc[ids]
        assert (rows["true_community_code"] == ev["community_code"]).all()
        assert (rows["true_street_code"] == ev["street_code"]).all()
        assert (rows["category"] == ev["category"]).all()
        days = pd.to_datetime(rows["received_at"]).dt.normalize()
        assert (days.max() - days.min()).days <= 28
        text = rows["text"].map(lambda s: unicodedata.normalize("NFKC", t2s.convert(s)))
        assert text.str.contains(t2s.convert(ev["place_name"]), regex=False).mean() > 0.9
        counts = rows["caller_phone"].value_counts()
        assert (counts >= 2).sum() >= 2  # several repeat callers
        assert len(set(rows["text"])) == len(rows)  # varied wording


def test_surges_truth(res, df):
    surges = res.truth["surges"]
    assert 3 <= len(surges) <= 5
    assert any(s["day"] == "2026-11-20" for s in surges)
    assert sum(s["day"] < "2026-11-14" for s in surges) <= 1  # mostly in the last 7 days
    by_id = df.set_index("ticket_id")
    day = df["received_at"].str.slice(0, 10)
    for s in surges:
        assert 8 <= s["extra_count"] <= 25
        assert len(s["ticket_ids"]) == s["extra_count"]
        rows = by_id.loc[s["ticket_ids"]]
        assert (rows["true_street_code"] == s["street_code"]).all()
        assert (rows["category"] == s["category"]).all()
        assert (rows["received_at"].str.slice(0, 10) == s["day"]).all()
        cell = (
            (df["true_street_code"] == s["street_code"])
            & (df["category"] == s["category"])
            & (day == s["day"])
        ).sum()
        assert cell >= s["extra_count"]


def test_injection_can_be_switched_off():
    r = generate_tickets(2000, seed=8, surges=False, events=False)
    assert r.truth["surges"] == [] and r.truth["events"] == []
    assert len(r.tickets) == 2000
