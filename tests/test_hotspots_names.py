"""Hotspot events as a person reads them: dates on Beijing's calendar, place names a person would
write, organisation / case events city-wide. Real SQLite and PostgreSQL through the `db` fixture."""

from __future__ import annotations

import datetime as dt

NIGHT = dt.date(2026, 11, 20)
WANGJING = "110105026"  # 望京街道
CAT = "street_vending"


def _seed(
    conn,
    n: int,
    at: dt.datetime,
    street: str = WANGJING,
    cat: str = CAT,
    title: str = "占道摆摊",
    text: str = "花家地西里门口有人占道摆摊卖水果",
    caller: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    community: str | None = None,
) -> str:
    from triage.store import Prediction, QueueItem, Ticket

    tid = f"N{n:05d}"
    local = at.astimezone(dt.timezone(dt.timedelta(hours=8)))
    conn.execute(
        Ticket.__table__.insert(),
        {"ticket_id": tid, "received_at": at, "received_date": local.date(), "night": NIGHT, "title": title,
         "text": text, "address": "", "channel": "phone", "content_hash": f"h{n}", "shard": 0,
         "caller_hash": caller or f"c{n}", "lat": lat, "lon": lon},
    )  # fmt: skip
    conn.execute(
        Prediction.__table__.insert(),
        {"ticket_id": tid, "category": cat, "confidence": 0.9, "top3": [], "needs_review": False,
         "model_version": "test"},
    )  # fmt: skip
    conn.execute(
        QueueItem.__table__.insert(),
        {"kind": "ticket", "ticket_id": tid, "queue": "street", "street_code": street,
         "located_street_code": street, "community_code": community, "district_code": street[:6], "category": cat, "lead_unit": "street_office", "departments": [],
         "sla_tier": "general", "priority": 3, "due_at": at + dt.timedelta(days=3), "status": "dispatched",
         "return_count": 0, "escalated": False, "version": 1, "created_at": at, "updated_at": at},
    )  # fmt: skip
    return tid


def test_event_dates_are_beijing_days_once(db):
    """The last ticket at 22:53 Beijing time on 11-20 (14:53 UTC) is an event last seen on 11-20,
    not 11-21 (the stored time was read as UTC and converted to Beijing time a second time)."""
    from triage.hotspots.stage import run_hotspots
    from triage.report.analysts import hotspot_section
    from triage.store import HotspotEvent, get_engine, upgrade

    upgrade()
    last = dt.datetime(2026, 11, 20, 14, 53, tzinfo=dt.UTC)  # 22:53 in Beijing
    first = dt.datetime(2026, 11, 17, 16, 30, tzinfo=dt.UTC)  # 11-18 00:30 in Beijing
    with get_engine().begin() as conn:
        for i in range(5):
            _seed(conn, i, first + (last - first) * i / 4)
    run_hotspots(NIGHT)
    from sqlalchemy import select

    with get_engine().connect() as conn:
        ev = conn.execute(select(HotspotEvent).where(HotspotEvent.night == NIGHT)).all()
    assert len(ev) == 1
    assert ev[0].last_seen == last and ev[0].first_seen == first
    shown = hotspot_section(NIGHT)["events"][0]
    assert (shown["first"], shown["last"]) == ("11-18", "11-20")


def test_migration_0010_adds_and_removes_the_hotspot_columns(db):
    from sqlalchemy import inspect

    from triage.store import get_engine, upgrade
    from triage.store.db import downgrade

    upgrade()
    cols = {c["name"] for c in inspect(get_engine()).get_columns("hotspot_events")}
    assert {"kind", "voices", "baseline_7d", "surprise"} <= cols
    assert "units" in {c["name"] for c in inspect(get_engine()).get_columns("scan_clusters")}
    downgrade(revision="0004")
    cols = {c["name"] for c in inspect(get_engine()).get_columns("hotspot_events")}
    assert not {"kind", "voices", "baseline_7d", "surprise"} & cols
    assert "units" not in {c["name"] for c in inspect(get_engine()).get_columns("scan_clusters")}
    upgrade()


