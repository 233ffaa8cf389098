"""Governance lists: fair ranking with a minimum volume and empirical-Bayes shrinkage."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sqlalchemy import select, update

from triage.hotspots.governance import (
    GovernanceParams,
    beta_binomial_shrink,
    gamma_poisson_shrink,
    month_bounds,
    monthly_themes,
    street_candidates,
    three_rates,
)


def test_beta_binomial_shrinkage_does_not_let_tiny_units_win():
    rng = np.random.default_rng(0)
    n = np.r_[rng.integers(80, 200, 30), 2, 3]
    k = np.r_[rng.binomial(n[:30], 0.8), 2, 0]  # two tiny units: 2/2 and 0/3
    post, a, b = beta_binomial_shrink(k, n, min_n=20)
    assert 0.7 < a / (a + b) < 0.9
    raw = k / n
    assert raw[30] == 1.0 and post[30] < post[:30].max()  # 2/2 is not the best unit any more
    assert raw[31] == 0.0 and post[31] > 0.5  # 0/3 is pulled towards the city level
    big = np.argmax(n[:30])
    assert abs(post[big] - raw[big]) < 0.02  # large units barely move


def test_gamma_poisson_shrinks_small_counts_towards_one():
    c = np.array([3, 300, 100, 110, 95, 120, 0])
    e = np.array([1.0, 150, 100, 100, 100, 100, 2.0])
    rr, alpha = gamma_poisson_shrink(c, e)
    assert alpha > 0
    assert rr[0] < 3.0 and rr[0] > 1.0  # 3 vs 1 expected is weak evidence
    assert rr[1] > 1.8  # 300 vs 150 is strong evidence
    assert rr[6] > 0.3


def _tickets() -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(1)
    for month, scale in (("2026-08", 1.0), ("2026-09", 1.0), ("2026-10", 1.0), ("2026-11", 1.0)):
        start, end = month_bounds(month)
        days = (end - start).days + 1
        for s in range(20):
            street = f"1101010{s:02d}"
            lam = 60 if s < 18 else 5
            if month == "2026-11" and s == 0:
                lam = 150  # getting much worse
            if month == "2026-11" and s == 19:
                lam = 12  # tiny street doubling: below the minimum volume
            for _ in range(rng.poisson(lam * scale)):
                cat = "sanitation" if rng.random() < 0.5 else f"c{rng.integers(0, 6)}"
                rows.append(
                    {
                        "day": start + dt.timedelta(days=int(rng.integers(0, days))),
                        "street": street,
                        "category": cat,
                    }
                )
    rows.append({"day": dt.date(2027, 5, 1), "street": "110101000", "category": "x"})  # future: ignored
    rows.append({"day": dt.date(2026, 11, 3), "street": None, "category": "x"})  # no street
    return pd.DataFrame(rows)


def test_street_candidates_need_volume_and_rank_big_worsening_first():
    out = street_candidates(_tickets(), "2026-11", GovernanceParams(min_volume=30))
    cands = out[out["candidate"]]
    assert cands.iloc[0]["street"] == "110101000"
    assert "110101019" not in set(cands["street"])
    assert not out.set_index("street").loc["110101019", "ranked"]
    assert out["volume"].sum() == len(
        _tickets()
        .query("day >= @dt.date(2026,11,1) and day <= @dt.date(2026,11,30)")
        .dropna(subset=["street"])
    )


def test_monthly_themes_prefer_widespread_recurring_categories():
    th = monthly_themes(_tickets(), "2026-11")
    assert th.iloc[0]["category"] == "sanitation"
    assert th.iloc[0]["streets_affected"] >= 18 and th.iloc[0]["months_recurring"] == 3


def test_three_rates_rank_only_units_with_enough_items():
    rng = np.random.default_rng(2)
    rows = []
    for s, (n, p) in {"A": (200, 0.9), "B": (150, 0.7), "C": (3, 1.0)}.items():
        for _ in range(n):
            ok = rng.random() < p
            rows.append(
                {
                    "street": s,
                    "due": True,
                    "responded_in_time": ok,
                    "resolved": ok,
                    "rated": True,
                    "satisfied": ok,
                }
            )
    out = three_rates(pd.DataFrame(rows), "street").set_index("street")
    assert out.loc["A", "rank"] == 1 and out.loc["B", "rank"] == 2
    assert np.isnan(out.loc["C", "rank"]) and out.loc["C", "resolution_raw"] == 1.0
    assert out.loc["C", "resolution_shrunk"] < 1.0


def test_scoreboard_from_the_database(db, tmp_path):
    from triage.classify.batch import classify_pending
    from triage.ingest import ingest_file
    from triage.report.analysts import scoreboard
    from triage.route import route_pending
    from triage.store import QueueItem, get_engine
    from triage.synth import generate_tickets
    from triage.tables import write_table

    night = dt.date(2026, 11, 20)
    df = generate_tickets(600, seed=4, start=dt.date(2026, 11, 1), end=night, labeled=False).tickets
    ingest_file(write_table(df, tmp_path / "t.parquet"), night=night)
    classify_pending()
    route_pending()
    empty = scoreboard(dt.date(2026, 11, 1), night)
    assert not empty["has_handling"]
    with get_engine().begin() as c:
        ids = c.execute(select(QueueItem.id, QueueItem.due_at).where(QueueItem.queue == "street")).all()
        for i, (item_id, due) in enumerate(ids):
            if i % 3 == 0:
                continue
            c.execute(update(QueueItem).where(QueueItem.id == item_id).values(
                status="fixed", resolved_at=due - dt.timedelta(hours=1),
                satisfaction="satisfied" if i % 2 else "unsatisfied"))  # fmt: skip
    b = scoreboard(dt.date(2026, 11, 1), night)
    assert b["has_handling"] and b["districts"]
    top = b["districts"][0]
    assert 0 < top["resolution"] < 1 and top["resolution_raw"] is not None
    assert all((r["rank"] is None) == (not r["ranked"]) for r in b["streets"])


def test_response_in_time_counts_the_first_human_action(db, tmp_path):
    """响应率 comes from the first non-system queue event: an acknowledgement before the deadline
    counts, one after it does not, and the router's own dispatch event never does."""
    from triage.classify.batch import classify_pending
    from triage.hotspots.governance import load_rate_items
    from triage.ingest import ingest_file
    from triage.route import route_pending
    from triage.store import QueueEvent, QueueItem, Ticket, get_engine
    from triage.synth import generate_tickets
    from triage.tables import write_table

    night = dt.date(2026, 11, 20)
    df = generate_tickets(200, seed=5, start=dt.date(2026, 11, 1), end=night, labeled=False).tickets
    ingest_file(write_table(df, tmp_path / "t.parquet"), night=night)
    classify_pending()
    route_pending()
    with get_engine().begin() as c:
        # dispatched at receipt here, so the street's clock and the citizen's agree
        c.execute(update(QueueItem).where(QueueItem.queue == "street").values(
            dispatched_at=select(Ticket.received_at).where(Ticket.ticket_id == QueueItem.ticket_id)
            .scalar_subquery()))  # fmt: skip
        items = c.execute(
            select(QueueItem.id, QueueItem.due_at).where(QueueItem.queue == "street").order_by(QueueItem.id)
        ).all()
        early, late, untouched = items[0], items[1], items[2]
        for (item_id, due), delta in ((early, -2), (late, 5)):
            c.execute(QueueEvent.__table__.insert(), {
                "item_id": item_id, "at": due + dt.timedelta(hours=delta), "actor": "street:test",
                "action": "acknowledge", "from_status": "dispatched", "to_status": "acknowledged"})  # fmt: skip
    rates = load_rate_items(dt.date(2026, 11, 1), night).set_index("item_id")
    assert len(rates) == len(items)
    assert rates.loc[early.id, "responded_in_time"]
    assert (
        not rates.loc[late.id, "responded_in_time"]
        and rates.loc[late.id, "first_at"] > rates.loc[late.id, "due_at"]
    )
    # only the router's dispatch event: no response yet
    assert pd.isna(rates.loc[untouched.id, "first_at"]) and not rates.loc[untouched.id, "responded_in_time"]


