"""/api/v1: street offices work their queue; analysts read everything and correct categories."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import case, func, select

from triage import lifecycle
from triage.api.common import NO_CONTROL, fast_json, get_item, list_items, require_principal
from triage.auth import Principal, Role
from triage.store import QueueItem, get_engine
from triage.workflow import load_workflow

router = APIRouter(prefix="/api/v1", tags=["street offices and analysts"])
Who = Annotated[Principal, Depends(require_principal)]
StatusName = Literal[load_workflow().codes]  # type: ignore[valid-type]  # taxonomy/workflow.yaml
# ASCII digits only: "\d" would also take full-width and other scripts' digits (an empty 200)
_STREET_CODE = r"^([0-9]{9}|centre)$"
# a category filter is text without control characters (a NUL byte reached PostgreSQL: a 500)
CategoryCode = Annotated[str, Field(max_length=64, pattern=NO_CONTROL)]
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # larger ids would overflow the INTEGER column


class Versioned(BaseModel):
    version: int = Field(ge=1, description="the item's version you last read (optimistic concurrency)")


class NoteIn(Versioned):
    note: str | None = Field(None, max_length=2000)


class RequiredNoteIn(Versioned):
    note: str = Field(min_length=2, max_length=2000)


class ReturnIn(Versioned):
    reason: str = Field(min_length=2, max_length=2000, description="why this is not your street's matter")


class RedispatchIn(Versioned):
    street_code: str | None = Field(
        None, pattern=r"^[0-9]{9}$", description="omit: the resolver's next choice"
    )
    note: str | None = Field(None, max_length=2000)


class CallbackIn(Versioned):
    satisfaction: Literal["satisfied", "basically_satisfied", "unsatisfied"]
    note: str | None = Field(None, max_length=2000)


class CategoryIn(BaseModel):
    category: str = Field(min_length=1, max_length=64, description="category code or Chinese name")
    version: int | None = Field(None, ge=1)
    note: str | None = Field(None, max_length=2000)


# --- what the API answers (published in the OpenAPI schema; the fuzz test checks answers against it)
class Me(BaseModel):
    name: str
    role: Role
    street_code: str | None


class Item(BaseModel):
    """A queue item as read: ticket text and caller masked."""

    id: int
    kind: str = Field(description="ticket | proactive")
    ticket_id: str | None
    queue: Literal["street", "centre"]
    street_code: str | None
    district_code: str | None
    community_code: str | None
    located_street_code: str | None
    category: str | None
    lead_unit: str
    departments: list[str]
    sla_tier: str
    priority: int
    due_at: dt.datetime
    status: StatusName
    overdue: bool = Field(description="past due_at and still open work (workflow.yaml kind: open)")
    route_method: str | None
    route_confidence: float | None
    centre_reason: str | None
    return_count: int
    escalated: bool
    resolved_at: dt.datetime | None
    satisfaction: str | None
    version: int
    acknowledged_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    task_key: str | None
    evidence: dict[str, Any] | None
    received_at: dt.datetime | None
    title: str | None
    text: str | None
    address: str | None
    channel: str | None
    caller: str | None
    lat: float | None
    lon: float | None


class ItemOut(Item):
    returned_from: list[str] | None = Field(None, description="streets that returned it (退单)")


class Event(BaseModel):
    id: int
    item_id: int
    at: dt.datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    from_street: str | None
    to_street: str | None
    note: str | None


class ItemWithEvents(ItemOut):
    events: list[Event]


class QueuePage(BaseModel):
    total: int | None = Field(description="items matching the filters (may lag a few seconds)")
    page: int
    page_size: int
    items: list[Item]


class Returned(BaseModel):
    id: int
    status: StatusName
    return_count: int
    escalated: bool
    version: int


class StreetCount(BaseModel):
    street_code: str
    items: int
    overdue: int = Field(description="overdue by the citizen's clock (from receipt)")
    overdue_street: int = Field(description="overdue by the street's clock (from dispatch to it)")


class Stats(BaseModel):
    street: str | None
    total: int
    overdue: int = Field(description="overdue by the citizen's clock (from receipt)")
    overdue_street: int = Field(description="overdue by the street's clock (from dispatch to it)")
    escalated: int
    returns: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    per_street: list[StreetCount] | None


def _street_param(who: Principal, street: str | None) -> str | None:
    if who.role == Role.street:
        return who.street_code  # a street token always sees exactly its own queue
    return street


@router.get("/me", response_model=Me)
def me(who: Who) -> dict[str, Any]:
    """The token's identity: name, role and street."""
    return {"name": who.name, "role": who.role, "street_code": who.street_code}


