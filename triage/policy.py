"""Who may see and do what: one policy for reads (queue pages, items, exports, Open311) and
writes (every transition of ``taxonomy/workflow.yaml``).

- Seeing: a street token sees only items in its own street's queue; analysts and admins see all.
  Something a principal may not see is "not found" (404), never "forbidden": ids must not leak.
- Doing: the transition's ``roles`` (workflow.yaml) say who may perform it (else 403); its
  ``from`` says in which statuses (else 409, the item moved on).

``can(who, action, item)`` answers yes/no; ``check`` raises the matching error; ``visible_clause``
is the seeing rule as a SQL condition for list queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from triage.auth import Role

if TYPE_CHECKING:
    from triage.auth import Principal

READ = "read"


class LifecycleError(Exception):
    status_code = 422


class NotFound(LifecycleError):
    status_code = 404


class Conflict(LifecycleError):
    """Someone else changed the item first (stale version), or the status does not allow this."""

    status_code = 409


class Forbidden(LifecycleError):
    status_code = 403


def sees(who: Principal, item: Mapping[str, Any]) -> bool:
    """May ``who`` see this queue item (a row or dict with ``queue`` and ``street_code``)?"""
    if who.role == Role.street:
        return (
            item["queue"] == "street"
            and item["street_code"] is not None
            and (item["street_code"] == who.street_code)
        )
    return True


def visible_clause(who: Principal, street: str | None = None) -> Any:
    """``sees`` as a WHERE clause on queue_items, optionally narrowed to one street or 'centre'."""
    from sqlalchemy import and_

    from triage.store import QueueItem

    q = QueueItem.__table__
    if who.role == Role.street:
        return and_(q.c.queue == "street", q.c.street_code == who.street_code)
    if street == "centre":
        return and_(q.c.street_code.is_(None), q.c.queue == "centre")  # centre items have no street
    if street:
        return and_(q.c.queue == "street", q.c.street_code == street)
    return q.c.id.is_not(None)


def may(who: Principal, action: str) -> bool:
    """Does the principal's role allow ``action`` at all (whatever the item)?"""
    from triage.workflow import load_workflow

    if action == READ:
        return True
    return who.role in load_workflow().transition(action).roles


def check(who: Principal, action: str, item: Mapping[str, Any] | None) -> None:
    """Raise NotFound (404), Forbidden (403) or Conflict (409) unless ``who`` may do ``action``
    (``"read"`` or a workflow action) on ``item`` now. ``item`` None means it does not exist."""
    from triage.workflow import load_workflow

    if item is None or not sees(who, item):
        raise NotFound(f"queue item {item.get('id', '') if item else ''} not found")
    if action == READ:
        return
    wf = load_workflow()
    t = wf.transition(action)
    if who.role not in t.roles:
        raise Forbidden(f"{action} ({t.name}) is for {', '.join(r.value for r in t.roles)}, not {who.role}")
    if item["status"] not in wf.starts(action):
        raise Conflict(f"cannot {action} an item in status {item['status']} ({wf.name(item['status'])})")


def can(who: Principal, action: str, item: Mapping[str, Any] | None) -> bool:
    try:
        check(who, action, item)
    except LifecycleError:
        return False
    return True


def actions_for(who: Principal, item: Mapping[str, Any]) -> list[str]:
    """The workflow actions ``who`` may perform on ``item`` now (pages show these forms)."""
    from triage.workflow import load_workflow

    return [a for a in load_workflow().transitions if can(who, a, item)]