def _rate_frame(units: dict[str, tuple[int, float]], handled: bool = True) -> pd.DataFrame:
    rows = []
    for unit, (n, p) in units.items():
        for i in range(n):
            ok = handled and i < round(n * p)
            rows.append({"district": unit, "due": True, "responded_in_time": ok, "resolved": ok,
                         "rated": ok, "satisfied": ok})  # fmt: skip
    return pd.DataFrame(rows)


def test_no_rank_without_handling_data():
    """16 districts, all items due, nothing handled or recorded: no district is ranked 1-16
    (issue 21.3: they all showed 0.0 % and were ranked by chance)."""
    frame = _rate_frame({f"1101{i:02d}": (40, 0.0) for i in range(16)}, handled=False)
    out = three_rates(frame, "district")
    assert out["rank"].isna().all() and not out["ranked"].any()


def test_equal_rates_share_a_rank_and_small_units_are_not_ranked():
    frame = _rate_frame({"A": (100, 0.9), "B": (100, 0.9), "C": (100, 0.5), "D": (5, 1.0)})
    out = three_rates(frame, "district").set_index("district")
    assert out.loc["A", "rank"] == out.loc["B", "rank"] == 1
    assert out.loc["C", "rank"] == 3  # competition ranking: 1, 1, 3
    assert np.isnan(out.loc["D", "rank"])


def _routed_night(tmp_path, n: int = 300):
    from triage.classify.batch import classify_pending
    from triage.ingest import ingest_file
    from triage.route import route_pending
    from triage.synth import generate_tickets
    from triage.tables import write_table

    night = dt.date(2026, 11, 20)
    df = generate_tickets(n, seed=8, start=night, end=night, labeled=False).tickets
    ingest_file(write_table(df, tmp_path / "t.parquet"), night=night)
    classify_pending()
    route_pending()
    return night


