"""The life of a queue item after routing: 派单 → 签收 → 办理 → 办结 → 回访 → 结案, and 退单.

The statuses and transitions are data (``taxonomy/workflow.yaml``, loaded by :mod:`triage.workflow`);
who may do what is :mod:`triage.policy`. :func:`transition` performs any transition of the table;
the named functions below are one line each. Every change is one conditional UPDATE (``WHERE id = :id AND version = :version``) plus one audit
row in ``queue_events`` in the same transaction, so two clerks working the same item cannot both
win: the second gets :class:`Conflict` (HTTP 409). A return (退单) needs a reason, sends the item
back to the 12345 centre, and a second return escalates it. The centre re-dispatches to the street
the operator picks or to the resolver's next choice (never a street that already returned it).

Open311 GeoReport v2 knows only ``open``/``closed``; the detailed status follows the Open311
extended set (``detailed_status``); both are columns of the workflow table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from triage.auth import Principal
from triage.policy import READ, Conflict, Forbidden, LifecycleError, NotFound, check, may
from triage.store import QueueEvent, QueueItem, Ticket, get_engine
from triage.store.models import utcnow
from triage.text import mask_text
from triage.workflow import load_workflow

__all__ = [
    "Conflict", "Forbidden", "LifecycleError", "NotFound", "SATISFACTION", "transition", "events",
    "acknowledge", "add_update", "resolve", "return_item", "redispatch", "decide", "callback", "close",
    "correct_category", "ingest_closed_extract", "next_street", "open311_status",
]  # fmt: skip

SATISFACTION = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}
ESCALATE_AFTER_RETURNS = 2


def open311_status(status: str) -> str:
    return load_workflow().open311(status)


def _load(conn: Connection, item_id: int, who: Principal | None, action: str = READ) -> Any:
    row = conn.execute(select(QueueItem.__table__).where(QueueItem.id == item_id)).mappings().first()
    if row is None:
        raise NotFound(f"queue item {item_id} not found")
    if who is not None:
        check(who, action, row)
    return row


def _need_text(value: str | None, what: str, min_len: int = 2) -> str:
    v = (value or "").strip()
    if len(v) < min_len:
        raise LifecycleError(f"{what} is required (at least {min_len} characters)")
    return v


# --- effects: the computations a transition of workflow.yaml may name ---------------------------
Effect = Callable[[Any, Principal, dict[str, Any], "str | None"], dict[str, Any]]


def _return_effect(row: Any, who: Principal, inputs: dict[str, Any], note: str | None) -> dict[str, Any]:
    """退单: back to the centre with the street remembered; the second return escalates."""
    returns = (row["return_count"] or 0) + 1
    escalated = row["escalated"] or returns >= ESCALATE_AFTER_RETURNS
    by = list(row["returned_from"] or [])
    if row["street_code"] and row["street_code"] not in by:
        by.append(row["street_code"])
    return {
        "street_code": None,
        "return_count": returns,
        "escalated": escalated,
        "priority": max(1, row["priority"] - 1) if escalated and not row["escalated"] else row["priority"],
        "returned_from": by,
        "centre_reason": f"退单 returned by {row['street_code']}: {mask_text(note)}"
        + ("; 两次退单已升级 escalated after two returns" if escalated else ""),
    }


def _category_values(category: str, district_code: str | None) -> dict[str, Any]:
    from triage.route import load_routing
    from triage.taxonomy import load_taxonomy

    tax = load_taxonomy()
    code = tax.code_for(category.strip()) if category else None
    if code is None:
        raise LifecycleError(f"{category!r} is not a category code or name")
    lead, deps = load_routing().lead_and_departments(tax, code, district_code)
    return {"category": code, "lead_unit": lead, "departments": deps}


def _dispatch_effect(row: Any, who: Principal, inputs: dict[str, Any], note: str | None) -> dict[str, Any]:
    """To the street the operator picks, else the resolver's next choice; with a category (the
    review desk's decision) its lead unit and departments are re-derived for that street."""
    from triage.geo import get_gazetteer

    code = inputs.get("street_code")
    if code:
        unit = get_gazetteer().unit(code)
        if unit is None or unit.level != "street":
            raise LifecycleError(f"{code!r} is not a street/town code")
    else:
        code = next_street(dict(row))
        if not code:
            raise LifecycleError("the resolver has no other street for this ticket: pick one (street_code)")
        unit = get_gazetteer().unit(code)
    vals = {"street_code": code, "district_code": unit.district_code}
    if inputs.get("category"):
        vals.update(_category_values(inputs["category"], unit.district_code))
        vals.update(_sla_values(row, vals["category"]))
    return vals


