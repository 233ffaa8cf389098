"""The 12345 centre's review desk: the tickets the model or the resolver is unsure of, decided by
an operator (派单员), and every decision a training label.

The centre queue holds ``pending_dispatch`` (never dispatched: low classifier confidence or no
street) and ``returned`` (退单) items. :func:`decide` is the one place a decision happens: one
lifecycle change (optimistic version → 409 naming who got there first, one audit event) that
dispatches the item to the chosen street with the deadline of the category's SLA tier, and in the
same transaction a ``labels`` row (``source = review``, who, when) whether or not the operator
agreed with suggestion 1.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, case, func, select, tuple_
from sqlalchemy.engine import Connection

from triage import lifecycle
from triage.auth import Principal
from triage.store import Label, Prediction, QueueEvent, QueueItem, Ticket, get_engine, upsert

CENTRE_STATUSES = ("pending_dispatch", "returned")
# why a ticket waits at the centre; a pending ticket without a located street is "no_street" even
# when its category is also uncertain (the operator must pick a street either way)
REASONS = {
    "low_confidence": "分类置信度低",
    "no_street": "未定位到街乡镇",
    "returned": "退单",
    "escalated": "两次退单已升级",
}
BATCH_LIMIT = 200  # one request decides at most this many (each is its own transaction)
ORDERS = ("deadline", "learn")
_Q = QueueItem.__table__
_T = Ticket.__table__
_P = Prediction.__table__

REASON = case(
    (and_(_Q.c.status == "returned", _Q.c.escalated), "escalated"),
    (_Q.c.status == "returned", "returned"),
    (_Q.c.located_street_code.is_(None), "no_street"),
    else_="low_confidence",
)


def _reason_cond(reason: str) -> Any:
    returned = _Q.c.status == "returned"
    return {
        "escalated": and_(returned, _Q.c.escalated.is_(True)),
        "returned": and_(returned, _Q.c.escalated.is_not(True)),
        "no_street": and_(~returned, _Q.c.located_street_code.is_(None)),
        "low_confidence": and_(~returned, _Q.c.located_street_code.is_not(None)),
    }[reason]


def _centre() -> Any:
    # the centre's items have no street: a range of ix_queue_street_due_id, already in deadline order
    return and_(_Q.c.street_code.is_(None), _Q.c.queue == "centre", _Q.c.status.in_(CENTRE_STATUSES))


def _filters(
    reason: str | None, category: str | None, district: str | None, channel: str | None
) -> list[Any]:
    conds = [_centre()]
    if reason:
        conds.append(_reason_cond(reason))
    if category:  # the model's suggestion 1 (the item's category when no prediction is stored)
        conds.append(func.coalesce(_P.c.category, _Q.c.category) == category)
    if district:
        conds.append(_Q.c.district_code == district)
    if channel:
        conds.append(_T.c.channel == channel)
    return conds


def _joined() -> Any:
    return _Q.outerjoin(_T, _T.c.ticket_id == _Q.c.ticket_id).outerjoin(_P, _P.c.ticket_id == _Q.c.ticket_id)


def reason_counts() -> dict[str, int]:
    """How many centre items wait for each reason. Counting 50,000 rows costs more than a page, so
    like the queue totals (triage.api.common) it is kept TRIAGE_API_TOTAL_CACHE_SECONDS per
    process and dropped by any change made through this process."""
    from triage.api import common
    from triage.config import get_settings

    hit = common._TOTALS.get(("review-counts",))
    if hit and time.monotonic() - hit[0] < get_settings().api_total_cache_seconds:
        return hit[1]
    with get_engine().connect() as conn:
        got = dict(conn.execute(select(REASON, func.count()).where(_centre()).group_by(REASON)).all())
    counts = {r: int(got.get(r, 0)) for r in REASONS}
    common._TOTALS[("review-counts",)] = (time.monotonic(), counts)
    return counts


def learn_scores(top3s: Sequence[Sequence[Sequence[Any]]]) -> list[float]:
    """How much a label would teach the model, per ticket: uncertainty (1 − margin between
    suggestions 1 and 2) weighted by how many pending tickets share the same pair of suggestions
    (log(1 + n)): deciding one of a crowd of alike, unsure tickets teaches the model about all of
    them. Used by ``order=learn`` and measured by bench/review_active_learning.py."""
    pairs, margins = [], []
    for t in top3s:
        t = list(t or [])
        c1, p1 = (t[0][0], float(t[0][1])) if t else (None, 0.0)
        c2, p2 = (t[1][0], float(t[1][1])) if len(t) > 1 else (None, 0.0)
        pairs.append((c1, c2))
        margins.append(p1 - p2)
    crowd = Counter(pairs)
    # within a crowd, the k-th most unsure ticket counts 1/k: the desk works down a sorted list,
    # and fifty tickets of one crowd in a row would teach the model the same thing fifty times
    rank: dict[int, int] = {}
    seen: Counter = Counter()
    for i in sorted(range(len(pairs)), key=lambda i: margins[i]):
        seen[pairs[i]] += 1
        rank[i] = seen[pairs[i]]
    return [
        (1.0 - m) * math.log1p(crowd[p]) / rank[i]
        for i, (p, m) in enumerate(zip(pairs, margins, strict=True))
    ]


LEARN_TTL_S = 60.0
_LEARN: dict[tuple, tuple[float, list[int]]] = {}


def _learn_order(conn: Connection, conds: Any, key: tuple) -> list[int]:
    """Item ids, most instructive first. Scoring reads the whole filtered queue's top-3 (seconds
    at 50,000 items), so the order is kept LEARN_TTL_S per process and filter."""
    hit = _LEARN.get(key)
    if hit and time.monotonic() - hit[0] < LEARN_TTL_S:
        return hit[1]
    rows = conn.execute(select(_Q.c.id, _P.c.top3).select_from(_joined()).where(conds)).all()
    scores = learn_scores([r.top3 or [] for r in rows])
    ranked = [
        i for _, i in sorted(zip(scores, (r.id for r in rows), strict=True), key=lambda x: (-x[0], x[1]))
    ]
    if len(_LEARN) > 100:
        _LEARN.clear()
    _LEARN[key] = (time.monotonic(), ranked)
    return ranked


@lru_cache(maxsize=20_000)
def _candidates(address: str | None, text: str | None) -> tuple[str, ...]:
    from triage.geo import get_resolver

    return tuple(get_resolver().street_candidates(address, text))


def street_info(code: str | None) -> dict[str, str] | None:
    from triage.geo import get_gazetteer

    gaz = get_gazetteer()
    unit = gaz.unit(code)
    if unit is None:
        return None
    district = gaz.unit(unit.district_code)
    return {"code": unit.code, "name": unit.name, "district": district.name if district else ""}


def _enrich(it: dict[str, Any], top3: Any, tax: Any) -> dict[str, Any]:
    """top3 with names, and the resolver's streets (its resolution first; never a street that
    already returned the ticket)."""
    # no stored prediction (an item made by hand): the item's own category is suggestion 1
    pairs = top3 or ([[it["category"], None]] if it.get("category") else [])
    it["top3"] = [
        {"category": c, "name": tax.categories[c].name if c in tax.categories else c,
         "confidence": None if p is None else round(float(p), 4)}
        for c, p in pairs
    ]  # fmt: skip
    excluded = set(it.get("returned_from") or [])
    codes = [it.get("located_street_code")] + list(_candidates(it.get("address"), it.get("text")))
    seen: list[str] = []
    for c in codes:
        if c and c not in seen and c not in excluded:
            seen.append(c)
    it["street_candidates"] = [s for s in (street_info(c) for c in seen[:6]) if s]
    return it


def review_items(
    who: Principal,
    *,
    reason: str | None = None,
    category: str | None = None,
    district: str | None = None,
    channel: str | None = None,
    order: str = "deadline",
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """One page of the centre queue (oldest deadline first, or ``order='learn'``), with top3,
    street_candidates and reason, and the total matching the filters."""
    from triage.api.common import ITEM_COLS, public_item
    from triage.taxonomy import load_taxonomy

    _require_centre(who)
    conds = and_(*_filters(reason, category, district, channel))
    joined = _joined()
    cols = [*ITEM_COLS, _Q.c.returned_from, _P.c.top3, REASON.label("reason")]
    with get_engine().connect() as conn:
        if category or district or channel:
            total = conn.execute(
                select(func.count()).select_from(joined if (category or channel) else _Q).where(conds)
            ).scalar_one()
        else:  # the reason counts are the totals (shared by every operator, cached a few seconds)
            counts = reason_counts()
            total = counts[reason] if reason else sum(counts.values())
        if order == "learn":
            ranked = _learn_order(conn, conds, (reason, category, district, channel))
            # decided items leave the queue but stay in the cached order: read a margin, keep those
            # still waiting (the conditions again), in the order's order
            ids = ranked[offset : offset + 2 * limit]
            rows = (
                conn.execute(select(*cols).select_from(joined).where(conds, _Q.c.id.in_(ids)))
                .mappings()
                .all()
            )
            pos = {i: n for n, i in enumerate(ids)}
            rows = sorted(rows, key=lambda r: pos[r["id"]])[:limit]
        else:
            q = select(*cols).select_from(joined).where(conds).order_by(_Q.c.due_at, _Q.c.id)
            rows = conn.execute(q.limit(limit).offset(offset)).mappings().all()
    tax = load_taxonomy()
    out = []
    for r in rows:
        it = public_item(r)
        out.append(_enrich(it, it.pop("top3", None), tax))
    return total, out


def review_item(who: Principal, item_id: int) -> dict[str, Any] | None:
    """One item with what the desk shows (any status: a decided ticket shows what became of it)."""
    from triage.api.common import ITEM_COLS, public_item
    from triage.taxonomy import load_taxonomy

    _require_centre(who)
    cols = [*ITEM_COLS, _Q.c.returned_from, _P.c.top3, REASON.label("reason")]
    with get_engine().connect() as conn:
        row = conn.execute(select(*cols).select_from(_joined()).where(_Q.c.id == item_id)).mappings().first()
    if row is None:
        return None
    it = public_item(row)
    return _enrich(it, it.pop("top3", None), load_taxonomy())


def next_item_id(
    after: dict[str, Any] | None, *, reason: str | None = None, category: str | None = None,
    district: str | None = None, channel: str | None = None,
) -> int | None:  # fmt: skip
    """The next centre item in deadline order after ``after`` (the first one if None)."""
    conds = _filters(reason, category, district, channel)
    if after is not None:
        # a row-value comparison: one range of the deadline index, not an OR of two
        due = bindparam(None, after["due_at"], type_=_Q.c.due_at.type)  # UTC-aware on SQLite too
        conds.append(tuple_(_Q.c.due_at, _Q.c.id) > tuple_(due, after["id"]))
    q = select(_Q.c.id).select_from(_joined()).where(*conds).order_by(_Q.c.due_at, _Q.c.id).limit(1)
    with get_engine().connect() as conn:
        return conn.execute(q).scalar()


def position(item_id: int) -> dict[str, Any] | None:
    """An item's place in deadline order (due_at, id)."""
    with get_engine().connect() as conn:
        row = conn.execute(select(_Q.c.due_at, _Q.c.id).where(_Q.c.id == item_id)).mappings().first()
    return dict(row) if row else None


