"""The places read from each ticket, kept between nights (table ticket_places, migration 0013): a
night reads only what it has not read before, and its events are those of reading everything
again. Real SQLite and PostgreSQL through the `db` fixture."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import delete, func, inspect, select, update

from tests.test_hotspots_names import _seed
from triage.tables import write_table

NIGHT = dt.date(2026, 11, 20)


def _events(night: dt.date) -> list[dict]:
    """A night's stored events as comparable rows (row ids aside)."""
    from triage.store import HotspotEvent, get_engine

    with get_engine().connect() as c:
        rows = c.execute(select(HotspotEvent.__table__).where(HotspotEvent.night == night)).all()
    return sorted(
        ({k: v for k, v in r._asdict().items() if k != "id"} for r in rows), key=lambda e: e["event_key"]
    )


def _cached() -> dict[str, tuple[str, list[str]]]:
    from triage.store import TicketPlace, get_engine

    with get_engine().connect() as c:
        return {r.ticket_id: (r.digest, r.places) for r in c.execute(select(TicketPlace))}


@pytest.fixture
def loaded(db, tmp_path):
    """42 days of generated tickets through the product path (ingest → classify → route)."""
    from triage.classify.batch import classify_pending
    from triage.ingest import ingest_file
    from triage.route import route_pending
    from triage.synth import generate_tickets

    res = generate_tickets(4000, seed=11, start=NIGHT - dt.timedelta(days=41), end=NIGHT, labeled=False)
    ingest_file(write_table(res.tickets, tmp_path / "t.parquet"), night=NIGHT)
    classify_pending()
    route_pending()


def test_a_warm_night_gives_the_events_of_a_cold_one(loaded):
    """The night before reads its whole window; the night reads only its own day's tickets, a re-run
    reads nothing, and the events are those of a run with the cache emptied."""
    from triage.hotspots.stage import run_hotspots
    from triage.store import Ticket, TicketPlace, get_engine

    before = run_hotspots(NIGHT - dt.timedelta(days=1))
    assert before["places_read"] == before["tickets_in_window"] > 0
    warm = run_hotspots(NIGHT)
    with get_engine().connect() as c:
        today = c.execute(
            select(func.count()).select_from(Ticket).where(Ticket.received_date == NIGHT)
        ).scalar_one()
    assert 0 < today == warm["places_read"] < warm["tickets_in_window"]
    events = _events(NIGHT)
    assert warm["events"] == len(events) > 5
    cached = _cached()
    assert len(cached) == warm["tickets_in_window"]

    again = run_hotspots(NIGHT)
    assert again["places_read"] == 0 and _events(NIGHT) == events

    with get_engine().begin() as c:
        c.execute(delete(TicketPlace))
    cold = run_hotspots(NIGHT)
    assert cold["places_read"] == cold["tickets_in_window"]
    assert _events(NIGHT) == events
    assert _cached() == cached  # read again, the same places