def test_place_names_are_names_not_sentence_fragments():
    from triage.hotspots.events import extract_places

    # fragments the sample night and the real messages produced as "places"
    for text in ("电梯坏了人只能爬楼", "老板说公司不发工资", "前段时间隔壁装修", "严重时楼道里全是烟",
                 "临时板房里住了人", "业主群里都在说", "好几次医院都不收", "跟政府反映过", "我们住宅小区的",
                 "当地政府不管", "民办学校乱收费"):  # fmt: skip
        assert extract_places(text) == [], text
    assert extract_places("朝阳区望京街道花家地西里3号楼") == ["花家地西里"]  # not "地西里"
    assert extract_places("家住丽发新城小区") == ["丽发新城"]


def test_organisation_names_and_generic_ones():
    from triage.hotspots.names import case_words, extract_orgs

    assert extract_orgs("市程明物业管理有限公司未经业主同意收费") == ["程明物业"]
    # 体育学院: a department, generic
    assert extract_orgs("A市经济学院体育学院变相强制实习") == ["A市经济学院"]
    # a type every city has is a name only with its city or district before it
    assert extract_orgs("K2区职业技术学院强制实习") == ["K2区职业技术学院"]
    assert extract_orgs("孩子在理工大学读书被强制实习") == []
    assert extract_orgs("湾田学校乱收费") == ["湾田学校"]  # 湾田: a name jieba does not know
    # type words jieba tags as names (外国语 nz, 师范 nr)
    assert extract_orgs("孩子在外国语学校被强制补课") == extract_orgs("师范学校翻新") == []
    assert extract_orgs("A5区外国语学校强迫学生补课") == ["A5区外国语学校"]
    # the platform and its company are one key
    assert extract_orgs("我在鑫利贷平台投了钱") == extract_orgs("鑫利贷投资管理有限公司跑路") == ["鑫利贷"]
    from triage.synth.generator import _ORG_BRANDS

    for brand in _ORG_BRANDS:  # brands whose last word jieba tags a verb (金诚优选, 安信通) too
        assert extract_orgs(f"举报{brand}平台非法集资") == [brand], brand
    for generic in ("公司不发工资", "学校乱收费", "当地政府", "私立学校", "开发有限公司"):
        assert extract_orgs(generic) == [], generic
    # a date in front of a kind word is not a name (compact real messages: "2016年11月公司…")
    for dated in ("2016年11月公司拖欠工资", "根源月24日医院乱收费"):
        assert extract_orgs(dated) == [], dated
    assert case_words("涉嫌非法集资和诈骗") == ["诈骗", "非法集资"]


def test_sentence_words_offices_and_former_companies_are_not_names():
    """Rules from the fresh real-name sample (bench/hotspots_name_sample.py, dev half)."""
    from triage.hotspots.names import extract_orgs, merge_variants

    # a government office is whom one writes to; "原X公司" is the former X company (航运: a trade)
    assert extract_orgs("请环保局平台尽快处理") == extract_orgs("原航运公司职工社保问题") == []
    # people and 开发商 before a name are words of the sentence
    assert extract_orgs("居民艾恩米国际幼儿园占用绿地") == ["艾恩米国际幼儿园"]
    assert extract_orgs("开发商燃气公司乱收费") == extract_orgs("第一中标候选人华科技股份有限公司") == []
    # a hospital's type (中医) is a name only with its county before it
    assert extract_orgs("投诉中医医院乱收费") == []
    assert extract_orgs("K3县中医医院违法行为") == ["K3县中医医院"]
    # an affiliated hospital is named with its university, and is no name without it
    assert extract_orgs("D市南华大学附一医院导致瘫痪") == ["南华大学", "南华大学附一医院"]
    assert extract_orgs("中南大学楚雅附一医院诊断") == ["中南大学", "楚雅附一医院"]
    assert extract_orgs("投诉附一医院") == []
    # keys that are another key with ordinary words in front are that key; a proper name in
    # front (楚雅) is part of the name; an ordinary word (办法) is no key to merge into
    keys = {
        "共识鑫霖",
        "原则鑫霖",
        "鑫霖",
        "楚雅附一医院",
        "附一医院",
        "在办分校雅礼中学",
        "雅礼中学",
        "新办法",
        "办法",
    }
    assert merge_variants(keys) == {"共识鑫霖": "鑫霖", "原则鑫霖": "鑫霖", "在办分校雅礼中学": "雅礼中学"}


