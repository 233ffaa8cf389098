"""The workflow table (``taxonomy/workflow.yaml``): a queue item's statuses and transitions.

Loaded into strict pydantic models and cross-checked on load like the taxonomy and the routing
table: an unknown status, role, effect, input or timestamp column raises
:class:`~triage.taxonomy.TaxonomyError` naming the file, the entry and the field. Everything that
used to keep its own copy of the status list derives from here: the Chinese names, the Open311
status and detailed status, the overdue rule, the API's status enum, the router's first statuses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from triage.auth import Role
from triage.config import get_settings
from triage.taxonomy import TaxonomyError, _read_yaml

ANY = "*"
# computations a transition may name; triage.lifecycle implements each (a test checks it does)
EFFECTS = ("return", "dispatch", "satisfaction", "recategorize")
INPUTS = ("street_code", "category", "satisfaction")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Status(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,23}$")
    name: str = Field(min_length=1)
    open311: Literal["open", "closed"]
    detailed: str = Field(pattern=r"^[A-Z_]+$")
    kind: Literal["open", "fixed", "closed"]
    queue: Literal["street", "centre"] | None = None
    aliases: list[str] = []


class Transition(_Strict):
    action: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    name: str = Field(min_length=1)
    from_: list[str] = Field(alias="from", min_length=1)
    to: str | None
    roles: list[Role] = Field(min_length=1)
    note: Literal["optional", "required"] = "optional"
    note_label: str = "a note"
    note_min: int = Field(2, ge=1)
    sets: list[str] = []
    effect: Literal[EFFECTS] | None = None  # type: ignore[valid-type]
    requires: list[Literal[INPUTS]] = []  # type: ignore[valid-type]


@dataclass(frozen=True)
class Workflow:
    statuses: dict[str, Status]
    transitions: dict[str, Transition]
    path: Path

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self.statuses)

    def name(self, code: str | None) -> str:
        """Chinese name of a status (an unknown code shows as it is)."""
        s = self.statuses.get(code or "")
        return s.name if s else (code or "")

    @property
    def names(self) -> dict[str, str]:
        return {c: s.name for c, s in self.statuses.items()}

    def open311(self, code: str) -> str:
        s = self.statuses.get(code)
        return s.open311 if s else "open"

    def detailed(self, code: str) -> str:
        s = self.statuses.get(code)
        return s.detailed if s else "SUBMITTED"

    def of_kind(self, *kinds: str) -> tuple[str, ...]:
        return tuple(c for c, s in self.statuses.items() if s.kind in kinds)

    @property
    def open_statuses(self) -> tuple[str, ...]:
        return self.of_kind("open")

    def transition(self, action: str) -> Transition:
        return self.transitions[action]

    def starts(self, action: str) -> tuple[str, ...]:
        """The statuses an action may start from ("*" expanded)."""
        t = self.transitions[action]
        return self.codes if ANY in t.from_ else tuple(t.from_)

    # --- the overdue rule: past its deadline and still open work (one rule, two forms) ----------
    def is_overdue(self, status: str, due_at: dt.datetime, now: dt.datetime | None = None) -> bool:
        return status in self.open_statuses and due_at < (now or dt.datetime.now(dt.UTC))

    def overdue_clause(self, table: Any, now: dt.datetime | None = None) -> Any:
        """The same rule as a SQL condition on a queue_items table."""
        from sqlalchemy import and_

        now = now or dt.datetime.now(dt.UTC)
        return and_(table.c.status.in_(self.open_statuses), table.c.due_at < now)

    def status_for_word(self, word: str, kinds: tuple[str, ...] = ("fixed", "closed")) -> str | None:
        """A status of the given kinds named by its code, Chinese name or an alias (imports)."""
        w = (word or "").strip().lower()
        for c, s in self.statuses.items():
            if s.kind in kinds and w in {c, s.name.lower(), *(a.lower() for a in s.aliases)}:
                return c
        return None


def _timestamp_columns() -> set[str]:
    from triage.store.models import QueueItem, UTCDateTime

    return {c.name for c in QueueItem.__table__.c if isinstance(c.type, UTCDateTime)} - {
        "created_at", "updated_at", "due_at",
    }  # fmt: skip


def _validated(path: Path, raw: Any, model: type[_Strict], label: str) -> Any:
    if not isinstance(raw, dict):
        raise TaxonomyError(path, "expected a mapping", entry=label)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        fld = ".".join(str(p) for p in err["loc"]) or None
        raise TaxonomyError(path, err["msg"], entry=label, field=fld) from None


def load_workflow(path: Path | str | None = None) -> Workflow:
    """Load and cross-check the workflow table; raise TaxonomyError on the first problem."""
    if path is None:  # the hot path (per routed row, per API item): no file-system call
        return _load_cached(get_settings().taxonomy_dir / "workflow.yaml")
    return _load_cached(Path(path).resolve())


@lru_cache(maxsize=4)
def _load_cached(p: Path) -> Workflow:
    data = _read_yaml(p)
    if not isinstance(data, dict):
        raise TaxonomyError(p, "expected a mapping with 'statuses' and 'transitions'")
    statuses: dict[str, Status] = {}
    for i, raw in enumerate(data.get("statuses") or [], start=1):
        label = f"statuses #{i}" + (
            f" ({raw.get('code')})" if isinstance(raw, dict) and raw.get("code") else ""
        )
        s = _validated(p, raw, Status, label)
        if s.code in statuses:
            raise TaxonomyError(p, f"duplicate status {s.code!r}", entry=label, field="code")
        statuses[s.code] = s
    if not statuses:
        raise TaxonomyError(p, "no statuses", field="statuses")
    stamps = _timestamp_columns()
    transitions: dict[str, Transition] = {}
    for i, raw in enumerate(data.get("transitions") or [], start=1):
        label = f"transitions #{i}" + (
            f" ({raw.get('action')})" if isinstance(raw, dict) and raw.get("action") else ""
        )
        t = _validated(p, raw, Transition, label)
        if t.action in transitions:
            raise TaxonomyError(p, f"duplicate action {t.action!r}", entry=label, field="action")
        for code in t.from_:
            if code != ANY and code not in statuses:
                raise TaxonomyError(p, f"unknown status {code!r}", entry=label, field="from")
        if t.to is not None and t.to not in statuses:
            raise TaxonomyError(p, f"unknown status {t.to!r}", entry=label, field="to")
        for col in t.sets:
            if col not in stamps:
                raise TaxonomyError(
                    p, f"{col!r} is not a timestamp column of queue_items ({', '.join(sorted(stamps))})",
                    entry=label, field="sets",
                )  # fmt: skip
        transitions[t.action] = t
    return Workflow(statuses, transitions, p)


def clear_cache() -> None:
    _load_cached.cache_clear()