def _sla_values(row: Any, category: str) -> dict[str, Any]:
    """A (re)decided category's SLA tier, priority and deadline (received time + the tier's hours,
    keyword escalations applied), as the router sets them; an escalated item stays one step up."""
    from triage.route import TIER_PRIORITY, load_routing
    from triage.taxonomy import load_taxonomy

    tax = load_taxonomy()
    with get_engine().connect() as conn:
        t = conn.execute(
            select(Ticket.title, Ticket.text, Ticket.received_at).where(Ticket.ticket_id == row["ticket_id"])
        ).first()
    received = t.received_at if t else row["created_at"]
    tier, why = load_routing().tier_for(
        tax, category, f"{(t.title if t else '') or ''} {(t.text if t else '') or ''}", received
    )
    prio = TIER_PRIORITY[tier] - (1 if row["escalated"] and TIER_PRIORITY[tier] > 1 else 0)
    return {
        "sla_tier": tier, "priority": prio, "centre_reason": why,
        "due_at": received + dt.timedelta(hours=tax.tiers[tier].hours),
    }  # fmt: skip


def _satisfaction_effect(
    row: Any, who: Principal, inputs: dict[str, Any], note: str | None
) -> dict[str, Any]:
    if inputs.get("satisfaction") not in SATISFACTION:
        raise LifecycleError(f"satisfaction must be one of {', '.join(SATISFACTION)}")
    return {"satisfaction": inputs["satisfaction"]}


def _recategorize_effect(
    row: Any, who: Principal, inputs: dict[str, Any], note: str | None
) -> dict[str, Any]:
    vals = _category_values(inputs["category"], row["district_code"])
    vals["_note"] = f"{row['category']} → {vals['category']}" + (f": {note}" if note else "")
    return vals


EFFECTS: dict[str, Effect] = {
    "return": _return_effect,
    "dispatch": _dispatch_effect,
    "satisfaction": _satisfaction_effect,
    "recategorize": _recategorize_effect,
}


def transition(
    action: str,
    item_id: int,
    version: int | None,
    who: Principal,
    *,
    note: str | None = None,
    after: Callable[[Connection, dict[str, Any]], None] | None = None,
    **inputs: Any,
) -> dict[str, Any]:
    """Perform one transition of taxonomy/workflow.yaml atomically; returns the updated row.

    Not visible to ``who`` → NotFound (404); role not allowed → Forbidden (403); status not a
    ``from`` of the action, or ``version`` stale → Conflict (409); a missing note or input →
    LifecycleError (422). One conditional UPDATE (``WHERE id AND version``) plus one audit row in
    ``queue_events``, in one transaction: of two clerks on one item exactly one wins.
    ``after(conn, row)`` writes what belongs to the same change (the review desk's label) in that
    transaction."""
    wf = load_workflow()
    if action not in wf.transitions:
        raise LifecycleError(f"unknown action {action!r}; known: {', '.join(wf.transitions)}")
    t = wf.transition(action)
    with get_engine().begin() as conn:
        row = _load(conn, item_id, who)  # 404 before anything else: ids must not leak
        if not may(who, action):
            check(who, action, row)  # the 403
        if version is not None and row["version"] != version:  # a stale version says so first
            raise Conflict(f"item {item_id} is at version {row['version']}, not {version}: reload and retry")
        check(who, action, row)  # the 409 of a status the action does not start from
        if t.note == "required":
            note = _need_text(note, t.note_label, t.note_min)
        for name in t.requires:
            if not inputs.get(name):
                raise LifecycleError(f"{name} is required to {action}")
        now = utcnow()
        vals: dict[str, Any] = {}
        if t.to is not None:
            vals["status"] = t.to
            if wf.statuses[t.to].queue:
                vals["queue"] = wf.statuses[t.to].queue
        vals.update({col: now for col in t.sets})
        if t.effect:
            vals.update(EFFECTS[t.effect](row, who, inputs, note))
        note = vals.pop("_note", note)
        vals.update(version=row["version"] + 1, updated_at=now)
        q = QueueItem.__table__
        n = conn.execute(
            update(q).where(q.c.id == item_id, q.c.version == row["version"]).values(**vals)
        ).rowcount
        if n != 1:
            raise Conflict(f"item {item_id} was changed by someone else: reload and retry")
        conn.execute(
            QueueEvent.__table__.insert(),
            {
                "item_id": item_id, "at": now, "actor": who.actor, "action": action,
                "from_status": row["status"], "to_status": vals.get("status", row["status"]),
                "from_street": row["street_code"], "to_street": vals.get("street_code", row["street_code"]),
                "note": mask_text(note),  # staff type numbers too
            },
        )  # fmt: skip
        new = dict(conn.execute(select(q).where(q.c.id == item_id)).mappings().one())
        if after is not None:
            after(conn, new)
        return new


