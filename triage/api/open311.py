"""Open311 GeoReport v2 under /open311/v2/ (JSON, and XML with the same field names).

service_code = our category code; service_request_id = the ticket id. Errors use the spec's
format: a list of {"code", "description"}. Reading requests is public as the spec has it, but
without a token only the public fields are shown (citizens' complaints: no description, address,
point or notes); a token shows full records of what it may see (a street token: its street, like
everywhere else) and always what that token itself submitted (docs/api.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
from typing import Annotated, Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from triage.api.common import get_item, list_items, mask, token_from
from triage.auth import Principal, authenticate
from triage.workflow import load_workflow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])


def optional_principal(request: Request) -> Principal | None:
    """The caller's token if one is given (a wrong one is refused, never read as anonymous)."""
    token = token_from(request)
    if not token:
        return None
    who = authenticate(token)
    if who is None:
        raise Open311Error(401, "api_key unknown or revoked", _fmt(request.path_params.get("fmt", "json")))
    return who


Who = Annotated[Principal | None, Depends(optional_principal)]
# the public view reads every citizen request (then shows public fields only): a read-only,
# city-wide principal that no token maps to
_PUBLIC = Principal(token_id=0, name="open311-public", role="analyst", street_code=None)
PUBLIC_FIELDS = (
    "service_request_id", "status", "service_name", "service_code", "agency_responsible",
    "service_notice", "requested_datetime", "updated_datetime", "expected_datetime", "address_id",
    "zipcode", "media_url", "detailed_status",
)  # fmt: skip
DEFAULT_WINDOW = dt.timedelta(days=90)  # the spec's default when no date is given
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


# --- who submitted a request --------------------------------------------------------------------
# The id handed out carries a keyed tag of the submitting token (HMAC with the deployment's secret
# salt), so the submitter can always read its request back — even when it went to the centre or to
# a street its token does not see — without a table of submitters. Other tokens cannot forge it.
def _submitter_tag(token_id: int, nonce: str) -> str:
    from triage.config import get_settings

    key = get_settings().pii_salt.encode()
    return hmac.new(key, f"open311-submitter|{token_id}|{nonce}".encode(), hashlib.sha256).hexdigest()[:10]


def new_request_id(who: Principal) -> str:
    from triage.config import get_settings

    nonce = secrets.token_hex(5)
    day = dt.datetime.now(get_settings().tz)
    return f"O311-{day:%Y%m%d}-{nonce}-{_submitter_tag(who.token_id, nonce)}"


def submitted_by(who: Principal | None, request_id: str) -> bool:
    parts = request_id.split("-")
    if who is None or len(parts) != 4 or parts[0] != "O311":
        return False
    return hmac.compare_digest(parts[3], _submitter_tag(who.token_id, parts[2]))


def _find(who: Principal | None, request_id: str) -> tuple[dict[str, Any] | None, bool]:
    """(item, full) for one request id: the full record when the token may see it or submitted it,
    the public fields when there is no token, nothing for a token that may not see it."""
    if who is not None:
        it = get_item(who, ticket_id=request_id)
        if it is not None:
            return it, True
        if submitted_by(who, request_id):
            return get_item(_PUBLIC, ticket_id=request_id), True
        return None, False  # a street's token does not learn what exists elsewhere
    return get_item(_PUBLIC, ticket_id=request_id), False


def public_record(rec: dict[str, Any]) -> dict[str, Any]:
    """A request record as anyone may read it: the fields of the spec, the private ones empty; the
    location only as the street (not the community)."""
    out = {k: (rec.get(k) if k in PUBLIC_FIELDS else None) for k in rec}
    out["address_id"] = (rec.get("address_id") or "")[:9] or None
    return out


def sla_notice(tier: str | None) -> str | None:
    """办理时限：紧急 2 小时 / 一般 7 天 — the tier's name and time in Chinese."""
    from triage.taxonomy import load_taxonomy

    t = load_taxonomy().tiers.get(tier or "")
    if t is None:
        return None
    h = int(t.hours)
    span = f"{h // 24} 天" if h >= 48 and h % 24 == 0 else f"{h} 小时"
    return f"办理时限：{t.name} {span}"


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
        "service_notice": sla_notice(it["sla_tier"]),
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


