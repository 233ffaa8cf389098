"""Hotspot methods on data frames (no database): surges, event clustering, space-time scan."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from triage.hotspots.events import cluster_events, extract_places, heat_score
from triage.hotspots.scan import ScanParams, space_time_scan
from triage.hotspots.surges import SurgeParams, benjamini_hochberg, detect_surges

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data_samples"
TIPDM = REPO / "data_samples" / "real" / "tipdm2020c_sample"
NIGHT = dt.date(2026, 11, 20)


# --- surges ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def truth_counts() -> pd.DataFrame:
    """History + sample night with the generator's true categories and streets (truth is for
    tests only; this checks the detector itself, the DB test checks the product path)."""
    h = pd.read_parquet(
        SAMPLES / "history" / "tickets_2026-10-10_2026-11-19.parquet", columns=["ticket_id", "received_at"]
    )
    h = h.merge(pd.read_parquet(SAMPLES / "truth" / "history_labels.parquet"), on="ticket_id")
    n = pd.read_csv(SAMPLES / "truth" / "night_2026-11-20_labels.csv", dtype=str)
    n["received_at"] = "2026-11-20 12:00:00"
    d = pd.concat([h, n], ignore_index=True)
    return pd.DataFrame(
        {
            "day": pd.to_datetime(d["received_at"]).dt.date,
            "category": d["category"],
            "street": d["true_street_code"],
            "district": d["true_street_code"].str[:6],
        }
    )


def test_injected_surges_are_found_on_their_day(truth_counts):
    injected = json.loads((SAMPLES / "truth" / "injected.json").read_text())["surges"]
    for s in injected:
        day = dt.date.fromisoformat(s["day"])
        res = detect_surges(truth_counts, day)
        sig = res.signals[res.signals["significant"] & (res.signals["level"] == "street")]
        assert (s["street_code"], s["category"]) in set(zip(sig["unit"], sig["category"], strict=True)), s
        row = sig[(sig["unit"] == s["street_code"]) & (sig["category"] == s["category"])].iloc[0]
        assert row["observed"] >= s["extra_count"] and row["expected"] < row["observed"] / 3
        assert row["method"] == "glm_nb"
        # a night is not a flood of alarms: few street-level signals besides the injected ones
        assert len(sig) <= 4


def test_quiet_night_gives_few_false_alarms(truth_counts):
    injected_days = {
        s["day"] for s in json.loads((SAMPLES / "truth" / "injected.json").read_text())["surges"]
    }
    false = 0
    nights = [dt.date(2026, 11, 10) + dt.timedelta(days=i) for i in range(9)]
    for night in nights:
        if night.isoformat() in injected_days:
            continue
        false += int(detect_surges(truth_counts, night).signals["significant"].sum())
    assert false <= 3  # FDR 5 % over thousands of series and ~8 nights


def test_short_history_uses_ears_c2_and_no_history_tests_nothing():
    rng = np.random.default_rng(0)
    days = [NIGHT - dt.timedelta(days=i) for i in range(1, 12)]
    rows = [{"day": d, "category": "sanitation", "street": "110101001", "district": "110101"}
            for d in days for _ in range(rng.poisson(2))]  # fmt: skip
    rows += [{"day": NIGHT, "category": "sanitation", "street": "110101001", "district": "110101"}] * 15
    res = detect_surges(pd.DataFrame(rows), NIGHT)
    street = res.signals[res.signals["level"] == "street"].iloc[0]
    assert street["method"] == "ears_c2" and bool(street["significant"])
    assert any("EARS" in n for n in res.notes)
    # all tickets on one day: no history, no test, no crash
    one_day = pd.DataFrame(rows[-15:])
    r1 = detect_surges(one_day, NIGHT)
    assert r1.signals.empty and any("no surge test" in n for n in r1.notes)
    assert detect_surges(one_day.iloc[:0], NIGHT).signals.empty


def test_future_and_unordered_timestamps_are_handled(truth_counts):
    shuffled = truth_counts.sample(frac=1.0, random_state=1)
    future = pd.DataFrame([{"day": NIGHT + dt.timedelta(days=3), "category": "sanitation",
                            "street": "110113006", "district": "110113"}] * 50)  # fmt: skip
    res = detect_surges(pd.concat([shuffled, future]), NIGHT)
    base = detect_surges(truth_counts, NIGHT)
    assert any("after 2026-11-20 ignored" in n for n in res.notes)
    key = ["level", "unit", "category"]
    a = res.signals[res.signals.significant].sort_values(key)[key + ["observed"]].to_numpy().tolist()
    b = base.signals[base.signals.significant].sort_values(key)[key + ["observed"]].to_numpy().tolist()
    assert a == b


def test_min_count_and_benjamini_hochberg():
    p = np.array([0.01, 0.04, 0.03, 0.20])
    # hand computed: sorted 0.01 0.03 0.04 0.2 → 0.04, 0.06, 0.0533, 0.2 → monotone 0.04 .0533 .0533 .2
    assert np.allclose(benjamini_hochberg(p), [0.04, 0.05333333, 0.05333333, 0.2])
    rows = [{"day": NIGHT - dt.timedelta(days=i), "category": "x", "street": "s", "district": "d"}
            for i in range(1, 40, 7)]  # fmt: skip
    rows += [{"day": NIGHT, "category": "x", "street": "s", "district": "d"}] * 3
    res = detect_surges(pd.DataFrame(rows), NIGHT, SurgeParams(min_count=5))
    assert (res.signals["q"] < 0.05).any() and not res.signals["significant"].any()


# --- events ------------------------------------------------------------------------------------
def test_place_extraction_without_gazetteer():
    assert extract_places("我家住在丽发新城小区，附近搅拌站很吵") == ["丽发新城", "搅拌站"]
    assert extract_places("A市A5区魅力之城小区临街门面油烟") == ["魅力之城"]
    assert extract_places("A市经济学院强制学生实习")[0] == "经济学院"
    assert extract_places("常营福第小区旁的金嗓子KTV噪音扰民") == ["常营福第", "金嗓子KTV"]
    assert extract_places("宛平晓月苑社区晓月苑的住户") == ["晓月苑"]
    assert extract_places("路灯不亮，晚上很黑") == []
    assert extract_places("") == []


def _tickets(rows):
    return pd.DataFrame(rows, columns=["id", "title", "text", "time", "votes"])


def test_events_group_same_place_and_problem_and_score_them():
    rows = []
    for i in range(8):
        rows.append((f"a{i}", f"丽发新城小区旁搅拌站噪音扰民{i}", "丽发新城小区附近的搅拌站昼夜施工，噪音和粉尘严重。",
                     f"2019-11-{10 + i} 09:00", 3))  # fmt: skip
    for i in range(4):
        rows.append((f"b{i}", "伊景园滨河苑捆绑销售车位", "开发商要求购房必须同时购买车位，强制捆绑销售。",
                     f"2019-10-0{1 + i} 10:00", 0))  # fmt: skip
    rows.append(("c0", "路灯不亮", "晚上出行很不方便，希望修理。", "2019-11-02 08:00", 0))
    rows.append(("c1", "丽发新城小区物业费", "物业乱收费问题。", "2018-01-01 08:00", 0))  # outside 90 days
    df = _tickets(rows).sample(frac=1.0, random_state=2)  # input order must not matter
    ev, mem = cluster_events(df, "id", "text", "time", title_col="title", votes_col="votes")
    assert list(ev["size"][:2]) == [8, 4]
    top = ev.iloc[0]
    assert set(top["member_ids"]) == {f"a{i}" for i in range(8)}
    assert top["place"] in ("丽发新城", "搅拌站") and top["votes"] == 24
    assert top["first_seen"].startswith("2019-11-10") and top["last_seen"].startswith("2019-11-17")
    assert set(ev.iloc[1]["member_ids"]) == {f"b{i}" for i in range(4)}
    assert mem[df["id"] == "c0"].isna().all() and mem[df["id"] == "c1"].isna().all()
    assert ev["score"].is_monotonic_decreasing


def test_events_bad_input_does_not_crash():
    df = _tickets([("x", None, "没有地名的文字", "not a time", 0), ("y", "", "", "2020-01-01", 0)])
    ev, mem = cluster_events(df, "id", "text", "time", title_col="title")
    assert ev.empty and ev.attrs["skipped"] == 1 and mem.isna().all()
    ev2, _ = cluster_events(df.iloc[:0], "id", "text", "time")
    assert ev2.empty


def test_heat_score_rises_with_size_votes_recency_growth():
    base = heat_score(10, 8, 0, 1, 0, 90)
    assert heat_score(20, 8, 0, 1, 0, 90) > base
    assert heat_score(10, 8, 50, 1, 0, 90) > base
    assert heat_score(10, 8, 0, 60, 0, 90) < base
    assert heat_score(10, 8, 0, 1, 1.0, 90) > base
    assert heat_score(10, 8, 0, 10_000, 0, 90) >= base / 2 - 1e-9  # old events keep half


def test_real_messages_hot_issue_is_one_top_event():
    """Real TipDM messages: the 魅力之城 fumes/noise issue (every message naming the estate) is
    captured by one top-3 event at ≥ 60 % purity holding ≥ 50 % of those messages."""
    frames = [pd.read_csv(TIPDM / f, dtype=str) for f in
              ("messages_with_votes.csv", "messages_labeled.csv", "messages_with_replies.csv")]  # fmt: skip
    d = pd.concat(frames, ignore_index=True).drop_duplicates("留言编号")
    ev, _ = cluster_events(d, "留言编号", "留言详情", "留言时间", title_col="留言主题", votes_col="点赞数")
    truth = set(d[(d["留言主题"].fillna("") + d["留言详情"].fillna("")).str.contains("魅力之城")]["留言编号"])
    best = max(
        (len(set(m) & truth) / len(truth), len(set(m) & truth) / len(m)) for m in ev.head(3)["member_ids"]
    )
    assert best[0] >= 0.5 and best[1] >= 0.6


# --- space-time permutation scan ---------------------------------------------------------------
def _points(seed: int, inject: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    n = 1200
    df = pd.DataFrame(
        {"lat": 39.9 + r.random(n) * 0.18, "lon": 116.3 + r.random(n) * 0.23,
         "day": pd.Timestamp(NIGHT) - pd.to_timedelta(r.integers(0, 30, n), "D")}
    )  # fmt: skip
    if inject:
        df = pd.concat([df, pd.DataFrame(
            {"lat": 39.99 + r.normal(0, 0.004, inject), "lon": 116.41 + r.normal(0, 0.005, inject),
             "day": pd.Timestamp(NIGHT) - pd.to_timedelta(r.integers(0, 3, inject), "D")})])  # fmt: skip
    return df


def test_scan_power_on_injected_clusters():
    hits = []
    for seed in range(10):
        res = space_time_scan(_points(seed, 15), NIGHT, ScanParams(replicas=99, seed=seed))
        ok = bool(res.clusters) and abs(res.best["center_lat"] - 39.99) < 0.02 and res.best["days"] <= 4
        hits.append(ok)
    assert sum(hits) >= 8


def test_scan_false_alarm_rate_on_null_data():
    alarms = [bool(space_time_scan(_points(100 + s, 0), NIGHT, ScanParams(replicas=99, seed=s)).clusters)
              for s in range(20)]  # fmt: skip
    assert sum(alarms) <= 3  # nominal 5 %: 1 expected in 20


def test_scan_without_coordinates_is_skipped_with_a_note():
    df = _points(0, 0)
    df["lat"] = np.nan
    res = space_time_scan(df, NIGHT, ScanParams(replicas=9))
    assert res.clusters == [] and res.best is None and "scan skipped" in res.notes[-1]
    one_day = _points(0, 0).assign(day=pd.Timestamp(NIGHT))
    assert "one day" in space_time_scan(one_day, NIGHT, ScanParams(replicas=9)).notes[-1]


def test_scan_reports_secondary_clusters_apart_with_their_rows():
    df = _points(3, 15)
    r = np.random.default_rng(9)
    second = pd.DataFrame({"lat": 39.92 + r.normal(0, 0.004, 15), "lon": 116.33 + r.normal(0, 0.005, 15),
                           "day": pd.Timestamp(NIGHT) - pd.to_timedelta(r.integers(0, 3, 15), "D")})  # fmt: skip
    df = pd.concat([df, second], ignore_index=True)
    res = space_time_scan(df, NIGHT, ScanParams(replicas=99, seed=1))
    assert len(res.clusters) >= 2
    centres = sorted((round(c["center_lat"], 1), round(c["center_lon"], 1)) for c in res.clusters[:2])
    assert abs(centres[0][0] - 39.9) <= 0.05 and abs(centres[1][0] - 40.0) <= 0.05
    for c in res.clusters:
        assert c["p_value"] <= 0.05 and c["observed"] == len(c["rows"])
    # no two clusters share tickets
    rows = [set(c["rows"].tolist()) for c in res.clusters]
    assert all(not (a & b) for i, a in enumerate(rows) for b in rows[i + 1 :])
