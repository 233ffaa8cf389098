"""Shared pieces of the API: authentication, the queue read model, masking at the boundary."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import and_, func, select

from triage.auth import Principal, authenticate
from triage.config import get_settings
from triage.policy import visible_clause
from triage.store import QueueItem, Ticket, get_engine
from triage.text import mask_text
from triage.workflow import load_workflow

COOKIE = "t345_session"
_Q = QueueItem.__table__
_T = Ticket.__table__
_TOTALS: dict[tuple, tuple[float, int]] = {}
# One ``title`` per item: the ticket's for a ticket item, the task's own for a proactive task (as in
# triage.queues.item_dict). Selecting both title columns would hand back the ticket's as "title_1".
ITEM_COLS = [c for c in _Q.c if c.name not in ("returned_from", "title")] + [
    _T.c.received_at, func.coalesce(_T.c.title, _Q.c.title).label("title"), _T.c.text, _T.c.address,
    _T.c.channel, _T.c.caller_masked, _T.c.lat, _T.c.lon,
]  # fmt: skip

# free-text filters carry no control characters (a NUL byte reached PostgreSQL: a 500)
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"


def _default(o: Any) -> Any:
    if isinstance(o, dt.datetime | dt.date):
        return o.isoformat()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def fast_json(data: Any, status_code: int = 200) -> Response:
    """Serialise directly: FastAPI's generic encoder costs more than the queue query itself."""
    return Response(
        json.dumps(data, ensure_ascii=False, default=_default, separators=(",", ":")),
        status_code=status_code,
        media_type="application/json",
    )


def token_from(request: Request, allow_cookie: bool = False) -> str | None:
    """The presented token: ``Authorization: Bearer`` (or ``X-API-Key``) everywhere; ``?api_key=``
    only on Open311, whose spec puts it there (elsewhere a token in a URL ends up in logs and
    browser history); the session cookie only for the clerks' pages."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if request.headers.get("x-api-key"):
        return request.headers["x-api-key"].strip()
    if request.url.path.startswith("/open311/") and request.query_params.get("api_key"):
        return request.query_params["api_key"].strip()
    if allow_cookie:
        return request.cookies.get(COOKIE)
    return None


def require_principal(request: Request) -> Principal:
    p = authenticate(token_from(request))
    if p is None:
        raise HTTPException(401, "missing, unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return p


def mask(value: Any) -> Any:
    """Tickets are stored masked; mask again on the way out in case anything slipped in (older
    rows, staff's notes): normalised first, as at ingest."""
    return mask_text(value) if isinstance(value, str) else value


def public_item(row: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    d = dict(row)
    d.pop("_total", None)
    d["overdue"] = load_workflow().is_overdue(d["status"], d["due_at"], now)
    for k in ("title", "text", "address", "caller_masked", "centre_reason"):
        d[k] = mask(d.get(k))
    d["caller"] = d.pop("caller_masked", None)
    return d


visible = visible_clause  # the read side of triage.policy


def list_items(
    who: Principal,
    *,
    street: str | None = None,
    status: list[str] | None = None,
    category: list[str] | None = None,
    overdue: bool | None = None,
    ticket_ids: list[str] | None = None,
    kind: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    updated_after: dt.datetime | None = None,
    newest_first: bool = False,
    limit: int = 50,
    offset: int = 0,
    count: bool = True,
) -> tuple[int | None, list[dict[str, Any]]]:
    conds = [visible(who, street)]
    now = dt.datetime.now(dt.UTC)
    if status:
        conds.append(_Q.c.status.in_(status))
    if category:
        conds.append(_Q.c.category.in_(category))
    if overdue is not None:
        late = load_workflow().overdue_clause(_Q, now)
        conds.append(late if overdue else ~late)
    if ticket_ids:
        conds.append(_Q.c.ticket_id.in_(ticket_ids))
    if kind:
        conds.append(_Q.c.kind == kind)
    if updated_after:
        conds.append(_Q.c.updated_at > updated_after)
    if start or end:
        if start:
            conds.append(_T.c.received_at >= start)
        if end:
            conds.append(_T.c.received_at <= end)
    where = and_(*conds)
    joined = _Q.outerjoin(_T, _T.c.ticket_id == _Q.c.ticket_id)
    cq = select(func.count()).select_from(joined if (start or end) else _Q).where(where)
    cols = list(ITEM_COLS)
    # A queue's total is counted at most once per api_total_cache_seconds per process for the same filters (a
    # busy street's count costs far more than its first page); pages themselves are always fresh.
    total_key = None
    if count and not (ticket_ids or updated_after or start or end):
        total_key = (who.role, who.street_code, street, tuple(status or ()), tuple(category or ()), overdue)
        cached = _TOTALS.get(total_key)
        if cached and time.monotonic() - cached[0] < get_settings().api_total_cache_seconds:
            count = False
        else:
            cached = None
    else:
        cached = None
    if count:
        # the total rides along as an uncorrelated subquery: one round trip instead of two
        cols.append(cq.correlate(None).scalar_subquery().label("_total"))
    q = (
        select(*cols)
        .select_from(joined)
        .where(where)
        # a queue by deadline; Open311's request lists newest first
        .order_by(*((_T.c.received_at.desc(), _Q.c.id.desc()) if newest_first else (_Q.c.due_at, _Q.c.id)))
        .limit(limit)
        .offset(offset)
    )
    with get_engine().connect() as conn:
        rows = conn.execute(q).mappings().all()
        total = cached[1] if cached else None
        if count:
            total = rows[0]["_total"] if rows else conn.execute(cq).scalar_one()
            if total_key is not None:
                _TOTALS[total_key] = (time.monotonic(), total)
    return total, [public_item(r) for r in rows]


def forget_totals() -> None:
    """Drop cached queue totals (after a change made by this process)."""
    _TOTALS.clear()


def get_item(
    who: Principal, item_id: int | None = None, ticket_id: str | None = None
) -> dict[str, Any] | None:
    cond = (
        _Q.c.id == item_id
        if item_id is not None
        else and_(_Q.c.kind == "ticket", _Q.c.ticket_id == ticket_id)
    )
    q = (
        select(*ITEM_COLS, _Q.c.returned_from)
        .select_from(_Q.outerjoin(_T, _T.c.ticket_id == _Q.c.ticket_id))
        .where(cond, visible(who, None))
    )
    with get_engine().connect() as conn:
        row = conn.execute(q).mappings().first()
    return public_item(row) if row else None
