"""The life of a queue item after routing: 派单 → 签收 → 办理 → 办结 → 回访 → 结案, and 退单.

Every change is one conditional UPDATE (``WHERE id = :id AND version = :version``) plus one audit
row in ``queue_events`` in the same transaction, so two clerks working the same item cannot both
win: the second gets :class:`Conflict` (HTTP 409). A return (退单) needs a reason, sends the item
back to the 12345 centre, and a second return escalates it. The centre re-dispatches to the street
the operator picks or to the resolver's next choice (never a street that already returned it).

Open311 GeoReport v2 knows only ``open``/``closed``; the detailed status follows the Open311
extended set (``detailed_status``), see :data:`OPEN311_DETAILED`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from triage.auth import Principal
from triage.store import QueueEvent, QueueItem, Ticket, get_engine
from triage.store.models import utcnow
from triage.text import mask_text

STATUS_ZH = {
    "pending_dispatch": "待派单",
    "dispatched": "派单",
    "acknowledged": "签收",
    "in_progress": "办理",
    "fixed": "办结",
    "returned": "退单",
    "callback": "回访",
    "closed": "结案",
}
OPEN311_DETAILED = {
    "pending_dispatch": "CREATED",
    "dispatched": "SUBMITTED",
    "acknowledged": "ACKNOWLEDGED",
    "in_progress": "IN_PROCESS",
    "fixed": "FIXED",
    "returned": "REJECTED",
    "callback": "FIXED",
    "closed": "CLOSED",
}
CLOSED_STATUSES = ("fixed", "callback", "closed")
STREET_OPEN = ("dispatched", "acknowledged", "in_progress")
SATISFACTION = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}
ESCALATE_AFTER_RETURNS = 2


class LifecycleError(Exception):
    status_code = 422


class NotFound(LifecycleError):
    status_code = 404


class Conflict(LifecycleError):
    """Someone else changed the item first (stale version), or the status does not allow this."""

    status_code = 409


class Forbidden(LifecycleError):
    status_code = 403


def open311_status(status: str) -> str:
    return "closed" if status in CLOSED_STATUSES else "open"


def _load(conn: Connection, item_id: int, who: Principal | None) -> Any:
    row = conn.execute(select(QueueItem.__table__).where(QueueItem.id == item_id)).mappings().first()
    # another street's item is "not found", never "forbidden": ids must not leak what exists
    if row is None or (who is not None and not who.can_see_street(row["street_code"])):
        raise NotFound(f"queue item {item_id} not found")
    if who is not None and who.role == "street" and row["queue"] != "street":
        raise NotFound(f"queue item {item_id} not found")
    return row


def _change(
    item_id: int,
    version: int | None,
    who: Principal,
    action: str,
    allowed_from: tuple[str, ...],
    values: dict[str, Any] | None = None,
    note: str | None = None,
    compute: Any = None,
    after: Any = None,
) -> dict[str, Any]:
    """Apply one transition atomically; returns the updated row as a dict. ``after(conn, row)``
    writes what belongs to the same change (a review's label) in the same transaction."""
    with get_engine().begin() as conn:
        row = _load(conn, item_id, who)
        if version is not None and row["version"] != version:
            raise Conflict(f"item {item_id} is at version {row['version']}, not {version}: reload and retry")
        if row["status"] not in allowed_from:
            raise Conflict(
                f"cannot {action} an item in status {row['status']} ({STATUS_ZH.get(row['status'], '')})"
            )
        vals = dict(values or {})
        if compute:
            vals.update(compute(row))
        now = utcnow()
        vals.update(version=row["version"] + 1, updated_at=now)
        t = QueueItem.__table__
        n = conn.execute(
            update(t).where(t.c.id == item_id, t.c.version == row["version"]).values(**vals)
        ).rowcount
        if n != 1:
            raise Conflict(f"item {item_id} was changed by someone else: reload and retry")
        conn.execute(
            QueueEvent.__table__.insert(),
            {
                "item_id": item_id,
                "at": now,
                "actor": who.actor,
                "action": action,
                "from_status": row["status"],
                "to_status": vals.get("status", row["status"]),
                "from_street": row["street_code"],
                "to_street": vals.get("street_code", row["street_code"]),
                "note": mask_text(note),  # staff type numbers too
            },
        )
        new = dict(conn.execute(select(t).where(t.c.id == item_id)).mappings().one())
        if after:
            after(conn, new)
        return new


def _need_text(value: str | None, what: str, min_len: int = 2) -> str:
    v = (value or "").strip()
    if len(v) < min_len:
        raise LifecycleError(f"{what} is required (at least {min_len} characters)")
    return v


WORKING_ROLES = ("street", "admin")  # who works queue items (the clerks' pages offer the forms to these)


def _street_role(who: Principal) -> None:
    if who.role not in WORKING_ROLES:
        raise Forbidden("only a street office (or an admin) works queue items")


def acknowledge(item_id: int, version: int | None, who: Principal, note: str | None = None) -> dict:
    """签收: the street office has seen the item and takes it on."""
    _street_role(who)
    return _change(
        item_id, version, who, "acknowledge", ("dispatched",),
        {"status": "acknowledged", "acknowledged_at": utcnow()}, note,
    )  # fmt: skip


def add_update(item_id: int, version: int | None, who: Principal, note: str) -> dict:
    """办理: a progress note; the item is in progress from then on."""
    _street_role(who)
    note = _need_text(note, "a note")
    return _change(
        item_id, version, who, "update", ("acknowledged", "in_progress"), {"status": "in_progress"}, note
    )


def resolve(item_id: int, version: int | None, who: Principal, note: str) -> dict:
    """办结: the street reports the problem handled."""
    _street_role(who)
    note = _need_text(note, "a note on how it was handled")
    return _change(
        item_id, version, who, "resolve", ("acknowledged", "in_progress"),
        {"status": "fixed", "resolved_at": utcnow()}, note,
    )  # fmt: skip


def return_item(item_id: int, version: int | None, who: Principal, reason: str) -> dict:
    """退单: not this street's matter. Back to the centre; the second return escalates."""
    _street_role(who)
    reason = _need_text(reason, "a reason for the return")

    def compute(row: Any) -> dict[str, Any]:
        returns = (row["return_count"] or 0) + 1
        escalated = row["escalated"] or returns >= ESCALATE_AFTER_RETURNS
        by = list(row["returned_from"] or [])
        if row["street_code"] and row["street_code"] not in by:
            by.append(row["street_code"])
        return {
            "status": "returned",
            "queue": "centre",
            "street_code": None,
            "return_count": returns,
            "escalated": escalated,
            "priority": max(1, row["priority"] - 1)
            if escalated and not row["escalated"]
            else row["priority"],
            "returned_from": by,
            "centre_reason": f"退单 returned by {row['street_code']}: {mask_text(reason)}"
            + ("; 两次退单已升级 escalated after two returns" if escalated else ""),
        }

    return _change(item_id, version, who, "return", STREET_OPEN, note=reason, compute=compute)


def next_street(item: dict[str, Any]) -> str | None:
    """The resolver's best street for the ticket that has not already returned it."""
    from triage.geo import get_resolver

    with get_engine().connect() as conn:
        t = conn.execute(
            select(Ticket.address, Ticket.text).where(Ticket.ticket_id == item["ticket_id"])
        ).first()
    if t is None:
        return None
    excluded = set(item.get("returned_from") or [])
    for code in get_resolver().street_candidates(t.address, t.text):
        if code not in excluded:
            return code
    return None


def redispatch(
    item_id: int, version: int | None, who: Principal, street_code: str | None, note: str | None = None
) -> dict:
    """The centre sends a returned (or never dispatched) item to a street: the one the operator
    picks, or the resolver's next choice."""
    from triage.geo import get_gazetteer

    if who.role != "admin":
        raise Forbidden("only the centre (admin token) re-dispatches")
    if street_code:
        unit = get_gazetteer().unit(street_code)
        if unit is None or unit.level != "street":
            raise LifecycleError(f"{street_code!r} is not a street/town code")

    def compute(row: Any) -> dict[str, Any]:
        code = street_code or next_street(dict(row))
        if not code:
            raise LifecycleError("the resolver has no other street for this ticket: pick one (street_code)")
        unit = get_gazetteer().unit(code)
        return {
            "status": "dispatched",
            "queue": "street",
            "street_code": code,
            "district_code": unit.district_code,
        }

    return _change(
        item_id, version, who, "redispatch", ("returned", "pending_dispatch"), note=note, compute=compute
    )


def callback(
    item_id: int, version: int | None, who: Principal, satisfaction: str, note: str | None = None
) -> dict:
    """回访: the centre called the citizen back and recorded their satisfaction."""
    if who.role != "admin":
        raise Forbidden("only the centre (admin token) records call-backs")
    if satisfaction not in SATISFACTION:
        raise LifecycleError(f"satisfaction must be one of {', '.join(SATISFACTION)}")
    return _change(
        item_id,
        version,
        who,
        "callback",
        ("fixed",),
        {"status": "callback", "satisfaction": satisfaction},
        note,
    )


def close(item_id: int, version: int | None, who: Principal, note: str | None = None) -> dict:
    if who.role != "admin":
        raise Forbidden("only the centre (admin token) closes items")
    return _change(item_id, version, who, "close", ("fixed", "callback"), {"status": "closed"}, note)


def correct_category(
    item_id: int, version: int | None, who: Principal, category: str, note: str | None = None
) -> dict:
    """An analyst's category correction: re-derives lead unit and departments, and writes a Label
    row (source "correction", labeled_by = the token's name) that retraining picks up."""
    from triage.route import load_routing
    from triage.taxonomy import load_taxonomy

    if who.role not in ("analyst", "admin"):
        raise Forbidden("only analysts correct categories")
    tax = load_taxonomy()
    code = tax.code_for(category.strip()) if category else None
    if code is None:
        raise LifecycleError(f"{category!r} is not a category code or name")
    all_statuses = tuple(STATUS_ZH)

    def compute(row: Any) -> dict[str, Any]:
        lead, deps = load_routing().lead_and_departments(tax, code, row["district_code"])
        return {"category": code, "lead_unit": lead, "departments": deps}

    with get_engine().connect() as conn:
        before = _load(conn, item_id, who)
    item = _change(
        item_id, version, who, "recategorize", all_statuses,
        note=f"{before['category']} → {code}" + (f": {note}" if note else ""), compute=compute,
    )  # fmt: skip
    if item["ticket_id"]:
        _record_label(item["ticket_id"], code, who.name)
    return item


def _record_label(ticket_id: str, category: str, by: str) -> None:
    """An analyst's correction is a label for the next retraining (triage.labels owns the rule:
    one label per ticket and labeller, the newest wins)."""
    from triage.labels import record_correction

    record_correction(ticket_id, category, by)


def events(item_id: int, who: Principal | None = None) -> list[dict[str, Any]]:
    with get_engine().connect() as conn:
        _load(conn, item_id, who)
        q = select(QueueEvent.__table__).where(QueueEvent.item_id == item_id).order_by(QueueEvent.id)
        return [{**r, "note": mask_text(r["note"])} for r in conn.execute(q).mappings()]


# --- closed tickets handled outside the API ----------------------------------------------------
_STATUS_WORDS = {
    "办结": "fixed", "已办结": "fixed", "fixed": "fixed", "resolved": "fixed",
    "回访": "callback", "已回访": "callback", "callback": "callback",
    "结案": "closed", "已结案": "closed", "closed": "closed", "关闭": "closed",
}  # fmt: skip
_SATISFACTION_WORDS = {**{v: k for k, v in SATISFACTION.items()}, **{k: k for k in SATISFACTION}}


def ingest_closed_extract(path: Path | str, actor: str = "import") -> dict[str, Any]:
    """Apply a closed-ticket extract (ticket_id, status, resolved_at, satisfaction) in bulk.

    Unknown tickets and unreadable values are reported with their row number; the rest update
    their queue item (version + 1) with one audit event each. Re-applying the same file changes
    nothing (rows already in that state are skipped)."""
    import pandas as pd

    from triage.config import get_settings
    from triage.tables import cell_text, read_table, require_columns, row_numbers

    df = read_table(path)
    require_columns(df, ["ticket_id", "status"], str(path))
    tz = get_settings().tz
    problems: list[str] = []
    plans: list[tuple[int, str, dict[str, Any]]] = []
    records = df.to_dict(orient="records")
    for n, rec in zip(row_numbers(Path(path), len(df)), records, strict=True):
        tid = cell_text(rec.get("ticket_id"))
        status = _STATUS_WORDS.get(cell_text(rec.get("status")).lower())
        if status is None:
            problems.append(f"{path}, row {n}, field 'status': {rec.get('status')!r} is not 办结/回访/结案")
            continue
        vals: dict[str, Any] = {"status": status}
        raw_t = rec.get("resolved_at")
        if cell_text(raw_t):
            try:
                ts = pd.Timestamp(cell_text(raw_t))
            except ValueError:
                problems.append(f"{path}, row {n}, field 'resolved_at': {raw_t!r} is not a time")
                continue
            ts = ts.tz_localize(tz) if ts.tzinfo is None else ts
            vals["resolved_at"] = ts.to_pydatetime().astimezone(dt.UTC)
        sat = rec.get("satisfaction")
        if isinstance(sat, str) and sat.strip():
            if sat.strip() not in _SATISFACTION_WORDS:
                problems.append(f"{path}, row {n}, field 'satisfaction': {sat!r} is not 满意/基本满意/不满意")
                continue
            vals["satisfaction"] = _SATISFACTION_WORDS[sat.strip()]
        plans.append((n, tid, vals))
    t = QueueItem.__table__
    updated = unchanged = 0
    with get_engine().begin() as conn:
        now = utcnow()
        for n, tid, vals in plans:
            row = conn.execute(select(t).where(t.c.kind == "ticket", t.c.ticket_id == tid)).mappings().first()
            if row is None:
                problems.append(f"{path}, row {n}: ticket_id {tid!r} has no queue item")
                continue
            vals.setdefault("resolved_at", row["resolved_at"] or now)
            if all(row[k] == v for k, v in vals.items()):
                unchanged += 1
                continue
            conn.execute(
                update(t)
                .where(t.c.id == row["id"])
                .values(**vals, version=row["version"] + 1, updated_at=now)
            )
            conn.execute(
                QueueEvent.__table__.insert(),
                {
                    "item_id": row["id"], "at": now, "actor": actor, "action": "import_closed",
                    "from_status": row["status"], "to_status": vals["status"],
                    "from_street": row["street_code"], "to_street": row["street_code"],
                    "note": f"{Path(path).name} row {n}",
                },
            )  # fmt: skip
            updated += 1
    return {
        "rows": len(df),
        "updated": updated,
        "unchanged": unchanged,
        "rejected": len(problems),
        "problems": problems,
    }