def test_an_anonymous_message_posted_twice_is_one_voice():
    """Without callers, two copies of one message are one voice: a name they share is no
    organisation case at 2 voices; two different messages are two voices; known callers count
    as before, however alike their texts (a joint letter)."""
    import pandas as pd

    from triage.hotspots.events import EventParams, cluster_events

    post = "投诉泰兆建材有限公司夜间生产噪音扰民，粉尘很大，周边居民无法休息，请尽快查处"
    other = "泰兆建材有限公司的货车天天超载，路面被压坏，希望交通部门管一管"
    p = EventParams(org_min_voices=2)

    def orgs(texts, callers=None):
        df = pd.DataFrame({"id": [f"m{i}" for i in range(len(texts))], "t": "2026-11-10 10:00",
                           "text": texts, "caller": callers or [None] * len(texts)})  # fmt: skip
        ev, _ = cluster_events(df, "id", "text", "t", caller_col="caller", params=p)
        return sorted(ev.loc[ev["kind"] == "org", "place"]) if len(ev) else []

    assert orgs([post, post + "。"]) == []  # the same message twice
    assert orgs([post, other]) == ["泰兆建材"]  # two messages
    assert orgs([post, post], callers=["c1", "c2"]) == ["泰兆建材"]  # two callers, one text


def test_one_caller_is_one_voice_and_no_place_no_event():
    import pandas as pd

    from triage.hotspots.events import cluster_events

    same = pd.DataFrame({"id": [f"a{i}" for i in range(50)],
                         "t": [f"2026-11-{1 + i % 20:02d} 10:00" for i in range(50)],
                         "text": ["鑫利贷平台不给退款，请处理"] * 50, "caller": ["c1"] * 50})  # fmt: skip
    nameless = pd.DataFrame({"id": [f"b{i}" for i in range(6)], "t": ["2026-11-10 10:00"] * 6,
                             "text": [f"今天{i}点楼下很吵，睡不着" for i in range(6)],
                             "caller": [f"x{i}" for i in range(6)]})  # fmt: skip
    ev, _ = cluster_events(pd.concat([same, nameless]), "id", "text", "t", caller_col="caller")
    orgs = ev[ev["kind"] == "org"]
    assert orgs.empty  # one voice is not an organisation case
    assert set(ev["voices"]) <= {1, 6} and (ev.loc[ev["size"] == 50, "voices"] == 1).all()
    assert ev["place"].isna().all()  # nothing named: no place invented


def test_a_company_case_across_districts_is_one_event(db, tmp_path):
    """The generated lending-platform case (callers in 4 districts, different words) through ingest,
    classify, route and the hotspot stage: one organisation event holding its tickets."""
    from sqlalchemy import select

    from triage.classify.batch import classify_pending
    from triage.hotspots.stage import run_hotspots
    from triage.ingest import ingest_file
    from triage.route import route_pending
    from triage.store import HotspotEvent, get_engine
    from triage.synth import generate_tickets
    from triage.tables import write_table

    res = generate_tickets(1500, seed=5, start=NIGHT - dt.timedelta(days=30), end=NIGHT, org_cases=1)
    path = write_table(res.tickets.drop(columns=["category", "true_street_code", "true_community_code"]),
                       tmp_path / "t.parquet")  # fmt: skip
    ingest_file(path, night=NIGHT)
    classify_pending()
    route_pending()
    run_hotspots(NIGHT)
    case = res.truth["org_cases"][0]
    assert len(case["districts"]) >= 3
    with get_engine().connect() as conn:
        evs = conn.execute(select(HotspotEvent).where(HotspotEvent.night == NIGHT)).all()
    best = max(evs, key=lambda e: len(set(e.member_ids) & set(case["ticket_ids"])))
    assert best.kind == "org" and best.place == case["org"]
    assert len(set(best.member_ids) & set(case["ticket_ids"])) >= 0.9 * len(case["ticket_ids"])
    assert len(set(best.member_ids) - set(case["ticket_ids"])) <= 0.1 * len(best.member_ids)
    assert best.voices >= 0.9 * len(case["ticket_ids"])