def _require_centre(who: Principal) -> None:
    """The desk's list is the centre's work: admins (who decide) and analysts (who read)."""
    if who.role not in ("admin", "analyst"):
        raise lifecycle.Forbidden("the review desk is the 12345 centre's (admin token); analysts may read it")


def category_code(text: str | None) -> str | None:
    """A category from a code, a Chinese name or a picker's "名称 code" text."""
    from triage.taxonomy import load_taxonomy

    tax = load_taxonomy()
    v = (text or "").strip()
    if not v:
        return None
    return tax.code_for(v) or next((c for c in (tax.code_for(p) for p in v.split()) if c), None)


def street_code_for(text: str | None) -> str | None:
    """A street/town from its code, its name or the picker's "区 名称 code" (the last word that
    names one street; triage.queues does the looking up)."""
    from triage.queues import CENTRE, UnknownStreet
    from triage.queues import street_code_for as lookup

    v = (text or "").strip()
    for part in [v, *reversed(v.split())] if v else []:
        try:
            code = lookup(part)
        except UnknownStreet:
            continue
        if code != CENTRE:
            return code
    return None


def _who_changed(item_id: int) -> str:
    from triage.config import get_settings

    e = QueueEvent.__table__
    with get_engine().connect() as conn:
        last = conn.execute(
            select(e.c.actor, e.c.action, e.c.at, e.c.to_status).where(e.c.item_id == item_id)
            .order_by(e.c.id.desc()).limit(1)
        ).first()  # fmt: skip
    if last is None:
        return ""
    at = last.at.astimezone(get_settings().tz).strftime("%H:%M:%S")
    return f"{last.actor} ({last.action} → {last.to_status}, {at})"


