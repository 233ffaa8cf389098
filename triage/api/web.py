"""Clerks' pages (server-rendered, Chinese): sign in with the street's token, work the queue.

The token is kept in an HttpOnly, SameSite=Strict cookie (so other sites cannot post forms on the
clerk's behalf); every page reads through the same functions and permissions as the API.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from triage import lifecycle, policy
from triage.api.common import COOKIE, get_item, list_items, token_from
from triage.auth import Principal, authenticate
from triage.exports import category_zh, department_zh
from triage.workflow import load_workflow

router = APIRouter(prefix="/web", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# Jinja's default autoescape keys on ".html"; these templates end in ".j2", so turn it on explicitly
templates.env.autoescape = True
PAGE = 50


def _fmt_time(t: Any) -> str:
    from triage.config import get_settings

    return t.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M") if t else ""


# queue_events.action → what a clerk reads in the history: the workflow's transitions by their
# Chinese names, plus the events written outside it (triage.route, the closed-ticket import,
# triage.hotspots.proactive); an unknown action shows its code
ACTION_ZH = {
    "route": "派单",
    **{a: t.name for a, t in load_workflow().transitions.items()},
    "import_closed": "导入结案",
    "proactive_create": "主动治理立项",
    "proactive_update": "主动治理更新",
}
# the note of a category correction: "street_vending → group_rental" (optionally ": why")
_CODE_ARROW = re.compile(r"^(?P<a>[a-z][a-z0-9_]*|None) → (?P<b>[a-z][a-z0-9_]*)(?P<rest>(?::.*)?)$", re.S)


def note_zh(note: str | None) -> str:
    """A correction's "code → code" note with the category names."""
    m = _CODE_ARROW.match(note or "")
    if not m:
        return note or ""
    before = "未分类" if m["a"] == "None" else category_zh(m["a"])
    return f"{before} → {category_zh(m['b'])}{m['rest']}"


templates.env.filters["bj"] = _fmt_time
templates.env.filters["cat_zh"] = category_zh
templates.env.filters["dept_zh"] = department_zh
templates.env.filters["note_zh"] = note_zh
templates.env.globals["STATUS_ZH"] = load_workflow().names
templates.env.globals["SATISFACTION"] = lifecycle.SATISFACTION
templates.env.globals["ACTION_ZH"] = ACTION_ZH


def redirect_to_login() -> Response:
    return RedirectResponse("/web/login", status_code=303)


def _who(request: Request) -> Principal:
    p = authenticate(token_from(request, allow_cookie=True))
    if p is None:
        raise HTTPException(401, "sign in")
    return p


def _street_name(code: str | None) -> str:
    from triage.geo import get_gazetteer

    unit = get_gazetteer().unit(code)
    return unit.name if unit else (code or "全部")


@router.get("/")
def home() -> Response:
    return RedirectResponse("/web/queue", status_code=303)


@router.get("/login")
def login_page(request: Request, error: str | None = None) -> Response:
    return templates.TemplateResponse(request, "login.html.j2", {"error": error})


@router.post("/login")
def login(request: Request, token: Annotated[str, Form(max_length=200)]) -> Response:
    p = authenticate(token.strip())
    if p is None:
        return templates.TemplateResponse(
            request, "login.html.j2", {"error": "令牌无效或已撤销 invalid or revoked token"}, status_code=401
        )
    resp = RedirectResponse("/web/queue", status_code=303)
    resp.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", path="/web", max_age=12 * 3600)
    return resp


@router.post("/logout")
def logout() -> Response:
    resp = redirect_to_login()
    resp.delete_cookie(COOKIE, path="/web")
    return resp