def test_a_street_that_acknowledged_shows_its_response_rate(db, tmp_path):
    """Issue 21.3: an acknowledgement in time counts at once, even before the item's deadline
    has passed (it showed 0.0 % / nothing before); the period has handling, so it is shown."""
    from triage.auth import Principal
    from triage.lifecycle import acknowledge
    from triage.report.analysts import scoreboard
    from triage.store import QueueItem, get_engine

    night = _routed_night(tmp_path)
    with get_engine().connect() as c:
        item_id, street = c.execute(
            select(QueueItem.id, QueueItem.street_code)
            .where(QueueItem.queue == "street")
            .order_by(QueueItem.id)
        ).first()
    before = scoreboard(night.replace(day=1), night)
    assert not before["has_handling"]
    acknowledge(item_id, None, Principal(token_id=1, name="clerk", role="street", street_code=street))
    b = scoreboard(night.replace(day=1), night)
    assert b["has_handling"]
    from triage.hotspots.governance import governance_lists

    rates = governance_lists("2026-11")["rates_street"].set_index("street")
    assert rates.loc[street, "response_raw"] == 1.0 and rates.loc[street, "response_n"] == 1
    # the city's clock runs from receipt (20 Nov): for the citizen every item is late by now
    assert b["city"]["response"] == 0.0


def test_the_nightly_report_prints_no_rows_of_zero_without_handling(db, tmp_path):
    from triage.report.nightly import write_nightly_report

    night = _routed_night(tmp_path)
    html = write_nightly_report(night, tmp_path / "r.html").read_text(encoding="utf-8")
    board = html[html.index("三率 Scoreboard") : html.index("治理类街乡镇候选")]
    assert "本期尚无办理记录" in board
    assert "0.0%" not in board and "<table" not in board  # no rows of 0 % (there were ~46)


def test_street_clock_counts_from_dispatch_city_clock_from_receipt(db, tmp_path):
    """An emergency received at 08:00 but dispatched by the centre only at 18:00, acknowledged at
    19:00: in time for the street (2 h from dispatch), late for the city (2 h from receipt)."""
    from triage.hotspots.governance import city_rates, load_rate_items
    from triage.store import QueueEvent, QueueItem, Ticket, get_engine

    night = _routed_night(tmp_path, 60)
    with get_engine().begin() as c:
        item_id, received = c.execute(
            select(QueueItem.id, Ticket.received_at).join(Ticket, Ticket.ticket_id == QueueItem.ticket_id)
            .where(QueueItem.queue == "street").order_by(QueueItem.id)
        ).first()  # fmt: skip
        dispatched = received + dt.timedelta(hours=10)
        c.execute(update(QueueItem).where(QueueItem.id == item_id).values(
            sla_tier="emergency", due_at=received + dt.timedelta(hours=2), dispatched_at=dispatched))  # fmt: skip
        c.execute(QueueEvent.__table__.insert(), {
            "item_id": item_id, "at": dispatched + dt.timedelta(hours=1), "actor": "street:test",
            "action": "acknowledge", "from_status": "dispatched", "to_status": "acknowledged"})  # fmt: skip
    items = load_rate_items(night.replace(day=1), night)
    row = items.set_index("item_id").loc[item_id]
    assert row["responded_in_time"] and not row["responded_in_time_city"]
    assert row["street_due_at"] == pd.Timestamp(dispatched + dt.timedelta(hours=2))
    assert city_rates(items)["response"] < 1.0


def test_stats_count_a_streets_overdue_items_by_its_own_clock(db, tmp_path):
    """/api/v1/stats: an item received long ago but dispatched an hour ago is overdue for the city
    (from receipt) and not for the street (from dispatch); one dispatched 3 hours ago as an
    emergency (2 h) is overdue for both."""
    from triage.api.v1 import stats
    from triage.auth import Principal
    from triage.store import QueueItem, get_engine

    _routed_night(tmp_path, 40)
    now = dt.datetime.now(dt.UTC)
    with get_engine().begin() as c:
        ids = (
            c.execute(select(QueueItem.id).where(QueueItem.queue == "street").order_by(QueueItem.id))
            .scalars()
            .all()
        )
        c.execute(update(QueueItem).where(QueueItem.queue == "street").values(dispatched_at=now))
        c.execute(update(QueueItem).where(QueueItem.id == ids[0]).values(
            sla_tier="emergency", dispatched_at=now - dt.timedelta(hours=3)))  # fmt: skip
        street = c.execute(select(QueueItem.street_code).where(QueueItem.id == ids[0])).scalar_one()
    admin = Principal(token_id=1, name="ops", role="admin", street_code=None)
    s = stats(admin)
    assert s["overdue"] >= len(ids)  # received 20 Nov: every open item is late for the citizen
    assert s["overdue_street"] == 1
    row = next(r for r in s["per_street"] if r["street_code"] == street)
    assert row["overdue_street"] == 1 and row["overdue"] == row["items"]
    clerk = Principal(token_id=2, name="clerk", role="street", street_code=street)
    assert stats(clerk)["overdue_street"] == 1