@router.get("/queue", response_model=QueuePage)
def queue(
    who: Who,
    status: Annotated[list[StatusName] | None, Query()] = None,
    category: Annotated[list[CategoryCode] | None, Query(max_length=64)] = None,
    overdue: bool | None = None,
    street: Annotated[
        str | None, Query(pattern=_STREET_CODE, description="analyst/admin: a street or 'centre'")
    ] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """A queue sorted by deadline (due_at, soonest first); a street token gets only its own."""
    total, items = list_items(
        who, street=_street_param(who, street), status=status, category=category, overdue=overdue,
        limit=page_size, offset=(page - 1) * page_size,
    )  # fmt: skip
    return fast_json({"total": total, "page": page, "page_size": page_size, "items": items})


EXPORT_MAX = 200_000


def export_response(who: Principal, street: str | None, fmt: str) -> Response:
    """The queue as a sheet for people (triage.exports: Chinese names, codes in their own columns)."""
    from triage.exports import queue_frame, sheet_bytes

    _, items = list_items(who, street=_street_param(who, street), limit=EXPORT_MAX, count=False)
    body = sheet_bytes(queue_frame(items), fmt)
    name = f"queue-{_street_param(who, street) or 'all'}"
    media = (
        "text/csv; charset=utf-8"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    )


@router.get("/queue/export.csv", response_class=Response)
def export_csv(who: Who, street: Annotated[str | None, Query(pattern=_STREET_CODE)] = None) -> Response:
    """The whole queue as CSV (UTF-8 with BOM), deadlines in Beijing time."""
    return export_response(who, street, "csv")


@router.get("/queue/export.xlsx", response_class=Response)
def export_xlsx(who: Who, street: Annotated[str | None, Query(pattern=_STREET_CODE)] = None) -> Response:
    """The whole queue as an Excel sheet."""
    return export_response(who, street, "xlsx")


def _item_or_404(who: Principal, item_id: int) -> dict[str, Any]:
    it = get_item(who, item_id)
    if it is None:
        raise HTTPException(404, f"queue item {item_id} not found")
    return it


@router.get("/items/{item_id}", response_model=ItemWithEvents)
def item(who: Who, item_id: ItemId) -> Response:
    """One item with its ticket text (masked) and its audit trail."""
    it = _item_or_404(who, item_id)
    it["events"] = lifecycle.events(item_id, who)
    return fast_json(it)


@router.post("/items/{item_id}/acknowledge", response_model=ItemOut)
def acknowledge(who: Who, item_id: ItemId, body: NoteIn) -> dict[str, Any]:
    """签收 (dispatched → acknowledged)."""
    lifecycle.acknowledge(item_id, body.version, who, body.note)
    return _item_or_404(who, item_id)


@router.post("/items/{item_id}/updates", response_model=ItemOut)
def add_update(who: Who, item_id: ItemId, body: RequiredNoteIn) -> dict[str, Any]:
    """办理: a progress note (acknowledged/in_progress → in_progress)."""
    lifecycle.add_update(item_id, body.version, who, body.note)
    return _item_or_404(who, item_id)


@router.post("/items/{item_id}/resolve", response_model=ItemOut)
def resolve(who: Who, item_id: ItemId, body: RequiredNoteIn) -> dict[str, Any]:
    """办结 (acknowledged/in_progress → fixed)."""
    lifecycle.resolve(item_id, body.version, who, body.note)
    return _item_or_404(who, item_id)


@router.post("/items/{item_id}/return", response_model=Returned)
def return_item(who: Who, item_id: ItemId, body: ReturnIn) -> dict[str, Any]:
    """退单 with a reason: back to the centre for re-dispatch; the second return escalates.
    The street no longer sees the item afterwards."""
    it = lifecycle.return_item(item_id, body.version, who, body.reason)
    return {
        "id": item_id,
        "status": it["status"],
        "return_count": it["return_count"],
        "escalated": it["escalated"],
        "version": it["version"],
    }


@router.post("/items/{item_id}/redispatch", response_model=ItemOut)
def redispatch(who: Who, item_id: ItemId, body: RedispatchIn) -> dict[str, Any]:
    """Centre (admin): send to the given street or the resolver's next choice."""
    lifecycle.redispatch(item_id, body.version, who, body.street_code, body.note)
    return _item_or_404(who, item_id)


@router.post("/items/{item_id}/callback", response_model=ItemOut)
def callback(who: Who, item_id: ItemId, body: CallbackIn) -> dict[str, Any]:
    """Centre (admin): 回访 with the citizen's satisfaction (fixed → callback)."""
    lifecycle.callback(item_id, body.version, who, body.satisfaction, body.note)
    return _item_or_404(who, item_id)


@router.post("/items/{item_id}/close", response_model=ItemOut)
def close(who: Who, item_id: ItemId, body: NoteIn) -> dict[str, Any]:
    """Centre (admin): 结案."""
    lifecycle.close(item_id, body.version, who, body.note)
    return _item_or_404(who, item_id)


@router.post("/items/{item_id}/category", response_model=ItemOut)
def correct_category(who: Who, item_id: ItemId, body: CategoryIn) -> dict[str, Any]:
    """Analyst: correct the category (re-derives lead/departments; stored as a label for retraining)."""
    lifecycle.correct_category(item_id, body.version, who, body.category, body.note)
    return _item_or_404(who, item_id)


@router.get("/stats", response_model=Stats)
def stats(who: Who, street: Annotated[str | None, Query(pattern=_STREET_CODE)] = None) -> dict[str, Any]:
    """Counts by status and category, overdue, returned and escalated; per street for analysts."""
    from triage.hotspots.governance import street_overdue
    from triage.policy import visible_clause

    if who.role == Role.street:
        street = who.street_code
    q = QueueItem.__table__
    now = dt.datetime.now(dt.UTC)
    where = visible_clause(who, street)
    overdue = case((load_workflow().overdue_clause(q, now), 1), else_=0)
    # the street's share, timed from dispatch to it (docs/hotspots.md, "Fair SLA clocks")
    overdue_street = case((street_overdue(q, now), 1), else_=0)
    with get_engine().connect() as conn:
        by_status = dict(
            conn.execute(select(q.c.status, func.count()).where(where).group_by(q.c.status)).all()
        )
        by_cat = dict(
            conn.execute(select(q.c.category, func.count()).where(where).group_by(q.c.category)).all()
        )
        tot = conn.execute(
            select(
                func.count(),
                func.sum(overdue),
                func.sum(case((q.c.escalated, 1), else_=0)),
                func.sum(q.c.return_count),
                func.sum(overdue_street),
            ).where(where)
        ).one()
        per_street = None
        if who.role != Role.street and not street:
            per_street = [
                {
                    "street_code": s or "centre",
                    "items": n,
                    "overdue": int(o or 0),
                    "overdue_street": int(os_ or 0),
                }
                for s, n, o, os_ in conn.execute(
                    select(q.c.street_code, func.count(), func.sum(overdue), func.sum(overdue_street))
                    .group_by(q.c.street_code)
                    .order_by(func.count().desc())
                    .limit(500)
                )
            ]
    return {
        "street": street,
        "total": tot[0],
        "overdue": int(tot[1] or 0),  # the citizen's clock: from receipt
        "overdue_street": int(tot[4] or 0),  # the street's clock: from dispatch
        "escalated": int(tot[2] or 0),
        "returns": int(tot[3] or 0),
        "by_status": by_status,
        "by_category": {k or "": v for k, v in by_cat.items()},
        "per_street": per_street,
    }
