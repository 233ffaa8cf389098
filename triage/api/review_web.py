"""The centre's review desk in /web/ (派单台): server-rendered, Chinese, for admin tokens.

Queue → ticket → one key or click (1/2/3) confirms a suggestion and opens the next ticket; the
pickers take a Chinese name or a code. Every decision goes through :func:`triage.review.decide`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from triage import lifecycle, review
from triage.api.web import _who, templates
from triage.auth import Principal

router = APIRouter(prefix="/web", include_in_schema=False)
PAGE = 50
CENTRE_NAME = "市民热线服务中心"
STATIC = Path(__file__).parent / "static"
templates.env.globals["REASONS"] = review.REASONS


def _filters(reason: str | None, category: str | None, district: str | None, channel: str | None) -> dict:
    return {
        "reason": reason if reason in review.REASONS else None,
        "category": (category or "").strip() or None,
        "district": district if district and district.isdigit() and len(district) == 6 else None,
        "channel": (channel or "").strip() or None,
    }


def _qs(f: dict[str, Any], **extra: Any) -> str:
    q = urlencode({k: v for k, v in {**f, **extra}.items() if v})
    return "?" + q if q else ""


@lru_cache(maxsize=1)
def _pickers() -> dict[str, Any]:
    """The category picker's options (名称 code) and the street picker's (区 名称 code, by district)."""
    from triage.geo import get_gazetteer
    from triage.taxonomy import load_taxonomy

    gaz = get_gazetteer()
    tax = load_taxonomy()
    districts = sorted((u for u in gaz.units.values() if u.level == "district"), key=lambda u: u.code)
    streets = sorted(
        (u for u in gaz.units.values() if u.level == "street"), key=lambda u: (u.district_code, u.code)
    )
    dname = {d.code: d.name for d in districts}
    return {
        "categories": [(c.code, c.name) for c in tax.categories.values()],
        "districts": [(d.code, d.name) for d in districts],
        "streets": [(s.code, s.name, dname.get(s.district_code, "")) for s in streets],
    }


def _forbidden(request: Request, who: Principal) -> Response:
    return templates.TemplateResponse(
        request, "review_forbidden.html.j2", {"who": who, "street_name": ""}, status_code=403
    )


@router.get("/static/review.js")
def review_js() -> Response:
    return FileResponse(STATIC / "review.js", media_type="text/javascript")


@router.get("/review")
def desk(
    request: Request,
    reason: Annotated[str | None, Query(max_length=20)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    district: Annotated[str | None, Query(max_length=6)] = None,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    order: Annotated[str | None, Query(max_length=10)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    msg: Annotated[str | None, Query(max_length=500)] = None,
    error: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    who = _who(request)
    if who.role != "admin":
        return _forbidden(request, who)
    f = _filters(reason, category, district, channel)
    order = "learn" if order == "learn" else "deadline"
    total, items = review.review_items(who, **f, order=order, limit=PAGE, offset=(page - 1) * PAGE)
    ctx = {
        "who": who, "street_name": CENTRE_NAME, "items": items, "total": total, "page": page,
        "pages": max(1, -(-total // PAGE)), "f": f, "qs": _qs(f), "order": order,
        "counts": review.reason_counts(), "msg": msg, "error": error, **_pickers(),
    }  # fmt: skip
    return templates.TemplateResponse(request, "review.html.j2", ctx)


def _render_ticket(
    request: Request, who: Principal, item_id: int, f: dict, msg: str | None = None,
    error: str | None = None, code: int = 200,
) -> Response:  # fmt: skip
    it = review.review_item(who, item_id) if 0 < item_id < 2**31 else None
    if it is None:
        return templates.TemplateResponse(
            request, "notfound.html.j2", {"who": who, "item_id": item_id, "street_name": CENTRE_NAME},
            status_code=404,
        )  # fmt: skip
    nxt = review.next_item_id(it, **f)
    ctx = {
        "who": who, "street_name": CENTRE_NAME, "it": it, "f": f, "qs": _qs(f), "msg": msg, "error": error,
        "events": lifecycle.events(item_id, who), "next_id": nxt,
        "open": it["status"] in review.CENTRE_STATUSES and it["queue"] == "centre", **_pickers(),
    }  # fmt: skip
    return templates.TemplateResponse(request, "review_item.html.j2", ctx, status_code=code)


@router.get("/review/{item_id}")
def ticket(
    request: Request,
    item_id: int,
    reason: Annotated[str | None, Query(max_length=20)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    district: Annotated[str | None, Query(max_length=6)] = None,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    msg: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    who = _who(request)
    if who.role != "admin":
        return _forbidden(request, who)
    return _render_ticket(request, who, item_id, _filters(reason, category, district, channel), msg=msg)


def _error_zh(exc: lifecycle.LifecycleError) -> str:
    if exc.status_code == 409:
        return f"该工单已被他人处理或修改，页面已刷新为最新状态，请核对后再操作（{exc}）"
    if exc.status_code == 403:
        return f"当前账号无权派单（{exc}）"
    return f"未能派单（{exc}）"


@router.post("/review/{item_id}/decide")
def decide(
    request: Request,
    item_id: int,
    version: Annotated[int, Form(ge=1)],
    category: Annotated[str, Form(max_length=100)] = "",
    category_other: Annotated[str, Form(max_length=100)] = "",
    street: Annotated[str, Form(max_length=100)] = "",
    street_other: Annotated[str, Form(max_length=100)] = "",
    f_reason: Annotated[str, Form(max_length=20)] = "",
    f_category: Annotated[str, Form(max_length=64)] = "",
    f_district: Annotated[str, Form(max_length=6)] = "",
    f_channel: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    who = _who(request)
    if who.role != "admin":
        return _forbidden(request, who)
    f = _filters(f_reason, f_category, f_district, f_channel)
    # a suggestion button carries its category; the confirm button leaves it empty → the picker
    cat_text = category or category_other
    street_text = street_other or street
    cat = review.category_code(cat_text)
    st = review.street_code_for(street_text)
    problems = []
    if cat is None:
        problems.append(f"类别“{cat_text}”不在类别表中" if cat_text else "请选择类别")
    if st is None:
        problems.append(f"街乡镇“{street_text}”不在区划表中" if street_text else "请选择街乡镇")
    if problems:
        return _render_ticket(request, who, item_id, f, error="；".join(problems), code=422)
    before = review.position(item_id)
    try:
        done = review.decide(item_id, version, cat, st, who)
    except lifecycle.NotFound:
        return _render_ticket(request, who, 0, f)
    except lifecycle.LifecycleError as exc:
        return _render_ticket(request, who, item_id, f, error=_error_zh(exc), code=exc.status_code)
    info = review.street_info(st) or {"name": st}
    said = f"工单 {done['ticket_id'] or item_id} 已派往 {info['name']}"
    # the next ticket after this one's place in the queue (the ones skipped with n stay skipped),
    # else from the top again
    nxt = review.next_item_id(before, **f) or review.next_item_id(None, **f)
    if nxt is None:
        return RedirectResponse("/web/review" + _qs(f, msg=said + "；队列已处理完"), status_code=303)
    return RedirectResponse(f"/web/review/{nxt}" + _qs(f, msg=said), status_code=303)


@router.post("/review/batch")
def batch(
    request: Request,
    pick: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Confirm suggestion 1 and the resolver's street for every ticked ticket."""
    who = _who(request)
    if who.role != "admin":
        return _forbidden(request, who)
    picks = pick or []
    if not picks:
        return RedirectResponse("/web/review" + _qs({}, error="请先勾选工单"), status_code=303)
    if len(picks) > review.BATCH_LIMIT:
        return RedirectResponse(
            "/web/review" + _qs({}, error=f"一次最多批量派单 {review.BATCH_LIMIT} 件"), status_code=303
        )
    items, problems = [], []
    for p in picks:
        iid, _, ver = p.partition(":")
        if not (iid.isdigit() and ver.isdigit() and 0 < int(iid) < 2**31):
            problems.append(f"无效的选择 {p[:20]}")
            continue
        it = review.review_item(who, int(iid))
        street = review.suggested_street(it) if it else None
        if it is None or not it["top3"] or street is None:
            problems.append(f"工单 {iid}：没有建议类别或建议街乡镇，请逐件处理")
            continue
        items.append(
            {
                "id": int(iid),
                "version": int(ver),
                "category": it["top3"][0]["category"],
                "street_code": street,
            }
        )
    results = review.decide_batch(items, who) if items else []
    ok = sum(r["ok"] for r in results)
    problems += [f"工单 {r['id']}：{_error_zh_short(r)}" for r in results if not r["ok"]]
    return RedirectResponse(
        "/web/review" + _qs({}, msg=f"已批量派单 {ok} 件", error="；".join(problems)[:1900]), status_code=303
    )


def _error_zh_short(r: dict[str, Any]) -> str:
    return ("已被他人处理，请刷新" if r["status"] == 409 else "未能派单") + f"（{r['detail']}）"