def decide(
    item_id: int, version: int | None, category: str, street_code: str, who: Principal
) -> dict[str, Any]:
    """Dispatch a centre item to ``street_code`` as ``category`` and record the label: the
    workflow's ``decide`` transition (policy, version, audit; the dispatch effect sets lead unit,
    departments, SLA tier and deadline) with the label written in its transaction.

    403 for a role the policy does not allow (before anything else is checked); 422 names an
    unknown category or a code that is not a street/town of the gazetteer; 409 (stale version, or
    already decided) names who changed the item last."""
    from triage.geo import get_gazetteer
    from triage.policy import may
    from triage.taxonomy import load_taxonomy

    if not may(who, "decide"):
        raise lifecycle.Forbidden("only the 12345 centre (admin token) decides at the review desk")
    code = load_taxonomy().code_for((category or "").strip())
    if code is None:
        raise lifecycle.LifecycleError(
            f"category {category!r} is not a category code or name of the taxonomy"
        )
    unit = get_gazetteer().unit((street_code or "").strip())
    if unit is None or unit.level != "street":
        raise lifecycle.LifecycleError(
            f"street_code {street_code!r} is not a street/town code of the gazetteer (taxonomy/gazetteer)"
        )
    with get_engine().connect() as conn:
        suggested = conn.execute(
            select(_P.c.category)
            .select_from(_Q.join(_P, _P.c.ticket_id == _Q.c.ticket_id))
            .where(_Q.c.id == item_id)
        ).scalar()

    def label(conn: Connection, new: dict[str, Any]) -> None:
        if new["ticket_id"]:
            upsert(
                conn, Label.__table__,
                [{"ticket_id": new["ticket_id"], "category": code, "labeled_by": who.name,
                  "source": "review", "labeled_at": new["updated_at"]}],
                ["ticket_id", "labeled_by"], ["category", "source", "labeled_at"],
            )  # fmt: skip

    note = ("采纳建议1 agreed with suggestion 1" if suggested == code else
            f"改判 changed {suggested} → {code}") + f"; 派往 {unit.name} {unit.code}"  # fmt: skip
    try:
        return lifecycle.transition(
            "decide", item_id, version, who, note=note, after=label, street_code=unit.code, category=code
        )
    except lifecycle.Conflict as exc:
        by = _who_changed(item_id)
        raise lifecycle.Conflict(f"{exc}; last changed by {by}" if by else str(exc)) from None


