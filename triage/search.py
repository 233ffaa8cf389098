"""Find a ticket by its 工单编号, a phrase of its text or title, or its address.

A query is split on spaces into terms that must all occur (in any of the four fields). The answer
is the newest matching tickets, found in up to three steps, each only when the one before did not
answer:

1. the newest 2,000 tickets (a street: the newest 1,000 of its own queue) are read directly — a
   common phrase or word fills the page here in milliseconds, where an index would first have to
   list its tens of thousands of matches;
2. a query with a term of three characters or more asks the database's own substring index
   (migration 0006: SQLite's FTS5 trigram table ``tickets_fts``, PostgreSQL's pg_trgm GIN index
   over ``pg_search_expr()``) for every match and keeps the newest, within ``INDEX_BUDGET_MS`` —
   a 工单编号, an address, an unusual phrase are answered here;
3. otherwise (a word of one or two characters has no trigram: 噪音, 停车; or the index ran out of
   time) the newest 6,000 (a street: 4,000 of its own) are read, and ``searched`` says how many
   of the newest tickets that covers when it did not fill the page, so the page can say so.

Access is the queue's: a street token finds only tickets in its own street queue; analysts and
admins find every ticket, routed or not. Text goes out masked, as everywhere else.
bench/search.py measures it at 1M tickets (docs/benchmarks.md).
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import and_, func, literal_column, or_, select, text
from sqlalchemy.exc import OperationalError

from triage.auth import Principal
from triage.store import QueueItem, Ticket, get_engine
from triage.text import mask_text, normalize

MAX_TERMS = 5
MAX_QUERY = 200
MIN_INDEXED = 3  # trigram: shorter terms cannot use the index
# newest tickets read directly, in turn (a street: of its own queue — its rows lie scattered in
# the table, so each costs more: 20,000 took 0.2-0.45 s at 1M)
NEWEST = (2_000, 6_000)
NEWEST_STREET = (1_000, 4_000)
INDEX_BUDGET_MS = 25  # the index's time: rare terms are answered within it (PostgreSQL: a few ms)


def pg_search_expr(table: str = "") -> str:
    """The expression migration 0006 indexes (there with no table name): the query must use the
    same one for PostgreSQL to use the index. Columns named with ``table`` in queries, as
    queue_items has a title too."""
    t = f"{table}." if table else ""
    return f"({t}ticket_id || ' ' || coalesce({t}title, '') || ' ' || {t}text || ' ' || coalesce({t}address, ''))"


_T = Ticket.__table__
_Q = QueueItem.__table__


class SearchError(ValueError):
    """A query that cannot be run (empty, too long)."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_query(query: str) -> str:
    """Control characters (a pasted tab, a NUL byte PostgreSQL refuses) are word breaks."""
    return _CONTROL.sub(" ", query or "").strip()


def terms_of(query: str) -> list[str]:
    """The query as people type it, normalised as stored text is (full-width → half-width,
    traditional → simplified), split on spaces; duplicates dropped."""
    q = clean_query(query)
    if not q:
        raise SearchError("empty query: give a 工单编号, a phrase of the text, or an address")
    if len(q) > MAX_QUERY:
        raise SearchError(f"query longer than {MAX_QUERY} characters")
    terms = list(dict.fromkeys(normalize(q).split()))
    if len(terms) > MAX_TERMS:
        raise SearchError(f"at most {MAX_TERMS} terms (got {len(terms)})")
    return terms


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _match_conditions(dialect: str, terms: list[str]) -> list[Any]:
    long_terms = [t for t in terms if len(t) >= MIN_INDEXED]
    if dialect == "postgresql":
        expr = literal_column(pg_search_expr("tickets"))
        return [expr.ilike(_like(t), escape="\\") for t in terms]
    conds: list[Any] = []
    if long_terms:
        # each term a quoted FTS5 string (its quotes doubled): a phrase, never query syntax
        match = " AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms)
        conds.append(literal_column("tickets.rowid").in_(_fts_rowids(match)))
    conds += [_whole(_T).like(_like(t), escape="\\") for t in terms if len(t) < MIN_INDEXED]
    return conds


def _fts_rowids(match: str) -> Any:
    return (
        select(literal_column("rowid"))
        .select_from(text("tickets_fts"))
        .where(text("tickets_fts MATCH :fts_match").bindparams(fts_match=match))
    )


def _whole(table: Any) -> Any:
    """The four searched fields as one string (what the indexes cover)."""
    return (
        table.c.ticket_id + " " + func.coalesce(table.c.title, "") + " " + table.c.text + " "
        + func.coalesce(table.c.address, "")
    )  # fmt: skip


