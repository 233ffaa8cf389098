"""Open311 GeoReport v2 under /open311/v2/ (JSON, and XML with the same field names).

service_code = our category code; service_request_id = the ticket id. Errors use the spec's
format: a list of {"code", "description"}. Reading requests needs a token (they are citizens'
complaints); a street token sees only its own street, like everywhere else.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from triage.api.common import get_item, list_items, mask, require_principal
from triage.auth import Principal
from triage.workflow import load_workflow

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])
Who = Annotated[Principal, Depends(require_principal)]
REQUEST_FIELDS = (
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
    "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url",
)  # fmt: skip


class Open311Error(Exception):
    def __init__(self, code: int, description: str, fmt: str = "json"):
        self.code, self.description, self.fmt = code, description, fmt


def _iso(t: dt.datetime | None) -> str | None:
    from triage.config import get_settings

    return t.astimezone(get_settings().tz).isoformat(timespec="seconds") if t else None


# characters XML 1.0 cannot carry at all (escaping does not help): one stray U+FFFF in a stored text
# would make the whole page unparseable. Text is cleaned at ingest; this guards older rows.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(root: str, child: str, rows: list[dict[str, Any]]) -> str:
    def val(v: Any) -> str:
        if isinstance(v, list):
            return "".join(f"<keyword>{escape(str(x))}</keyword>" for x in v)
        if isinstance(v, bool):
            return "true" if v else "false"
        return "" if v is None else escape(_XML_INVALID.sub("", str(v)))

    body = "".join(
        f"<{child}>" + "".join(f"<{k}>{val(v)}</{k}>" for k, v in r.items()) + f"</{child}>" for r in rows
    )
    return f'<?xml version="1.0" encoding="utf-8"?><{root}>{body}</{root}>'


def respond(data: list[dict[str, Any]], fmt: str, root: str, child: str, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(_xml(root, child, data), status_code=status, media_type="text/xml; charset=utf-8")
    return Response(
        json.dumps(data, ensure_ascii=False), status_code=status, media_type="application/json; charset=utf-8"
    )


def error_response(code: int, description: str, fmt: str = "json") -> Response:
    return respond([{"code": code, "description": description}], fmt, "errors", "error", status=code)


def _fmt(fmt: str) -> str:
    if fmt not in ("json", "xml"):
        raise Open311Error(404, f"format {fmt!r} not supported: use .json or .xml")
    return fmt


def service_list() -> list[dict[str, Any]]:
    from triage.taxonomy import load_taxonomy

    tax = load_taxonomy()
    return [
        {
            "service_code": c.code,
            "service_name": c.name,
            "description": c.scope,
            "metadata": False,
            "type": "realtime",
            "keywords": ",".join(c.keywords[:8]),
            "group": c.area,
        }
        for c in tax.categories.values()
    ]


def request_record(it: dict[str, Any]) -> dict[str, Any]:
    from triage.geo import get_gazetteer
    from triage.taxonomy import load_taxonomy

    tax = load_taxonomy()
    cat = tax.categories.get(it["category"] or "")
    gaz = get_gazetteer()
    unit = gaz.unit(it["street_code"]) if it["queue"] == "street" else None
    agency = unit.name if unit else "12345市民服务热线中心"
    wf = load_workflow()
    notes = wf.name(it["status"])
    if it["status"] == "returned" and it.get("centre_reason"):
        notes += f"：{it['centre_reason']}"
    return {
        "service_request_id": it["ticket_id"],
        "status": wf.open311(it["status"]),
        "status_notes": mask(notes),
        "service_name": cat.name if cat else None,
        "service_code": it["category"],
        "description": it["text"],
        "agency_responsible": agency,
        "service_notice": f"办理时限 {it['sla_tier']}",
        "requested_datetime": _iso(it["received_at"]),
        "updated_datetime": _iso(it["updated_at"]),
        "expected_datetime": _iso(it["due_at"]),
        "address": it["address"],
        "address_id": it["community_code"] or it["street_code"],
        "zipcode": None,
        "lat": it["lat"],
        "long": it["lon"],
        "media_url": None,
        # extension fields (Open311 extended attributes)
        "detailed_status": wf.detailed(it["status"]),
        "return_count": it["return_count"],
        "escalated": it["escalated"],
    }


@router.get("/services.{fmt}", summary="GeoReport v2: list services (the 29 task categories)")
def services(fmt: str) -> Response:
    return respond(service_list(), _fmt(fmt), "services", "service")


@router.get("/services/{service_code}.{fmt}", summary="GeoReport v2: service definition")
def service_definition(service_code: str, fmt: str) -> Response:
    f = _fmt(fmt)
    if service_code not in {s["service_code"] for s in service_list()}:
        raise Open311Error(404, f"service_code {service_code!r} not found", f)
    d = {"service_code": service_code, "attributes": []}
    if f == "xml":
        return Response(
            f'<?xml version="1.0" encoding="utf-8"?><service_definition><service_code>{escape(service_code)}'
            "</service_code><attributes></attributes></service_definition>",
            media_type="text/xml; charset=utf-8",
        )
    return respond(d, f, "", "")  # type: ignore[arg-type]


def _dt(value: str | None, name: str, f: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C/ISO 8601 datetime, not {value!r}", f) from None
    if t.tzinfo is None:
        from triage.config import get_settings

        t = t.replace(tzinfo=get_settings().tz)
    return t


def _csv(value: str | None) -> list[str] | None:
    vals = [v.strip() for v in (value or "").split(",") if v.strip()]
    return vals or None


@router.get("/requests.{fmt}", summary="GeoReport v2: query service requests")
def get_requests(
    who: Who,
    fmt: str,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=2000)] = None,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=40)] = None,
    updated_after: Annotated[str | None, Query(max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    f = _fmt(fmt)
    statuses = None
    if status:
        wanted = set(_csv(status) or [])
        if not wanted <= {"open", "closed"}:
            raise Open311Error(400, "status must be open, closed or both (comma-separated)", f)
        wf = load_workflow()
        statuses = [s for s in wf.codes if wf.open311(s) in wanted]
    _, items = list_items(
        who,
        ticket_ids=_csv(service_request_id),
        kind="ticket",  # proactive tasks are the street's own work, not citizens' service requests
        category=_csv(service_code),
        status=statuses,
        start=_dt(start_date, "start_date", f),
        end=_dt(end_date, "end_date", f),
        updated_after=_dt(updated_after, "updated_after", f),
        limit=page_size,
        offset=(page - 1) * page_size,
        count=False,
    )
    return respond([request_record(it) for it in items], f, "service_requests", "request")


@router.get("/requests/{service_request_id}.{fmt}", summary="GeoReport v2: one service request")
def get_request(who: Who, service_request_id: str, fmt: str) -> Response:
    f = _fmt(fmt)
    it = get_item(who, ticket_id=service_request_id[:64])
    if it is None:
        raise Open311Error(404, f"service_request_id {service_request_id!r} not found", f)
    return respond([request_record(it)], f, "service_requests", "request")


@router.get("/tokens/{token}.{fmt}", summary="GeoReport v2: service request id from a token")
def get_token(who: Who, token: str, fmt: str) -> Response:
    # requests are created synchronously, so the token handed out is the service_request_id itself
    f = _fmt(fmt)
    it = get_item(who, ticket_id=token[:64])
    if it is None:
        raise Open311Error(404, f"token {token!r} not found", f)
    return respond(
        [{"service_request_id": it["ticket_id"], "token": token}], f, "service_requests", "request"
    )


@router.post(
    "/requests.{fmt}",
    summary="GeoReport v2: create a service request (classified and routed at once)",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["service_code"],
                        "properties": {
                            "service_code": {"type": "string"},
                            "description": {"type": "string", "maxLength": 4000},
                            "address_string": {"type": "string", "maxLength": 500},
                            "lat": {"type": "number"},
                            "long": {"type": "number"},
                            "api_key": {"type": "string"},
                        },
                    }
                }
            }
        }
    },
)
async def post_request(request: Request, fmt: str) -> Response:
    from starlette.concurrency import run_in_threadpool

    from triage.api.common import token_from
    from triage.auth import authenticate

    f = _fmt(fmt)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        try:
            data = await request.json()
        except ValueError:
            raise Open311Error(400, "body is not valid JSON", f) from None
        if not isinstance(data, dict):
            raise Open311Error(400, "body must be a JSON object", f)
    else:
        form = await request.form()
        data = {k: v for k, v in form.items() if isinstance(v, str)}
    who = authenticate(token_from(request) or (str(data.get("api_key")) if data.get("api_key") else None))
    if who is None:
        raise Open311Error(401, "api_key missing, unknown or revoked", f)
    code = str(data.get("service_code") or "").strip()
    if code not in {s["service_code"] for s in service_list()}:
        raise Open311Error(400, f"service_code {code!r} not found: see services.{f}", f)
    description = str(data.get("description") or "").strip()
    address = str(data.get("address_string") or "").strip() or None
    lat = lon = None
    if data.get("lat") not in (None, "") or data.get("long") not in (None, ""):
        try:
            lat, lon = float(data["lat"]), float(data["long"])
        except (KeyError, TypeError, ValueError):
            raise Open311Error(400, "lat and long must both be numbers", f) from None
        if not (39.4 <= lat <= 41.1 and 115.4 <= lon <= 117.6):
            lat = lon = None  # outside Beijing: keep the request, drop the point
    if not description:
        raise Open311Error(400, "description is required", f)
    if len(description) > 4000 or (address and len(address) > 500):
        raise Open311Error(400, "description (4000) or address_string (500) too long", f)
    if address is None and lat is None:
        raise Open311Error(400, "a location is required: address_string or lat/long", f)
    from triage.route import intake_one

    item = await run_in_threadpool(
        intake_one, description, address=address, lat=lat, lon=lon, source_category=code
    )
    from triage.geo import get_gazetteer

    unit = get_gazetteer().unit(item["street_code"])
    notice = f"已派至{unit.name}" if unit else "已转市民热线服务中心人工派单"
    return respond(
        [{"service_request_id": item["ticket_id"], "service_notice": notice, "account_id": None}],
        f, "service_requests", "request", status=201,
    )  # fmt: skip
