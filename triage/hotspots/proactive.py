"""Proactive tasks (未诉先办): the night's hotspots become work items in the responsible street's
queue, ``kind='proactive'``, linked to their evidence, deduplicated across nights.

Sources: significant street surges, large or growing events, recurring patterns (≥ N distinct
places of one street × category in the 90-day window, or one community × category in the same
season in earlier years). Each has a stable ``task_key``; while a task with that key is open it is
updated (evidence, title, version) when what it says changed, never duplicated; a re-run of the
same night changes nothing; once closed, a new occurrence opens a new one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, text

from triage.store import (
    HotspotEvent,
    HotspotSignal,
    Prediction,
    QueueEvent,
    QueueItem,
    ScanCluster,
    Ticket,
    get_engine,
)
from triage.store.db import _dialect_insert
from triage.store.models import OPEN_TASK_WHERE, utcnow
from triage.workflow import load_workflow

STATUS = "dispatched"


@dataclass
class ProactiveParams:
    event_min_size: int = 15
    event_repeat_size: int = 8  # smaller events count when the same callers keep calling
    event_repeat_callers: int = 2
    recurring_min_size: int = 5
    event_growing_recent: int = 6
    recurring_places: int = 4
    seasonal_years: int = 2
    seasonal_min: int = 3
    due_days: int = 7
    # baseline-relative heat (docs/hotspots.md): an event earns a task when its last 7 days are
    # unusual for itself — P(recent voices ≥ observed | its own baseline) ≤ 10^-event_min_surprise
    event_min_surprise: float = 1.3
    event_min_recent: int = 5  # tickets in the last 7 days
    max_new_per_street: int = 3  # new tasks per street and night, strongest first; the rest in the report


def _cat_name(code: str | None) -> str:
    from triage.taxonomy import load_taxonomy

    tax = load_taxonomy()
    return tax.categories[code].name if code in tax.categories else (code or "未分类")


def _unit_name(code: str | None) -> str:
    from triage.geo import get_gazetteer

    u = get_gazetteer().unit(code) if code else None
    return u.name if u else (code or "")


def _local(t: dt.datetime) -> dt.datetime:
    """A stored (UTC) time on Beijing's calendar, as streets read dates."""
    from triage.config import get_settings

    return t.astimezone(get_settings().tz)