@router.get("/queue")
def queue_page(
    request: Request,
    status: Annotated[str | None, Query(max_length=24)] = None,
    overdue: Annotated[str | None, Query(max_length=5)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    msg: Annotated[str | None, Query(max_length=200)] = None,
    street: Annotated[str | None, Query(pattern=r"^(\d{9}|centre)$")] = None,
) -> Response:
    who = _who(request)
    st = status if status in load_workflow().statuses or status == "all" else None
    od = True if overdue == "1" else None
    # the working view (待办) by default: closed items stay reachable under 全部 or their status,
    # but do not push tonight's tickets off the first page; analysts and admins may narrow to one
    # street or the centre (a street token always sees its own)
    statuses = None if st == "all" else [st] if st else list(load_workflow().open_statuses)
    total, items = list_items(
        who, street=street, status=statuses, overdue=od, limit=PAGE, offset=(page - 1) * PAGE
    )
    ctx = {
        "who": who, "items": items, "total": total, "street": None if who.role == "street" else street,
        "street_name": "市民热线服务中心" if street == "centre" and who.role != "street"
        else _street_name(who.street_code if who.role == "street" else street),
        "page": page, "pages": max(1, -(-(total or 0) // PAGE)), "status": st, "overdue": od, "msg": msg,
    }  # fmt: skip
    return templates.TemplateResponse(request, "queue.html.j2", ctx)


@router.get("/items/{item_id}")
def item_page(
    request: Request, item_id: int, msg: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    who = _who(request)
    return _render_item(request, who, item_id, msg=msg)


def _render_item(
    request: Request,
    who: Principal,
    item_id: int,
    msg: str | None = None,
    error: str | None = None,
    code: int = 200,
) -> Response:
    it = get_item(who, item_id) if 0 < item_id < 2**31 else None
    if it is None:
        return templates.TemplateResponse(
            request, "notfound.html.j2", {"who": who, "item_id": item_id}, status_code=404
        )
    ctx = {
        "who": who, "it": it, "events": lifecycle.events(item_id, who), "msg": msg, "error": error,
        "street_name": _street_name(it["street_code"]), "actions": policy.actions_for(who, it),
        "can_work": any(policy.may(who, a) for a in _ACTIONS),
    }  # fmt: skip
    return templates.TemplateResponse(request, "item.html.j2", ctx, status_code=code)


NOTE_HINT = "请填写说明（至少两个字）"


def _error_text(exc: lifecycle.LifecycleError, note: str) -> str:
    """The clerk's message for a refused action, with the API's own text in brackets."""
    if exc.status_code == 409:
        msg = "该工单已被他人修改，请刷新后重试"
    elif exc.status_code == 403:
        msg = "当前账号无权办理工单（仅街道账号或管理员可以签收、办理、办结、退单）"
    elif exc.status_code == 422 and len(note.strip()) < 2:
        msg = NOTE_HINT
    else:
        msg = "操作未完成"
    return f"{msg}（{exc}）"


# the street's actions offered as forms (workflow actions), with the message shown after each
_ACTIONS = {
    "acknowledge": "已签收",
    "update": "已记录办理情况",
    "resolve": "已办结",
    "return": "已退单，工单退回市民热线服务中心",
}


@router.post("/items/{item_id}/{action}")
def item_action(
    request: Request,
    item_id: int,
    action: str,
    version: Annotated[int, Form(ge=1)],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    who = _who(request)
    if action not in _ACTIONS or not 0 < item_id < 2**31:
        return _render_item(request, who, 0)
    done = _ACTIONS[action]
    try:
        lifecycle.transition(action, item_id, version, who, note=note or None)
    except lifecycle.NotFound:
        return _render_item(request, who, 0)
    except lifecycle.LifecycleError as exc:
        return _render_item(request, who, item_id, error=_error_text(exc, note), code=exc.status_code)
    if action == "return":
        return RedirectResponse(f"/web/queue?msg={done}", status_code=303)
    return RedirectResponse(f"/web/items/{item_id}?msg={done}", status_code=303)


@router.get("/export.{fmt}")
def export(request: Request, fmt: str) -> Response:
    from triage.api.v1 import export_response

    who = _who(request)
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(404, "csv or xlsx")
    return export_response(who, None, fmt)
