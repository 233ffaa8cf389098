"""Search routes: ``GET /api/v1/search`` for programs and ``/web/search`` (the box on the clerks'
queue page). The work and the access rules are in triage.search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from triage.api.common import fast_json, require_principal
from triage.auth import Principal
from triage.search import MAX_QUERY, SearchError, search_tickets

router = APIRouter(tags=["street offices and analysts"])
QueryText = Annotated[
    str, Query(min_length=1, max_length=MAX_QUERY, description="工单编号, phrase or address")
]


@router.get("/api/v1/search")
def search_api(
    who: Annotated[Principal, Depends(require_principal)],
    q: QueryText,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Tickets by 工单编号 (exact or part), a phrase of title/text, or address; every space-separated
    term must occur. Newest first, an exact 工单编号 on top. A street token finds only its own queue's
    tickets; text is masked. ``searched`` (``truncated`` says the same as yes/no): only this many of
    the newest tickets were searched (one- and two-character words alone have no index entry, or
    the index did not answer in time); ``null`` when every ticket was."""
    try:
        return fast_json(search_tickets(who, q, limit))
    except SearchError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/web/search", include_in_schema=False)
def search_page(request: Request, q: Annotated[str, Query(max_length=MAX_QUERY)] = "") -> Response:
    from triage.api.web import _street_name, _who, templates

    who = _who(request)
    ctx: dict[str, Any] = {
        "who": who,
        "street_name": _street_name(who.street_code),
        "q": q,
        "items": [],
        "searched": None,
    }
    if q.strip():
        try:
            found = search_tickets(who, q, 50)
            ctx |= {k: found[k] for k in ("items", "searched")}
        except SearchError as exc:
            ctx["error"] = f"无法搜索：{exc}"
    return templates.TemplateResponse(request, "search.html.j2", ctx)