# --- the actions by name (each one row of workflow.yaml) ----------------------------------------
def acknowledge(item_id: int, version: int | None, who: Principal, note: str | None = None) -> dict:
    """签收: the street office has seen the item and takes it on."""
    return transition("acknowledge", item_id, version, who, note=note)


def add_update(item_id: int, version: int | None, who: Principal, note: str) -> dict:
    """办理: a progress note; the item is in progress from then on."""
    return transition("update", item_id, version, who, note=note)


def resolve(item_id: int, version: int | None, who: Principal, note: str) -> dict:
    """办结: the street reports the problem handled."""
    return transition("resolve", item_id, version, who, note=note)


def return_item(item_id: int, version: int | None, who: Principal, reason: str) -> dict:
    """退单: not this street's matter. Back to the centre; the second return escalates."""
    return transition("return", item_id, version, who, note=reason)


def redispatch(
    item_id: int, version: int | None, who: Principal, street_code: str | None, note: str | None = None
) -> dict:
    """The centre sends a returned (or never dispatched) item to the street the operator picks,
    or the resolver's next choice."""
    return transition("redispatch", item_id, version, who, note=note, street_code=street_code)


def decide(
    item_id: int,
    version: int | None,
    who: Principal,
    street_code: str,
    category: str,
    note: str | None = None,
) -> dict:
    """The centre's review desk: dispatch a pending or returned item with the street and category
    the operator chose."""
    return transition("decide", item_id, version, who, note=note, street_code=street_code, category=category)


def callback(
    item_id: int, version: int | None, who: Principal, satisfaction: str, note: str | None = None
) -> dict:
    """回访: the centre called the citizen back and recorded their satisfaction."""
    return transition("callback", item_id, version, who, note=note, satisfaction=satisfaction)


def close(item_id: int, version: int | None, who: Principal, note: str | None = None) -> dict:
    return transition("close", item_id, version, who, note=note)


def correct_category(
    item_id: int, version: int | None, who: Principal, category: str, note: str | None = None
) -> dict:
    """An analyst's category correction: re-derives lead unit and departments, and writes a Label
    row (source "correction", labeled_by = the token's name) that retraining picks up."""
    item = transition("recategorize", item_id, version, who, note=note, category=category)
    if item["ticket_id"]:
        _record_label(item["ticket_id"], item["category"], who.name)
    return item


def _record_label(ticket_id: str, category: str, by: str) -> None:
    """An analyst's correction is a label for the next retraining (triage.labels owns the rule:
    one label per ticket and labeller, the newest wins)."""
    from triage.labels import record_correction

    record_correction(ticket_id, category, by)


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


def events(item_id: int, who: Principal | None = None) -> list[dict[str, Any]]:
    with get_engine().connect() as conn:
        _load(conn, item_id, who)
        q = select(QueueEvent.__table__).where(QueueEvent.item_id == item_id).order_by(QueueEvent.id)
        return [{**r, "note": mask_text(r["note"])} for r in conn.execute(q).mappings()]


# --- closed tickets handled outside the API ----------------------------------------------------
_SATISFACTION_WORDS = {**{v: k for k, v in SATISFACTION.items()}, **{k: k for k in SATISFACTION}}