def test_new_tasks_per_street_are_capped_by_heat_and_the_rest_are_in_the_report(db):
    from sqlalchemy import select

    from triage.hotspots.proactive import ProactiveParams, run_proactive
    from triage.report.analysts import hotspot_section
    from triage.store import HotspotEvent, QueueItem, get_engine, upgrade

    upgrade()
    first = dt.datetime(2026, 11, 10, 2, tzinfo=dt.UTC)
    with get_engine().begin() as conn:
        ids = [_seed(conn, i, first + dt.timedelta(hours=i)) for i in range(5)]
        for j, surprise in enumerate([2.5, 9.0, 4.0, 1.0, 6.0, 3.0]):
            conn.execute(
                HotspotEvent.__table__.insert(),
                {"night": NIGHT, "event_key": f"e{j}", "street_code": WANGJING, "district_code": WANGJING[:6],
                 "category": CAT, "place": f"花家地西里{j}号院", "title": "占道摆摊", "size": 12,
                 "first_seen": first, "last_seen": first + dt.timedelta(days=9), "growth": 0.5, "recent_7d": 8,
                 "repeat_callers": 0, "votes": 0.0, "score": 5.0, "member_ids": ids, "kind": "place",
                 "voices": 12, "baseline_7d": 1.0, "surprise": surprise},
            )  # fmt: skip
    out = run_proactive(NIGHT, ProactiveParams(max_new_per_street=3))
    # surprise 1.0 is not news; the 5 places also make a "recurring" pattern (heat 0), held back too
    assert out["tasks_created"] == 3 and out["tasks_held_back"] == 3
    with get_engine().connect() as conn:
        made = conn.execute(select(QueueItem.evidence).where(QueueItem.kind == "proactive")).scalars().all()
    assert sorted(e["surprise"] for e in made) == [4.0, 6.0, 9.0]
    hot = hotspot_section(NIGHT)
    assert hot["held_total"] == 3 and [h["heat"] for h in hot["held"]] == [3.0, 2.5, 0.0]
    # the next night the open tasks are updated, not counted against the cap again
    again = run_proactive(NIGHT, ProactiveParams(max_new_per_street=3))
    assert again["tasks_created"] == 0 and again["tasks_held_back"] == 3


def test_a_significant_scan_cluster_is_named_and_becomes_a_task(db):
    """Tickets bunched in one community over the last 3 days, over 30 days of scattered background:
    the stored cluster names 望京街道 and the community, and the street gets a proactive task."""
    import numpy as np
    from sqlalchemy import select

    from triage.hotspots.proactive import run_proactive
    from triage.hotspots.stage import run_hotspots
    from triage.store import QueueItem, ScanCluster, get_engine, upgrade

    upgrade()
    r = np.random.default_rng(4)
    comm = WANGJING + "001"
    with get_engine().begin() as conn:
        for i in range(400):
            day = NIGHT - dt.timedelta(days=int(r.integers(0, 30)))
            at = dt.datetime.combine(day, dt.time(3), tzinfo=dt.UTC)
            _seed(conn, i, at, street="110105001", cat=f"c{i % 7}", text=f"第{i}件 一般问题",
                  lat=39.85 + r.random() * 0.2, lon=116.3 + r.random() * 0.25)  # fmt: skip
        for i in range(400, 425):
            day = NIGHT - dt.timedelta(days=int(r.integers(0, 3)))
            at = dt.datetime.combine(day, dt.time(3), tzinfo=dt.UTC)
            _seed(conn, i, at, street=WANGJING, cat=f"c{i % 7}", text=f"第{i}件 一般问题", community=comm,
                  lat=39.99 + r.normal(0, 0.002), lon=116.47 + r.normal(0, 0.002))  # fmt: skip
    run_hotspots(NIGHT)
    with get_engine().connect() as conn:
        clusters = conn.execute(select(ScanCluster).where(ScanCluster.night == NIGHT)).all()
    assert clusters and clusters[0].p_value <= 0.05
    assert clusters[0].units[0] == {"level": "street", "code": WANGJING, "name": "望京街道",
                                    "tickets": clusters[0].units[0]["tickets"]}  # fmt: skip
    assert any(u["level"] == "community" and u["code"] == comm for u in clusters[0].units)
    run_proactive(NIGHT)
    with get_engine().connect() as conn:
        tasks = conn.execute(select(QueueItem).where(QueueItem.kind == "proactive")).all()
    scan = [t for t in tasks if t.evidence["type"] == "scan"]
    assert len(scan) == 1 and scan[0].street_code == WANGJING and "望京街道" in scan[0].title
    assert len(scan[0].evidence["ticket_ids"]) >= 20


