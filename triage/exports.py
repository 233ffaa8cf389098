"""Spreadsheets for people: the queue exports (web 下载表格, /api/v1/queue/export.*, `triage queue
export`) write Chinese names — 类别, 时限, 状态, 主办/协办单位, 是/否 — with the codes in their own
columns for whoever joins the sheet back to data. One place, so the three exports agree.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd


def _taxonomy() -> Any:
    from triage.taxonomy import TaxonomyError, load_taxonomy

    try:
        return load_taxonomy()
    except TaxonomyError:  # a broken taxonomy must not take the clerks' pages or exports down: codes
        return None


def category_zh(code: str | None) -> str:
    """占道经营 for street_vending; an unknown code (or a name already) shows as it is."""
    tax = _taxonomy()
    cat = tax.categories.get(code) if tax and code else None
    return cat.name if cat else (code or "")


def department_zh(code: str | None) -> str:
    """属地街道（乡镇） for street_office (taxonomy/departments.yaml); otherwise the value as it is."""
    tax = _taxonomy()
    dep = tax.departments.get(code) if tax and code else None
    return dep.name if dep else (code or "")


def tier_zh(code: str | None) -> str:
    """紧急 for emergency (taxonomy/sla_tiers.yaml)."""
    tax = _taxonomy()
    tier = tax.tiers.get(code) if tax and code else None
    return tier.name if tier else (code or "")


def status_zh(code: str | None) -> str:
    from triage.workflow import load_workflow

    return load_workflow().name(code)


def yes_no(value: Any) -> str:
    return "是" if value else "否"


def _bj(t: Any) -> str:
    from triage.config import get_settings

    return t.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M") if pd.notna(t) and t else ""


def _joined(codes: Any, fn: Callable[[str], str] = str) -> str:
    return "、".join(fn(c) for c in (codes or []))


# (header, how the cell is made from a queue item dict): the people's column, then the code column
QUEUE_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("编号 id", lambda it: it["id"]),
    ("工单编号 ticket_id", lambda it: it.get("ticket_id") or ""),
    ("受理时间 received_at", lambda it: _bj(it.get("received_at"))),
    ("类别 category", lambda it: category_zh(it.get("category"))),
    ("类别代码 category_code", lambda it: it.get("category") or ""),
    ("时限 sla_tier", lambda it: tier_zh(it.get("sla_tier"))),
    ("时限代码 sla_tier_code", lambda it: it.get("sla_tier") or ""),
    ("办理时限 due_at", lambda it: _bj(it.get("due_at"))),
    ("超期 overdue", lambda it: yes_no(it.get("overdue"))),
    ("状态 status", lambda it: status_zh(it.get("status"))),
    ("状态代码 status_code", lambda it: it.get("status") or ""),
    ("标题 title", lambda it: it.get("title") or ""),
    ("诉求内容 text", lambda it: it.get("text") or ""),
    ("地址 address", lambda it: it.get("address") or ""),
    ("来电人 caller", lambda it: it.get("caller") or ""),
    ("主办单位 lead_unit", lambda it: department_zh(it.get("lead_unit"))),
    ("主办单位代码 lead_unit_code", lambda it: it.get("lead_unit") or ""),
    ("协办单位 departments", lambda it: _joined(it.get("departments"), department_zh)),
    ("协办单位代码 department_codes", lambda it: _joined(it.get("departments"))),
    ("退单次数 returns", lambda it: it.get("return_count") or 0),
    ("督办 escalated", lambda it: yes_no(it.get("escalated"))),
    ("版本 version", lambda it: it.get("version")),
]


def queue_frame(items: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Queue items (as triage.queues / triage.api.common read them) → the sheet people open."""
    rows = [[fn(it) for _, fn in QUEUE_COLUMNS] for it in items]
    df = pd.DataFrame(rows, columns=[h for h, _ in QUEUE_COLUMNS])
    return df.map(defuse_formula)


def defuse_formula(value: Any) -> Any:
    """Spreadsheet formula injection: a cell starting with = + - @ (or a tab/CR) is prefixed with
    an apostrophe so Excel shows it as text instead of running it."""
    if isinstance(value, str) and value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def sheet_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """CSV as UTF-8 with a BOM (so Excel opens it as UTF-8) or an XLSX workbook."""
    if fmt == "csv":
        return df.to_csv(index=False).encode("utf-8-sig")
    buf = io.BytesIO()
    df.to_excel(buf, index=False, engine="xlsxwriter")
    return buf.getvalue()
