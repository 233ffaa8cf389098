"""Hotspot events as a person reads them: dates on Beijing's calendar, place names a person would
write, organisation / case events city-wide. Real SQLite and PostgreSQL through the `db` fixture."""

from __future__ import annotations

import datetime as dt

NIGHT = dt.date(2026, 11, 20)
WANGJING = "110105026"  # 望京街道
CAT = "street_vending"


def _seed(conn, n: int, at: dt.datetime, street: str = WANGJING, cat: str = CAT,
          title: str = "占道摆摊", text: str = "花家地西里门口有人占道摆摊卖水果",
          caller: str | None = None) -> str:
    from triage.store import Prediction, QueueItem, Ticket

    tid = f"N{n:05d}"
    local = at.astimezone(dt.timezone(dt.timedelta(hours=8)))
    conn.execute(
        Ticket.__table__.insert(),
        {"ticket_id": tid, "received_at": at, "received_date": local.date(), "night": NIGHT, "title": title,
         "text": text, "address": "", "channel": "phone", "content_hash": f"h{n}", "shard": 0,
         "caller_hash": caller or f"c{n}"},
    )  # fmt: skip
    conn.execute(
        Prediction.__table__.insert(),
        {"ticket_id": tid, "category": cat, "confidence": 0.9, "top3": [], "needs_review": False,
         "model_version": "test"},
    )  # fmt: skip
    conn.execute(
        QueueItem.__table__.insert(),
        {"kind": "ticket", "ticket_id": tid, "queue": "street", "street_code": street,
         "district_code": street[:6], "category": cat, "lead_unit": "street_office", "departments": [],
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