def plan_tasks(night: dt.date, params: ProactiveParams | None = None) -> list[dict[str, Any]]:
    """The tasks the night's stored hotspots call for (not yet written)."""
    p = params or ProactiveParams()
    tasks: list[dict[str, Any]] = []
    eng = get_engine()
    with eng.connect() as conn:
        sigs = conn.execute(
            select(HotspotSignal)
            .where(HotspotSignal.night == night, HotspotSignal.significant, HotspotSignal.level == "street")
            .order_by(HotspotSignal.unit_code, HotspotSignal.category)
        ).all()
        for s in sigs:
            ids = conn.execute(
                select(Ticket.ticket_id)
                .join(Prediction, Prediction.ticket_id == Ticket.ticket_id)
                .join(QueueItem, and_(QueueItem.ticket_id == Ticket.ticket_id, QueueItem.kind == "ticket"))
                .where(Ticket.received_date == night, QueueItem.street_code == s.unit_code,
                       Prediction.category == s.category)
                .order_by(Ticket.ticket_id).limit(100)
            ).scalars().all()  # fmt: skip
            tasks.append(
                {
                    "heat": _surprise(s.p_value),
                    "task_key": f"surge:{s.unit_code}:{s.category}",
                    "street_code": s.unit_code,
                    "category": s.category,
                    "priority": 2,
                    "title": f"[未诉先办·激增] {_unit_name(s.unit_code)} {_cat_name(s.category)}：当日 {s.observed} 件，"
                    f"预期 {s.expected:.1f} 件 (q={s.q_value:.2g})",
                    "evidence": {
                        "type": "surge",
                        "signal_id": s.id,
                        "observed": s.observed,
                        "expected": s.expected,
                        "p": s.p_value,
                        "q": s.q_value,
                        "method": s.method,
                        "ticket_ids": list(ids),
                    },  # fmt: skip
                }
            )
        events = conn.execute(
            select(HotspotEvent)
            .where(HotspotEvent.night == night, HotspotEvent.street_code.is_not(None))
            .order_by(HotspotEvent.score.desc(), HotspotEvent.event_key)  # strongest first, stable
        ).all()
        tasks += _scan_tasks(conn, night)
    events = _merge_named(events)
    by_pair: dict[tuple[str, str], list[Any]] = {}
    for e in events:
        if e.size >= p.recurring_min_size:
            by_pair.setdefault((e.street_code, e.category), []).append(e)
        if e.surprise is not None:  # unusual for itself (hotspot rows written since 0010)
            if e.surprise < p.event_min_surprise or e.recent_7d < p.event_min_recent:
                continue
            what, heat = ("组织/案件" if e.kind == "org" else "异常增多"), float(e.surprise)
        else:  # older rows: the fixed sizes of before
            big = e.size >= p.event_min_size or (
                e.size >= p.event_repeat_size and e.repeat_callers >= p.event_repeat_callers
            )
            growing = e.recent_7d >= p.event_growing_recent and e.growth >= 0.5
            if not (big or growing):
                continue
            what, heat = ("持续反映" if big else "近期增多"), float(e.score)
        tasks.append(
            {
                "heat": heat,
                "task_key": f"event:{e.street_code}:{e.category}:{e.place or e.event_key}",
                "street_code": e.street_code,
                "category": e.category,
                "priority": 3,
                "title": f"[未诉先办·{what}] {_unit_name(e.street_code)} {e.place or ''} {_cat_name(e.category)}："
                f"{e.size} 件 ({_local(e.first_seen):%m-%d}–{_local(e.last_seen):%m-%d})，近 7 天 {e.recent_7d} 件",
                "evidence": {
                    "type": "event",
                    "event_id": e.id,
                    "event_key": e.event_key,
                    "place": e.place,
                    "size": e.size,
                    "score": e.score,
                    "baseline_7d": e.baseline_7d,
                    "surprise": e.surprise,
                    "title": e.title,
                    "ticket_ids": list(e.member_ids)[:200],
                },  # fmt: skip
            }
        )
    for (street, cat), evs in by_pair.items():
        places = {e.place for e in evs if e.place}
        if len(places) >= p.recurring_places:
            tasks.append(
                {
                    "heat": 0.0,  # a pattern, not news: only when a street has room left
                    "task_key": f"recurring:{street}:{cat}",
                    "street_code": street,
                    "category": cat,
                    "priority": 3,
                    "title": f"[未诉先办·多点反复] {_unit_name(street)} {_cat_name(cat)}：90 天内 {len(places)} 处反复投诉",
                    "evidence": {
                        "type": "recurring_places",
                        "places": sorted(places),
                        "event_ids": [e.id for e in evs],
                    },  # fmt: skip
                }
            )
    tasks += seasonal_patterns(night, p)
    return tasks


def _merge_named(events: list[Any]) -> list[Any]:
    """Events of one street naming the same place in different categories are one complaint the
    classifier split (a garbage room's smell: sanitation or environment_nuisance): for the task
    their tickets add up; the strongest event speaks for them (its category, key, figures)."""
    from types import SimpleNamespace

    groups: dict[tuple[str, str], list[Any]] = {}
    out: list[Any] = []
    for e in events:
        if e.place and e.kind != "org" and e.surprise is not None:
            groups.setdefault((e.street_code, e.place), []).append(e)
        else:
            out.append(e)
    for evs in groups.values():
        head = evs[0]  # events come strongest first
        if len(evs) == 1:
            out.append(head)
            continue
        merged = SimpleNamespace(**{c: getattr(head, c) for c in head._fields})
        merged.size = sum(e.size for e in evs)
        merged.recent_7d = sum(e.recent_7d for e in evs)
        merged.voices = sum(e.voices or 0 for e in evs)
        merged.surprise = max(e.surprise for e in evs)
        merged.first_seen = min(e.first_seen for e in evs)
        merged.last_seen = max(e.last_seen for e in evs)
        merged.member_ids = [t for e in evs for t in e.member_ids]
        out.append(merged)
    return sorted(out, key=lambda e: (-e.score, e.event_key))


