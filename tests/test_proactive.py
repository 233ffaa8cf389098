"""Proactive tasks are idempotent: re-running a night with the same hotspots changes nothing (no
version bump, no audit event); a real change (more evidence tickets, a new night) updates the task
once. Real SQLite and PostgreSQL databases, hotspot rows seeded through the store."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select, update

NIGHT = dt.date(2026, 11, 20)
WANGJING = "110105026"  # 望京街道
CAT = "street_vending"


def _seed_ticket(conn, n: int, night: dt.date = NIGHT) -> str:
    from triage.store import Prediction, QueueItem, Ticket

    at = dt.datetime.combine(night, dt.time(2, 0), tzinfo=dt.UTC) + dt.timedelta(minutes=n)
    tid = f"P{n:05d}"
    conn.execute(
        Ticket.__table__.insert(),
        {"ticket_id": tid, "received_at": at, "received_date": night, "night": night, "title": "占道摆摊",
         "text": "小区门口有人占道摆摊卖水果", "address": "朝阳区望京街道花家地西里3号楼", "channel": "phone",
         "content_hash": f"h{n}", "shard": 0},
    )  # fmt: skip
    conn.execute(
        Prediction.__table__.insert(),
        {"ticket_id": tid, "category": CAT, "confidence": 0.9, "top3": [], "needs_review": False,
         "model_version": "test"},
    )  # fmt: skip
    conn.execute(
        QueueItem.__table__.insert(),
        {"kind": "ticket", "ticket_id": tid, "queue": "street", "street_code": WANGJING,
         "district_code": WANGJING[:6], "category": CAT, "lead_unit": "street_office", "departments": [],
         "sla_tier": "general", "priority": 3, "due_at": at + dt.timedelta(days=3), "status": "dispatched",
         "return_count": 0, "escalated": False, "version": 1, "created_at": at, "updated_at": at},
    )  # fmt: skip
    return tid


def _seed_hotspots(conn, ids: list[str], observed: int) -> None:
    from triage.store import HotspotEvent, HotspotSignal

    conn.execute(
        HotspotSignal.__table__.insert(),
        {"night": NIGHT, "level": "street", "unit_code": WANGJING, "category": CAT, "observed": observed,
         "expected": 1.2345678912345, "p_value": 1.1e-7, "q_value": 3.3e-6, "method": "glm_nb",
         "history_days": 41, "significant": True},
    )  # fmt: skip
    first = dt.datetime.combine(NIGHT, dt.time(), tzinfo=dt.UTC) - dt.timedelta(days=20)
    conn.execute(
        HotspotEvent.__table__.insert(),
        {"night": NIGHT, "event_key": "e1", "street_code": WANGJING, "district_code": WANGJING[:6],
         "category": CAT, "place": "花家地西里", "title": "花家地西里 占道摆摊", "size": 16,
         "first_seen": first, "last_seen": first + dt.timedelta(days=20), "growth": 0.1, "recent_7d": 3,
         "repeat_callers": 0, "votes": 0.0, "score": 7.5, "member_ids": ids},
    )  # fmt: skip


def _state():
    from triage.store import QueueEvent, QueueItem, get_engine

    with get_engine().connect() as c:
        n_events = c.execute(select(func.count()).select_from(QueueEvent)).scalar_one()
        tasks = {
            t.task_key: (t.version, t.updated_at, t.title, t.evidence)
            for t in c.execute(select(QueueItem).where(QueueItem.kind == "proactive"))
        }
    return n_events, tasks


def test_rerunning_a_night_changes_nothing_and_a_real_change_updates_once(db):
    from triage.hotspots.proactive import plan_tasks, run_proactive, write_tasks
    from triage.pipeline import proactive_stage
    from triage.store import HotspotEvent, HotspotSignal, get_engine

    with get_engine().begin() as conn:
        ids = [_seed_ticket(conn, n) for n in range(16)]
        _seed_hotspots(conn, ids, observed=16)
    first = proactive_stage(NIGHT)
    assert (first["tasks_created"], first["tasks_updated"]) == (2, 0)
    events0, tasks0 = _state()
    assert set(tasks0) == {f"surge:{WANGJING}:{CAT}", f"event:{WANGJING}:{CAT}:花家地西里"}
    assert all(v[0] == 1 for v in tasks0.values())

    # the same night again, twice: nothing changes, not even updated_at
    for _ in range(2):
        again = proactive_stage(NIGHT)
        assert (again["tasks_created"], again["tasks_updated"], again["tasks_unchanged"]) == (0, 0, 2)
        assert _state() == (events0, tasks0)

    # the hotspot stage re-run re-creates its rows under new ids: still no change, but the
    # evidence keeps pointing at the current rows
    with get_engine().begin() as conn:
        for table in (HotspotSignal, HotspotEvent):
            conn.execute(delete(table).where(table.night == NIGHT))
        # a district row takes the freed id, so the street signal gets a new one on SQLite too
        conn.execute(
            HotspotSignal.__table__.insert(),
            {"night": NIGHT, "level": "district", "unit_code": WANGJING[:6], "category": CAT, "observed": 16,
             "expected": 3.0, "p_value": 0.5, "q_value": 0.5, "method": "glm_nb", "history_days": 41,
             "significant": False},
        )  # fmt: skip
        _seed_hotspots(conn, ids, observed=16)
        sig_id = conn.execute(select(HotspotSignal.id).where(HotspotSignal.level == "street")).scalar_one()
    assert run_proactive(NIGHT)["tasks_unchanged"] == 2
    events1, tasks1 = _state()
    assert events1 == events0
    assert {k: v[:3] for k, v in tasks1.items()} == {k: v[:3] for k, v in tasks0.items()}
    assert tasks0[f"surge:{WANGJING}:{CAT}"][3]["signal_id"] != sig_id
    assert tasks1[f"surge:{WANGJING}:{CAT}"][3]["signal_id"] == sig_id

    # more evidence tickets behind the surge: that task is updated and logged once, the other not
    with get_engine().begin() as conn:
        _seed_ticket(conn, 99)
        conn.execute(update(HotspotSignal).where(HotspotSignal.level == "street").values(observed=17))
    changed = proactive_stage(NIGHT)
    assert (changed["tasks_created"], changed["tasks_updated"], changed["tasks_unchanged"]) == (0, 1, 1)
    events2, tasks2 = _state()
    surge = tasks2[f"surge:{WANGJING}:{CAT}"]
    assert events2 == events0 + 1
    assert surge[0] == 2 and "P00099" in surge[3]["ticket_ids"] and "当日 17 件" in surge[2]
    assert tasks2[f"event:{WANGJING}:{CAT}:花家地西里"] == tasks1[f"event:{WANGJING}:{CAT}:花家地西里"]
    assert proactive_stage(NIGHT)["tasks_updated"] == 0 and _state() == (events2, tasks2)

    # the same hotspots seen on the next night are news (the night is added to the evidence)
    nxt = NIGHT + dt.timedelta(days=1)
    assert write_tasks(nxt, plan_tasks(NIGHT))["tasks_updated"] == 2
    events3, tasks3 = _state()
    assert events3 == events2 + 2
    assert all(v[3]["nights"] == [NIGHT.isoformat(), nxt.isoformat()] for v in tasks3.values())
    assert write_tasks(nxt, plan_tasks(NIGHT))["tasks_updated"] == 0 and _state() == (events3, tasks3)

    # running the earlier night again after the later one leaves the tasks at the later night's
    # figures (before, each switch between the two nights logged an update per task)
    with get_engine().begin() as conn:
        conn.execute(update(HotspotSignal).where(HotspotSignal.level == "street").values(observed=30))
    back = proactive_stage(NIGHT)
    assert (back["tasks_updated"], back["tasks_unchanged"]) == (0, 2) and _state() == (events3, tasks3)


def test_an_update_logs_the_tasks_current_status(db):
    from triage.hotspots.proactive import run_proactive
    from triage.store import HotspotSignal, QueueEvent, QueueItem, get_engine

    with get_engine().begin() as conn:
        ids = [_seed_ticket(conn, n) for n in range(16)]
        _seed_hotspots(conn, ids, observed=16)
    run_proactive(NIGHT)
    with get_engine().begin() as conn:
        conn.execute(update(QueueItem).where(QueueItem.kind == "proactive").values(status="acknowledged"))
        conn.execute(update(HotspotSignal).values(observed=18))
    assert run_proactive(NIGHT)["tasks_updated"] == 1
    with get_engine().connect() as c:
        ev = c.execute(
            select(QueueEvent).where(QueueEvent.action == "proactive_update")
        ).one()  # fmt: skip
    assert (ev.from_status, ev.to_status) == ("acknowledged", "acknowledged")