def _contains(doc: Any, term: str, dialect: str) -> Any:
    """``term`` occurs in ``doc``, for reading rows directly. SQLite's LIKE ignores ASCII case and
    is as fast as its instr(); PostgreSQL's ILIKE lower-cases every row first (5x slower than
    strpos over 20,000 Chinese texts), so there a term is looked for with strpos as typed, upper-
    and lower-cased (工单编号 are upper case, people type either; only ASCII letters have a case)."""
    if dialect != "postgresql":
        return doc.like(_like(term), escape="\\")
    forms = dict.fromkeys([term, term.upper(), term.lower()])
    return or_(*[func.strpos(doc, f) > 0 for f in forms])


def _newest_matches(
    conn: Any, terms: list[str], who: Principal, k: int, limit: int, skip: int = 0
) -> list[Any]:
    """Of the newest ``k`` tickets after the newest ``skip`` (a street: of its own queue, by
    arrival), those matching every term, newest first, at most ``limit`` (ticket_id, received_at)."""
    if who.role == "street":
        own = (
            select(_Q.c.ticket_id)
            .where(_Q.c.street_code == who.street_code, _Q.c.queue == "street", _Q.c.kind == "ticket")
            .order_by(_Q.c.id.desc())
            .offset(skip)
            .limit(k)
            .subquery()
        )
        source = _T.join(own, own.c.ticket_id == _T.c.ticket_id)
        recent = (
            select(_T.c.ticket_id, _T.c.received_at, _whole(_T).label("doc")).select_from(source).subquery()
        )
    else:
        recent = (
            select(_T.c.ticket_id, _T.c.received_at, _whole(_T).label("doc"))
            .order_by(_T.c.received_at.desc(), _T.c.ticket_id.desc())
            .offset(skip)
            .limit(k)
            .subquery()
        )
    return conn.execute(
        select(recent.c.ticket_id, recent.c.received_at)
        .where(*[_contains(recent.c.doc, t, conn.dialect.name) for t in terms])
        .order_by(recent.c.received_at.desc(), recent.c.ticket_id)
        .limit(limit)
    ).all()


def _more_than(conn: Any, who: Principal, k: int) -> bool:
    """Whether the caller may see more than ``k`` tickets (so reading the newest ``k`` missed some)."""
    if who.role == "street":
        q = select(_Q.c.id).where(
            _Q.c.street_code == who.street_code, _Q.c.queue == "street", _Q.c.kind == "ticket"
        )
        q = q.order_by(_Q.c.id.desc())
    else:
        q = select(_T.c.ticket_id).order_by(_T.c.received_at.desc(), _T.c.ticket_id.desc())
    return conn.execute(q.offset(k).limit(1)).first() is not None


def _index_matches(
    conn: Any, terms: list[str], who: Principal, limit: int, budget_ms: float
) -> list[Any] | None:
    """The newest ``limit`` tickets the caller may see matching every term, found through the
    trigram index; ``None`` when the index could not answer within ``budget_ms``.

    Every match is read and sorted (the index has no time order): quick for rare terms (a
    工单编号, an address, an unusual phrase), slow for a phrase in tens of thousands of tickets —
    which the newest tickets answer instead. On PostgreSQL a pattern whose trigrams are common but
    whose whole is rare (学。好多邻: 51,400 candidates for 200 matches at 1M, each re-checked in the
    table, 1.2 s) would hold the page too: the budget bounds both."""
    matching = select(_T.c.ticket_id, _T.c.received_at).where(*_match_conditions(conn.dialect.name, terms))
    if conn.dialect.name == "postgresql":
        # OFFSET 0 keeps the planner from walking received_at backwards through a million rows
        # (27 s at 1M: it cannot estimate a '%phrase%' pattern) or joining a street's 80,000-item
        # queue first (1 s): the index answers, then the matches are sorted.
        matching = matching.offset(0)
    m = matching.subquery()
    q = select(m.c.ticket_id, m.c.received_at)
    if who.role == "street":
        q = q.join(_Q, and_(_Q.c.ticket_id == m.c.ticket_id, _Q.c.kind == "ticket")).where(
            _Q.c.queue == "street", _Q.c.street_code == who.street_code
        )
    q = q.order_by(m.c.received_at.desc(), m.c.ticket_id).limit(limit)
    if conn.dialect.name == "postgresql":
        try:
            with conn.begin_nested():
                conn.execute(text("SET LOCAL enable_seqscan = off"))
                conn.execute(text(f"SET LOCAL statement_timeout = {max(1, int(budget_ms))}"))
                return conn.execute(q).all()
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "57014":  # query_canceled: the budget ran out
                raise
            return None
    # SQLite: interrupted from its progress handler (called every 1,000 virtual-machine steps);
    # a read is interrupted without touching the transaction
    raw = conn.connection.driver_connection
    deadline = time.perf_counter() + budget_ms / 1000
    raw.set_progress_handler(lambda: time.perf_counter() > deadline, 1000)
    try:
        return conn.execute(q).all()
    except OperationalError as exc:
        if "interrupted" not in str(exc.orig):
            raise
        return None
    finally:
        raw.set_progress_handler(None, 0)