def test_name_decisions_per_window_are_the_decisions_on_the_whole_text():
    """The speed-ups decide a candidate on the piece of text it reads (issue 19): the answers are
    those on the whole text, whatever comes before a separator, with or without the batch memo."""
    from triage.hotspots.events import extract_places
    from triage.hotspots.names import (
        _word_start_piece,
        community_aliases,
        extend_to_alias,
        extract_orgs,
        word_start,
    )

    texts = ["朝阳区望京街道花家地西里3号楼门口有人占道摆摊", "我们住宅小区的垃圾楼很臭，家住丽发新城小区",
             "海淀区万柳地区六郎庄家园南门，程明物业管理有限公司不管", "镇岗南里社区\n西里物业公司跑路了",
             "A市经济学院体育学院变相强制实习。被鑫利贷的人骗了，我在鑫利贷平台投了钱"]  # fmt: skip
    for text in texts:
        for s in range(len(text) + 1):  # the old loop on the whole text
            assert word_start(text, s) == _word_start_piece.__wrapped__(text, s), (text, s)
        aliases = community_aliases()
        for s in range(len(text)):
            for e1 in range(s, len(text) + 1):
                for e2 in (None, *range(e1, min(e1 + 6, len(text) + 1))):
                    ref = s  # the old loop: the furthest start (8 back at most) making an alias
                    for k in range(8, 0, -1):
                        if s - k >= 0 and (
                            text[s - k : e1] in aliases or (e2 and text[s - k : e2] in aliases)
                        ):
                            ref = s - k
                            break
                    assert extend_to_alias(text, s, e1, e2) == ref, (text, s, e1, e2)
    memo_p: dict = {}
    memo_o: dict = {}
    for prefix in ("", "领导您好！", "来电人称其住在附近，", "反映：\t"):
        for text in texts:
            assert extract_places(prefix + text, memo_p) == extract_places(text), (prefix, text)
            assert extract_orgs(prefix + text, memo_o) == extract_orgs(text), (prefix, text)
    assert extract_places("家住丽发新城小区", memo_p) == ["丽发新城"]
    assert extract_orgs("市程明物业管理有限公司未经业主同意收费", memo_o) == ["程明物业"]


def test_a_two_character_organisation_is_an_event_not_a_failed_night():
    """Two-character names (华联公司 → 华联) are not searched for again in the texts; with no other
    organisation the row numbers came back as floats and the whole hotspot stage failed."""
    import pandas as pd

    from triage.hotspots.events import cluster_events

    texts = ["华联公司拖欠工资三个月", "华联公司拖欠工资不发", "华联公司欠薪", "今天小区门口很干净"]
    df = pd.DataFrame(
        {"id": list("abcd"), "text": texts, "t": ["2026-11-18 10:00"] * 4, "caller": list("1234")}
    )
    ev, _ = cluster_events(df, "id", "text", "t", caller_col="caller")
    org = ev[ev["kind"] == "org"]
    assert org["place"].tolist() == ["华联"] and sorted(org["member_ids"].iloc[0]) == ["a", "b", "c"]


def test_a_school_type_is_not_a_trusted_place_name():
    """Named by 3 tickets on 2 days, 魅力之城 labels an event; 经济学院 (a type every city has)
    does not, however often it is written; A市经济学院 does."""
    import numpy as np

    from triage.hotspots.names import trusted_names

    keys = ["魅力之城"] * 3 + ["经济学院"] * 3 + ["A市经济学院"] * 3
    rows = np.arange(9)
    days = np.array(["2026-11-01", "2026-11-02", "2026-11-03"] * 3, dtype="datetime64[D]")
    assert trusted_names(rows, keys, days) == {"魅力之城", "A市经济学院"}