def ingest_closed_extract(path: Path | str, actor: str = "import") -> dict[str, Any]:
    """Apply a closed-ticket extract (ticket_id, status; optional acknowledged_at, resolved_at,
    closed_at, satisfaction) in bulk.

    Unknown tickets and unreadable values are reported with their row number; the rest update
    their queue item (version + 1) with audit events dated when things happened, so the three
    rates read the extract as they read clerks' work: an ``acknowledge`` event at acknowledged_at
    (when the item had not been acknowledged yet) and one ``import_closed`` event at closed_at
    (else resolved_at, else the import time). The item's own acknowledgement, if any, is kept.
    Re-applying the same file changes nothing (rows already in that state are skipped)."""
    import pandas as pd

    from triage.config import get_settings
    from triage.tables import cell_text, read_table, require_columns, row_numbers

    wf = load_workflow()
    done_names = "/".join(wf.name(c) for c in wf.of_kind("fixed", "closed"))
    df = read_table(path)
    require_columns(df, ["ticket_id", "status"], str(path))
    tz = get_settings().tz
    problems: list[str] = []
    plans: list[tuple[int, str, dict[str, Any], dt.datetime | None]] = []
    records = df.to_dict(orient="records")
    for n, rec in zip(row_numbers(Path(path), len(df)), records, strict=True):
        tid = cell_text(rec.get("ticket_id"))
        status = wf.status_for_word(cell_text(rec.get("status")))
        if status is None:
            problems.append(f"{path}, row {n}, field 'status': {rec.get('status')!r} is not {done_names}")
            continue
        vals: dict[str, Any] = {"status": status}
        times: dict[str, dt.datetime] = {}
        for col in ("acknowledged_at", "resolved_at", "closed_at"):
            raw_t = rec.get(col)
            if not cell_text(raw_t):
                continue
            try:
                ts = pd.Timestamp(cell_text(raw_t))
            except ValueError:
                problems.append(f"{path}, row {n}, field '{col}': {raw_t!r} is not a time")
                break
            ts = ts.tz_localize(tz) if ts.tzinfo is None else ts
            times[col] = ts.to_pydatetime().astimezone(dt.UTC)
        else:
            sat = rec.get("satisfaction")
            if isinstance(sat, str) and sat.strip():
                if sat.strip() not in _SATISFACTION_WORDS:
                    problems.append(
                        f"{path}, row {n}, field 'satisfaction': {sat!r} is not 满意/基本满意/不满意"
                    )
                    continue
                vals["satisfaction"] = _SATISFACTION_WORDS[sat.strip()]
            if "resolved_at" in times:
                vals["resolved_at"] = times["resolved_at"]
            if "acknowledged_at" in times:
                vals["acknowledged_at"] = times["acknowledged_at"]
            plans.append((n, tid, vals, times.get("closed_at") or times.get("resolved_at")))
    t = QueueItem.__table__
    cols = ("status", "resolved_at", "satisfaction", "acknowledged_at")
    updated = unchanged = 0
    with get_engine().begin() as conn:
        now = utcnow()
        items: dict[str, Any] = {}
        ids = list({tid for _, tid, _, _ in plans})
        for k in range(0, len(ids), 5000):  # bounded IN lists; one round trip per 5,000 rows
            chunk = ids[k : k + 5000]
            for row in conn.execute(
                select(t).where(t.c.kind == "ticket", t.c.ticket_id.in_(chunk))
            ).mappings():
                items[row["ticket_id"]] = row
        changes: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for n, tid, vals, done_at in plans:
            row = items.get(tid)
            if row is None:
                problems.append(f"{path}, row {n}: ticket_id {tid!r} has no queue item")
                continue
            vals.setdefault("resolved_at", row["resolved_at"] or now)
            if row["acknowledged_at"] is not None:
                vals.pop("acknowledged_at", None)  # the street's own 签收 stands
            if all(row[k] == v for k, v in vals.items()):
                unchanged += 1
                continue
            changes.append(
                {**{c: vals.get(c, row[c]) for c in cols}, "_id": row["id"], "_v": row["version"] + 1}
            )
            base = {"item_id": row["id"], "actor": actor, "from_street": row["street_code"],
                    "to_street": row["street_code"]}  # fmt: skip
            note = f"{Path(path).name} row {n}"
            if vals.get("acknowledged_at"):
                events.append({**base, "at": vals["acknowledged_at"], "action": "acknowledge",
                               "from_status": row["status"], "to_status": "acknowledged", "note": note})  # fmt: skip
            events.append({**base, "at": done_at or now, "action": "import_closed",
                           "from_status": "acknowledged" if vals.get("acknowledged_at") else row["status"],
                           "to_status": vals["status"], "note": note})  # fmt: skip
            updated += 1
        if changes:
            conn.execute(
                update(t)
                .where(t.c.id == bindparam("_id"))
                .values(**{c: bindparam(c) for c in cols}, version=bindparam("_v"), updated_at=now),
                changes,
            )
            conn.execute(QueueEvent.__table__.insert(), events)
    return {
        "rows": len(df),
        "updated": updated,
        "unchanged": unchanged,
        "rejected": len(problems),
        "problems": problems,
    }