def decide_batch(items: Sequence[dict[str, Any]], who: Principal) -> list[dict[str, Any]]:
    """Decide each item on its own (one failure does not undo the others): per-item results."""
    from triage.policy import may

    if not may(who, "decide"):
        raise lifecycle.Forbidden("only the 12345 centre (admin token) decides at the review desk")
    if not items:
        raise lifecycle.LifecycleError("the batch is empty: send at least one item")
    if len(items) > BATCH_LIMIT:
        raise lifecycle.LifecycleError(f"a batch holds at most {BATCH_LIMIT} items, not {len(items)}")
    out = []
    for it in items:
        try:
            done = decide(int(it["id"]), it.get("version"), it["category"], it["street_code"], who)
            out.append(
                {"id": it["id"], "ok": True, "status": 200, "version": done["version"], "detail": None}
            )
        except lifecycle.LifecycleError as exc:
            out.append(
                {"id": it["id"], "ok": False, "status": exc.status_code, "version": None, "detail": str(exc)}
            )
    return out


def suggested_street(it: dict[str, Any]) -> str | None:
    """The street batch confirmation uses: the resolver's first usable candidate."""
    c = it.get("street_candidates") or []
    return c[0]["code"] if c else None


# --- the loop, visible: the nightly report's model section ----------------------------------------
LOOP_DAYS = 30


