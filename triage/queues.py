"""Reading queues: one street's items (or the centre's), filtered and sorted by deadline.

Only masked text ever leaves this module: tickets are stored masked, and the caller's number is
only ever kept as ``caller_masked``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from triage.geo import get_gazetteer, get_resolver
from triage.store import QueueItem, Ticket, get_engine
from triage.workflow import load_workflow

CENTRE = "centre"


class UnknownStreet(ValueError):
    pass


def street_code_for(value: str) -> str:
    """A street code from a code, an official name (望京街道) or a spoken one (沙河镇)."""
    value = (value or "").strip()
    if value.lower() in (CENTRE, "中心", "市民热线服务中心"):
        return CENTRE
    gaz = get_gazetteer()
    unit = gaz.unit(value)
    if unit and unit.level == "street":
        return unit.code
    codes = [c for c in gaz.by_name.get(value, []) if gaz.units[c].level == "street"]
    if len(codes) == 1:
        return codes[0]
    res = get_resolver().resolve(value)
    if res.street_code and res.community_code is None:
        return res.street_code
    raise UnknownStreet(
        f"{value!r} is not a street/town code or name in the gazetteer (e.g. 110105026 or 望京街道)"
    )


def queue_query(
    street: str,
    *,
    status: str | None = None,
    category: str | None = None,
    overdue: bool | None = None,
    now: dt.datetime | None = None,
) -> Select:
    now = now or dt.datetime.now(dt.UTC)
    q = select(QueueItem, Ticket).outerjoin(Ticket, Ticket.ticket_id == QueueItem.ticket_id)
    if street == CENTRE:
        q = q.where(QueueItem.queue == CENTRE)
    else:
        q = q.where(QueueItem.queue == "street", QueueItem.street_code == street)
    if status:
        q = q.where(QueueItem.status == status)
    if category:
        q = q.where(QueueItem.category == category)
    if overdue is not None:  # the workflow's one overdue rule
        late = load_workflow().overdue_clause(QueueItem.__table__, now)
        q = q.where(late if overdue else ~late)
    return q


def list_queue(
    street: str, *, limit: int = 50, offset: int = 0, **filters: Any
) -> tuple[int, list[dict[str, Any]]]:
    """(total, page) of a queue, soonest deadline first."""
    q = queue_query(street, **filters)
    with Session(get_engine()) as session:
        total = session.execute(select(func.count()).select_from(q.subquery())).scalar_one()
        rows = session.execute(q.order_by(QueueItem.due_at, QueueItem.id).limit(limit).offset(offset)).all()
        return total, [item_dict(item, ticket) for item, ticket in rows]


def item_dict(item: QueueItem, ticket: Ticket | None) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "id": item.id,
        "kind": item.kind,
        "ticket_id": item.ticket_id,
        "queue": item.queue,
        "street_code": item.street_code,
        "district_code": item.district_code,
        "community_code": item.community_code,
        "category": item.category,
        "lead_unit": item.lead_unit,
        "departments": item.departments,
        "sla_tier": item.sla_tier,
        "priority": item.priority,
        "due_at": item.due_at,
        "overdue": load_workflow().is_overdue(item.status, item.due_at, now),
        "status": item.status,
        "centre_reason": item.centre_reason,
        "return_count": item.return_count,
        "escalated": item.escalated,
        "resolved_at": item.resolved_at,
        "satisfaction": item.satisfaction,
        "version": item.version,
        "received_at": ticket.received_at if ticket else None,
        "title": ticket.title if ticket else item.title,  # a proactive task has its own title
        "text": ticket.text if ticket else None,
        "address": ticket.address if ticket else None,
        "channel": ticket.channel if ticket else None,
        "caller": ticket.caller_masked if ticket else None,
    }


def export_queue(street: str, out: Any) -> int:
    """The whole queue as CSV (UTF-8 with BOM, so Excel opens it) or XLSX; times in Beijing time,
    Chinese names with the codes in their own columns (triage.exports)."""
    from triage.exports import queue_frame
    from triage.tables import write_table

    _, items = list_queue(street, limit=10**9)
    df = queue_frame(items)
    write_table(df, out, encoding="utf-8-sig")
    return len(df)