def _address_of(address_id: str, f: str) -> str:
    """The names of a gazetteer unit, district first (朝阳区望京街道南湖东园社区居委会)."""
    from triage.geo import get_gazetteer

    gaz = get_gazetteer()
    unit = gaz.unit(address_id[:12])
    if unit is None:
        raise Open311Error(
            400, f"address_id {address_id[:40]!r} is not a district, street or community code", f
        )
    chain = [gaz.unit(unit.district_code), gaz.unit(unit.street_code), unit]
    names: list[str] = []
    for u in chain:
        if u is not None and u.name not in names:
            names.append(u.name)
    return "".join(names)


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
    try:  # 0001-01-01T00:00+08:00 or 9999-12-31T23:59:59-14:00 are outside what UTC can hold
        t = t.astimezone(dt.UTC)
    except OverflowError:
        raise Open311Error(400, f"{name} {value!r} is out of range (years 1–9999 in UTC)", f) from None
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
    codes = _csv(service_code)
    unknown = sorted(set(codes or ()) - {s["service_code"] for s in service_list()})
    if unknown:
        raise Open311Error(
            400, f"service_code {', '.join(map(repr, unknown))} not found: see services.{f}", f
        )
    ids = _csv(service_request_id)
    start, end = _dt(start_date, "start_date", f), _dt(end_date, "end_date", f)
    if not (ids or start or end):  # the spec's default: the last 90 days
        start = dt.datetime.now(dt.UTC) - DEFAULT_WINDOW
    _, items = list_items(
        who or _PUBLIC,
        ticket_ids=ids,
        kind="ticket",  # proactive tasks are the street's own work, not citizens' service requests
        category=codes,
        status=statuses,
        start=start,
        end=end,
        updated_after=_dt(updated_after, "updated_after", f),
        newest_first=True,
        limit=page_size,
        offset=(page - 1) * page_size,
        count=False,
    )
    records = [request_record(it) for it in items]
    return respond(records if who else [public_record(r) for r in records], f, "service_requests", "request")


@router.get("/requests/{service_request_id}.{fmt}", summary="GeoReport v2: one service request")
def get_request(who: Who, service_request_id: str, fmt: str) -> Response:
    f = _fmt(fmt)
    it, full = _find(who, service_request_id[:64])
    if it is None:
        raise Open311Error(404, f"service_request_id {service_request_id!r} not found", f)
    rec = request_record(it)
    return respond([rec if full else public_record(rec)], f, "service_requests", "request")


@router.get("/tokens/{token}.{fmt}", summary="GeoReport v2: service request id from a token")
def get_token(who: Who, token: str, fmt: str) -> Response:
    # requests are created synchronously, so the token handed out is the service_request_id itself
    f = _fmt(fmt)
    it, _ = _find(who, token[:64])
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
    address_id = str(data.get("address_id") or "").strip()
    if address_id:  # our own codes (a request's address_id): the unit's names lead the address
        address = _address_of(address_id, f) + (address or "")
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
        raise Open311Error(400, "a location is required: address_string, address_id or lat/long", f)
    from triage.classify.registry import ModelError
    from triage.route import intake_one

    try:
        item = await run_in_threadpool(
            intake_one, description, address=address, lat=lat, lon=lon, source_category=code,
            ticket_id=new_request_id(who),
        )  # fmt: skip
    except ModelError as exc:
        # nothing is written before the model has answered (the ticket, its prediction and its
        # queue item go in one transaction afterwards), so the client can simply retry
        log.error("open311: request not accepted, the classifier cannot be loaded: %s", exc)
        raise Open311Error(
            503,
            "分类模型暂不可用，请求未保存，请稍后重试 the classifier is unavailable; nothing was stored, retry later",
            f,
        ) from None
    from triage.geo import get_gazetteer

    unit = get_gazetteer().unit(item["street_code"])
    notice = f"已派至{unit.name}" if unit else "已转市民热线服务中心人工派单"
    return respond(
        [{"service_request_id": item["ticket_id"], "service_notice": notice, "account_id": None}],
        f, "service_requests", "request", status=201,
    )  # fmt: skip