def _seed_estate(conn) -> list[str]:
    """Nine complaints about street vending at 花家地西里 over three days (three a day)."""
    start = dt.datetime(2026, 11, 17, 2, 0, tzinfo=dt.UTC)
    return [_seed(conn, i, start + dt.timedelta(days=i // 3, hours=i % 3)) for i in range(9)]


def test_a_ticket_whose_text_changed_is_read_again(db):
    """Three of the nine tickets are corrected (a re-delivered file): they name 方舟苑 now. Their
    digests change, only they are read again, and they make an event of their own."""
    from triage.hotspots.stage import run_hotspots
    from triage.store import Ticket, get_engine

    with get_engine().begin() as conn:
        ids = _seed_estate(conn)
    first = run_hotspots(NIGHT)
    assert first["places_read"] == 9
    assert [(e["place"], len(e["member_ids"])) for e in _events(NIGHT)] == [("花家地西里", 9)]
    before = _cached()
    assert before[ids[0]][1] == ["花家地西里"]

    moved = ids[::3]  # one of each day
    with get_engine().begin() as conn:
        conn.execute(
            update(Ticket).where(Ticket.ticket_id.in_(moved)).values(text="方舟苑门口有人占道摆摊卖水果")
        )
    second = run_hotspots(NIGHT)
    assert second["places_read"] == 3
    after = _cached()
    assert {t for t in ids if after[t] != before[t]} == set(moved)
    assert all(after[t][1] == ["方舟苑"] for t in moved)
    events = {e["place"]: sorted(e["member_ids"]) for e in _events(NIGHT)}
    assert events == {"花家地西里": sorted(set(ids) - set(moved)), "方舟苑": sorted(moved)}


def test_changed_reading_rules_or_data_read_every_ticket_again(db, monkeypatch):
    from triage.hotspots import events
    from triage.hotspots.stage import run_hotspots
    from triage.store import get_engine

    with get_engine().begin() as conn:
        _seed_estate(conn)
    run_hotspots(NIGHT)
    before, evs = _cached(), _events(NIGHT)
    assert run_hotspots(NIGHT)["places_read"] == 0

    monkeypatch.setattr(events, "PLACES_VERSION", events.PLACES_VERSION + 1)
    assert run_hotspots(NIGHT)["places_read"] == 9
    after = _cached()
    assert all(after[t][0] != before[t][0] and after[t][1] == before[t][1] for t in before)
    assert _events(NIGHT) == evs
    assert run_hotspots(NIGHT)["places_read"] == 0
    # the names dropped as areas are part of the fingerprint too
    assert events.places_fingerprint(frozenset({"望京"})) != events.places_fingerprint(frozenset())


def test_cluster_events_with_places_known_for_some_rows_finds_the_same_events():
    """In text mode (files) too: rows whose places are given are not read, the others are read and
    handed back, and the events are those found without any."""
    from triage.hotspots.events import EventParams, cluster_events
    from triage.synth import generate_tickets

    t = generate_tickets(1500, seed=3, start=NIGHT - dt.timedelta(days=29), end=NIGHT, labeled=True).tickets
    df = t.set_index(pd.Index(range(1000, 1000 + len(t))))  # an index that is not 0..n-1
    args = dict(id_col="ticket_id", text_col="text", time_col="received_at", title_col="title",
                place_cols=("address",), params=EventParams(workers=1))  # fmt: skip
    plain, plain_m = cluster_events(df, **args)
    assert "places" not in plain.attrs
    every, _ = cluster_events(df, **args, known_places=pd.Series(None, index=df.index, dtype=object))
    read = every.attrs.pop("places")
    assert read.index.equals(df.index) and read.map(len).sum() > 100
    half = read.where(pd.Series(range(len(df)), index=df.index) % 2 == 0)  # odd rows unknown (NaN)
    some, some_m = cluster_events(df, **args, known_places=half)
    again = some.attrs.pop("places")
    assert list(again.index) == list(df.index[1::2]) and again.tolist() == read.iloc[1::2].tolist()
    pd.testing.assert_frame_equal(some, plain)
    pd.testing.assert_frame_equal(every, plain)
    pd.testing.assert_series_equal(some_m, plain_m)


def test_migration_0013_adds_ticket_places_deleted_with_their_ticket_and_goes_down_again(db):
    from triage.store import TicketPlace, get_engine, upgrade
    from triage.store.db import downgrade
    from triage.store.models import Ticket

    assert {"ticket_id", "digest", "places"} <= {
        c["name"] for c in inspect(get_engine()).get_columns("ticket_places")
    }
    with get_engine().begin() as conn:
        tid = _seed(conn, 1, dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC))
        conn.execute(
            TicketPlace.__table__.insert(), {"ticket_id": tid, "digest": "0" * 32, "places": ["花家地西里"]}
        )
    with get_engine().begin() as conn:
        conn.execute(delete(Ticket).where(Ticket.ticket_id == tid))
    assert _cached() == {}
    downgrade(revision="0012")
    assert "ticket_places" not in inspect(get_engine()).get_table_names()
    upgrade()
    assert "ticket_places" in inspect(get_engine()).get_table_names()