_COMMITTEE = re.compile(r"(社区)?(居民委员会|居委会)$|(村民委员会|村委会)$")


def short_unit_name(name: str) -> str:
    """ "蓝境佳园社区居民委员会" → "蓝境佳园社区", "七里渠南村委会" → "七里渠南村": as people say them."""
    return _COMMITTEE.sub(lambda m: "社区" if m.group(2) else "村", name)


def _scan_tasks(conn, night: dt.date, alpha: float = 0.01) -> list[dict[str, Any]]:
    """A space-time cluster with p ≤ ``alpha`` (0.01: secondary clusters make chance ones more
    frequent than the report's 0.05) goes to the street with most of its tickets, named by its
    communities; evidence: the located tickets of those communities in the cluster's days."""
    out = []
    for c in conn.execute(
        select(ScanCluster)
        .where(ScanCluster.night == night, ScanCluster.p_value <= alpha)
        .order_by(ScanCluster.rank)
    ).all():
        units = c.units or []
        streets = [u for u in units if u["level"] == "street"]
        if not streets:
            continue
        street = streets[0]["code"]
        comms = [u for u in units if u["level"] == "community" and u["code"].startswith(street)]
        where = "、".join(short_unit_name(u["name"]) for u in comms[:3])
        others = "、".join(u["name"] for u in streets[1:])
        ids = conn.execute(
            select(Ticket.ticket_id)
            .join(QueueItem, and_(QueueItem.ticket_id == Ticket.ticket_id, QueueItem.kind == "ticket"))
            .where(Ticket.received_date.between(c.start_day, c.end_day), Ticket.lat.is_not(None),
                   QueueItem.located_street_code == street,
                   *([QueueItem.community_code.in_([u["code"] for u in comms])] if comms else []))
            .order_by(Ticket.ticket_id).limit(100)
        ).scalars().all()  # fmt: skip
        days = (c.end_day - c.start_day).days + 1
        out.append(
            {
                "heat": _surprise(c.p_value),
                "task_key": f"scan:{street}:{comms[0]['code'] if comms else ''}",
                "street_code": street,
                "community_code": comms[0]["code"] if comms else None,
                "category": None,
                "priority": 3,
                "title": f"[未诉先办·空间聚集] {_unit_name(street)} {where}：近 {days} 天 {c.observed} 件，"
                f"预期 {c.expected:.1f} 件 (p={c.p_value:.3g})" + (f"，并涉及 {others}" if others else ""),
                "evidence": {
                    "type": "scan",
                    "units": units,
                    "observed": c.observed,
                    "expected": c.expected,
                    "p": c.p_value,
                    "start_day": c.start_day.isoformat(),
                    "end_day": c.end_day.isoformat(),
                    "ticket_ids": list(ids),
                },  # fmt: skip
            }
        )
    return out


def seasonal_patterns(night: dt.date, params: ProactiveParams | None = None) -> list[dict[str, Any]]:
    """Community × category with ≥ ``seasonal_min`` tickets in the same ±15-day season of at least
    ``seasonal_years`` earlier years, and at least one ticket in this season so far."""
    p = params or ProactiveParams()
    eng = get_engine()
    counts: dict[tuple[str, str, str], set[int]] = {}
    now_pairs: set[tuple[str, str]] = set()
    with eng.connect() as conn:
        for back in range(0, 6):
            try:
                centre = night.replace(year=night.year - back)
            except ValueError:  # 29 February
                centre = night.replace(year=night.year - back, day=28)
            lo, hi = centre - dt.timedelta(days=15), centre + dt.timedelta(days=15 if back else 0)
            rows = conn.execute(
                select(QueueItem.street_code, QueueItem.community_code, Prediction.category, func.count())
                .join(Ticket, Ticket.ticket_id == QueueItem.ticket_id)
                .join(Prediction, Prediction.ticket_id == Ticket.ticket_id)
                .where(QueueItem.kind == "ticket", QueueItem.community_code.is_not(None),
                       QueueItem.street_code.is_not(None), Ticket.received_date.between(lo, hi))
                .group_by(QueueItem.street_code, QueueItem.community_code, Prediction.category)
            ).all()  # fmt: skip
            for street, comm, cat, n in rows:
                if back == 0:
                    now_pairs.add((comm, cat))
                elif n >= p.seasonal_min:
                    counts.setdefault((street, comm, cat), set()).add(back)
    out = []
    for (street, comm, cat), years in counts.items():
        if len(years) >= p.seasonal_years and (comm, cat) in now_pairs:
            out.append(
                {
                    "heat": 0.0,
                    "task_key": f"seasonal:{comm}:{cat}",
                    "street_code": street,
                    "community_code": comm,
                    "category": cat,
                    "priority": 3,
                    "title": f"[未诉先办·季节性] {_unit_name(comm)} {_cat_name(cat)}：往年同期 {len(years)} 年反复出现",
                    "evidence": {"type": "seasonal", "years_back": sorted(years)},
                }
            )
    return out