def _champion_trained_at() -> dt.datetime | None:
    from triage.classify.registry import CARD_JSON, ModelError, champion_version, models_dir, read_card

    version = champion_version()
    try:
        card = read_card(models_dir() / version / CARD_JSON) if version else {}
    except (ModelError, OSError):
        return None
    try:
        t = dt.datetime.fromisoformat(str(card.get("trained_at")))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def model_loop(night: dt.date, days: int = LOOP_DAYS) -> dict[str, Any]:
    """How the model and the centre shared the last ``days`` nights' tickets: auto-dispatched by
    the router, decided at the desk as suggested (label = prediction) or changed, still waiting;
    returns (退单) per category; labels gathered since the champion was trained."""
    from triage.config import get_settings
    from triage.taxonomy import load_taxonomy

    start = night - dt.timedelta(days=days - 1)
    tz = get_settings().tz
    t0 = dt.datetime.combine(start, dt.time(), tz)
    t1 = dt.datetime.combine(night + dt.timedelta(days=1), dt.time(), tz)
    e, lb = QueueEvent.__table__, Label.__table__
    in_window = _T.c.night.between(start, night)
    tickets_q = _Q.join(_T, _T.c.ticket_id == _Q.c.ticket_id)
    trained_at = _champion_trained_at()
    with get_engine().connect() as conn:
        tickets = conn.execute(select(func.count()).select_from(tickets_q).where(in_window)).scalar_one()
        auto = conn.execute(
            select(func.count()).select_from(tickets_q.join(e, e.c.item_id == _Q.c.id))
            .where(in_window, e.c.action == "route", e.c.to_status == "dispatched")
        ).scalar_one()  # fmt: skip
        waiting = conn.execute(
            select(func.count()).select_from(tickets_q).where(in_window, _centre())
        ).scalar_one()
        agreed_col = func.sum(case((lb.c.category == _P.c.category, 1), else_=0))
        decided, agreed = conn.execute(
            select(func.count(func.distinct(lb.c.ticket_id)), agreed_col)
            .select_from(lb.join(_T, _T.c.ticket_id == lb.c.ticket_id).outerjoin(_P, _P.c.ticket_id == lb.c.ticket_id))
            .where(in_window, lb.c.source == "review")
        ).one()  # fmt: skip
        returns = conn.execute(
            select(_Q.c.category, func.count()).select_from(e.join(_Q, _Q.c.id == e.c.item_id))
            .where(e.c.action == "return", e.c.at >= t0, e.c.at < t1)
            .group_by(_Q.c.category).order_by(func.count().desc())
        ).all()  # fmt: skip
        since = select(lb.c.source, func.count()).group_by(lb.c.source)
        if trained_at is not None:
            since = since.where(lb.c.labeled_at > trained_at)
        labels_since = dict(conn.execute(since).all())
    agreed = int(agreed or 0)
    changed = int(decided or 0) - agreed
    tax = load_taxonomy()

    def share(n: int) -> float | None:
        return n / tickets if tickets else None

    return {
        "days": days, "start": start.isoformat(), "tickets": tickets,
        "auto": auto, "auto_share": share(auto), "agreed": agreed, "agreed_share": share(agreed),
        "changed": changed, "changed_share": share(changed), "waiting": waiting, "waiting_share": share(waiting),
        "returns": [
            {"code": c or "", "name": tax.categories[c].name if c in tax.categories else (c or "未分类"), "n": n}
            for c, n in returns
        ],
        "champion_trained_at": trained_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if trained_at else None,
        "labels_since": labels_since, "labels_since_total": sum(labels_since.values()),
    }  # fmt: skip