def search_tickets(who: Principal, query: str, limit: int = 20) -> dict[str, Any]:
    """Tickets matching every term, newest first: ``{"query", "terms", "items": [...],
    "searched", "truncated"}``; an exact 工单编号 comes first. Each item carries its queue item
    (id, status, street) when it has one. ``searched``: ``None`` when every ticket the caller may
    see was searched, else how many of the newest were (a query of short terms only, or one the
    index could not answer in time); ``truncated`` says the same as a yes/no. Raises
    :class:`SearchError` for an unusable query."""
    terms = terms_of(query)
    limit = max(1, min(int(limit), 100))
    engine = get_engine()
    joined = _T.outerjoin(_Q, and_(_Q.c.ticket_id == _T.c.ticket_id, _Q.c.kind == "ticket"))
    access = (
        and_(_Q.c.queue == "street", _Q.c.street_code == who.street_code) if who.role == "street" else None
    )
    cols = [
        _T.c.ticket_id, _T.c.received_at, _T.c.title, _T.c.text, _T.c.address, _Q.c.id.label("item_id"),
        _Q.c.queue, _Q.c.street_code, _Q.c.category, _Q.c.status, _Q.c.due_at,
    ]  # fmt: skip
    indexed = any(len(t) >= MIN_INDEXED for t in terms)
    searched = None
    with engine.connect() as conn, conn.begin():
        exact = conn.execute(
            select(*cols).select_from(joined).where(_T.c.ticket_id == clean_query(query), *([access] if access is not None else []))
        ).all()  # fmt: skip
        # A common term fills the page from the newest tickets at once; a rare one (a 工单编号, an
        # address) is answered by the index within its budget; between the two, more of the newest.
        windows = NEWEST_STREET if who.role == "street" else NEWEST
        cands = _newest_matches(conn, terms, who, windows[0], limit)
        if len(cands) < limit:
            found = _index_matches(conn, terms, who, limit, INDEX_BUDGET_MS) if indexed else None
            if found is not None:
                cands = found
            else:
                # the next window's older part only: the newest ``read`` were read in step 1, and
                # all their matches are in hand (fewer than a page)
                read = windows[0]
                for k in windows[1:]:
                    cands += _newest_matches(conn, terms, who, k - read, limit, skip=read)
                    read = k
                    if len(cands) >= limit:
                        break
                else:
                    searched = windows[-1] if _more_than(conn, who, windows[-1]) else None
                cands = sorted(cands, key=lambda r: (-r.received_at.timestamp(), r.ticket_id))
        top = [r.ticket_id for r in cands][:limit]
        rows = {
            r.ticket_id: r
            for r in conn.execute(select(*cols).select_from(joined).where(_T.c.ticket_id.in_(top)))
        } if top else {}  # fmt: skip
    seen: set[str] = set()
    items = []
    for r in [*exact, *(rows[t] for t in top if t in rows)]:
        if r.ticket_id in seen:
            continue
        seen.add(r.ticket_id)
        items.append(_public(r._mapping, terms))
    return {
        "query": query,
        "terms": terms,
        "items": items[:limit],
        "searched": searched,
        "truncated": searched is not None,
    }


def _public(row: Any, terms: list[str]) -> dict[str, Any]:
    d = dict(row)
    for k in ("title", "text", "address"):
        d[k] = mask_text(d[k]) if isinstance(d[k], str) else d[k]
    d["snippet"] = snippet(d["text"] or "", terms)
    return d


def snippet(value: str, terms: list[str], width: int = 80) -> str:
    """About ``width`` characters of the text around the first term found (the whole text when short)."""
    if len(value) <= width:
        return value
    low = value.lower()
    at = min((i for i in (low.find(t.lower()) for t in terms) if i >= 0), default=0)
    start = max(0, min(at - width // 3, len(value) - width))
    return ("…" if start else "") + value[start : start + width] + ("…" if start + width < len(value) else "")