# evidence keys that point at the night's hotspot rows: the hotspot stage re-creates those rows on
# a re-run (new ids on PostgreSQL), so they are references, not content
_ROW_REFS = ("signal_id", "event_id", "event_ids")


def _content(title: str | None, evidence: dict[str, Any] | None) -> str:
    """What a task says (title, figures, tickets, nights) without the row references, as canonical
    JSON: tuples and lists alike, numpy scalars as plain numbers, floats to 9 significant digits (a
    refit on the same data may differ in the last bits; that is not a change)."""
    ev = {k: v for k, v in (evidence or {}).items() if k not in _ROW_REFS}
    return json.dumps([title, _canon(ev)], sort_keys=True, ensure_ascii=False, default=str)


def _canon(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, list | tuple | dict | str):  # numpy scalar
        v = v.item()
    if isinstance(v, float):
        return float(f"{v:.9g}")
    if isinstance(v, dict):
        return {str(k): _canon(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_canon(x) for x in v]
    return v


def write_tasks(night: dt.date, tasks: list[dict[str, Any]], due_days: int = 7) -> dict[str, int]:
    """Insert new tasks; update an open one with the same key only when what it says changed (title,
    figures, evidence tickets, the nights it was seen). Re-running a night with the same hotspots
    changes nothing: no version bump, no audit event; nor does running a night earlier than the
    latest one a task has seen (it keeps the latest figures). Returns counts."""
    from triage.taxonomy import load_taxonomy

    tax = load_taxonomy()
    now = utcnow()
    created = updated = unchanged = 0
    seen: set[str] = set()
    with get_engine().begin() as conn:
        for t in tasks:
            if t["task_key"] in seen:  # one task per key and night: the first (strongest) wins
                continue
            seen.add(t["task_key"])
            cat = tax.categories.get(t["category"]) if t.get("category") else None
            open_item = conn.execute(
                select(QueueItem.id, QueueItem.version, QueueItem.status, QueueItem.title, QueueItem.evidence)
                .where(QueueItem.kind == "proactive", QueueItem.task_key == t["task_key"],
                       QueueItem.status.not_in(load_workflow().of_kind("fixed", "closed")))
                .order_by(QueueItem.id)
            ).first()  # fmt: skip
            evidence = dict(t["evidence"])
            if open_item is not None:
                prev = open_item.evidence or {}
                if any(n > night.isoformat() for n in prev.get("nights", [])):
                    # a later night already updated this task: running an earlier night again
                    # (or late) must not put its older figures back
                    unchanged += 1
                    continue
                evidence["nights"] = sorted(set(prev.get("nights", [])) | {night.isoformat()})
                if _content(t["title"], evidence) == _content(open_item.title, prev):
                    refs = {k: evidence[k] for k in _ROW_REFS if k in evidence}
                    if any(prev.get(k) != v for k, v in refs.items()):
                        # same task, its hotspot rows re-created under new ids: keep the references
                        # valid without calling it a change (no version, no event, no updated_at)
                        conn.execute(
                            QueueItem.__table__.update()
                            .where(QueueItem.id == open_item.id)
                            .values(evidence={**prev, **refs})
                        )
                    unchanged += 1
                    continue
                conn.execute(
                    QueueItem.__table__.update()
                    .where(QueueItem.id == open_item.id)
                    .values(
                        title=t["title"], evidence=evidence, updated_at=now, version=open_item.version + 1
                    )
                )
                action, item_id, status = "proactive_update", open_item.id, open_item.status
                updated += 1
            else:
                evidence["nights"] = [night.isoformat()]
                # one open task per key is a database constraint (uq_queue_open_task): a concurrent
                # night that opened this task since the read above wins, and this one leaves it be
                insert_open = (
                    _dialect_insert(conn, QueueItem.__table__)
                    .on_conflict_do_nothing(index_elements=["task_key"], index_where=text(OPEN_TASK_WHERE))
                    .returning(QueueItem.id)
                )
                item_id = conn.execute(
                    insert_open,
                    {
                        "kind": "proactive", "ticket_id": None, "queue": "street", "street_code": t["street_code"],
                        "district_code": t["street_code"][:6], "community_code": t.get("community_code"),
                        "category": t.get("category"), "lead_unit": cat.lead if cat else "街道办事处",
                        "departments": list(cat.departments) if cat else [],
                        "sla_tier": cat.sla_tier if cat else "standard", "priority": t["priority"],
                        "due_at": now + dt.timedelta(days=due_days), "status": STATUS, "route_method": "proactive",
                        "route_confidence": None, "centre_reason": None, "return_count": 0, "escalated": False,
                        "version": 1, "created_at": now, "updated_at": now, "task_key": t["task_key"],
                        "title": t["title"], "evidence": evidence,
                    },
                ).scalar_one_or_none()  # fmt: skip
                if item_id is None:
                    unchanged += 1
                    continue
                action, status = "proactive_create", None
                created += 1
            conn.execute(
                QueueEvent.__table__.insert(),
                {"item_id": item_id, "at": now, "actor": "system:hotspots", "action": action,
                 "from_status": status, "to_status": status or STATUS, "to_street": t["street_code"],
                 "note": f"{night.isoformat()} {t['evidence'].get('type')}"},
            )  # fmt: skip
    return {
        "tasks_planned": len(tasks), "tasks_created": created, "tasks_updated": updated,
        "tasks_unchanged": unchanged,
    }  # fmt: skip


def _surprise(p_value: float | None) -> float:
    return float(min(-math.log10(max(p_value or 1.0, 1e-30)), 30.0))


def select_tasks(
    night: dt.date, tasks: list[dict[str, Any]], params: ProactiveParams | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(to write, held back). A task whose key is open is always written (an update, not a new
    task); new tasks are ranked by heat within their street and at most ``max_new_per_street`` of
    them go out tonight: a street that gets dozens stops reading them. The rest are listed for the
    analysts in the report. Deterministic: heat, then key."""
    p = params or ProactiveParams()
    keys = {t["task_key"] for t in tasks}
    streets = {t["street_code"] for t in tasks}
    per_street: dict[str, int] = {}
    open_keys: set[str] = set()
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(QueueItem.task_key, QueueItem.street_code, QueueItem.status, QueueItem.evidence)
            .where(QueueItem.kind == "proactive", QueueItem.street_code.in_(streets))
        ).all() if streets else []  # fmt: skip
    done = set(load_workflow().of_kind("fixed", "closed"))
    for key, street, status, ev in rows:
        if status not in done and key in keys:
            open_keys.add(key)
        # tasks this night opened and still open count against the cap: a re-run opens no more
        # (one the street already closed frees its place)
        if status not in done and ((ev or {}).get("nights") or [None])[0] == night.isoformat():
            per_street[street] = per_street.get(street, 0) + 1
    write, held = [], []
    seen: set[str] = set()
    for t in sorted(tasks, key=lambda t: (-float(t.get("heat", 0.0)), t["task_key"])):
        if t["task_key"] in seen:
            continue
        seen.add(t["task_key"])
        if t["task_key"] in open_keys:
            write.append(t)
            continue
        n = per_street.get(t["street_code"], 0)
        if n < p.max_new_per_street:
            per_street[t["street_code"]] = n + 1
            write.append(t)
        else:
            held.append(t)
    return write, held


def run_proactive(night: dt.date, params: ProactiveParams | None = None) -> dict[str, int]:
    p = params or ProactiveParams()
    write, held = select_tasks(night, plan_tasks(night, p), p)
    return {**write_tasks(night, write, p.due_days), "tasks_held_back": len(held)}
