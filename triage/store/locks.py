"""One run of a night at a time: a per-night lock taken by ingest and the nightly stages.

Airflow's ``max_active_runs=1`` does not cover a hand re-run beside the DAG, nor a zombie task
beside its retry; two ingests of one night at once left unbalanced ledger rows or crashed. So the
stages that write a night's shared state take ``night_lock(night)``:

- PostgreSQL: a session advisory lock on a connection held for the duration (released by the
  server if the process dies); the ``night_locks`` row only says who holds it.
- SQLite: the ``night_locks`` row is the lock (inserted first thing in its transaction, so two
  processes cannot both take it). A row left by a killed process on this host is taken over.

A second run waits up to ``TRIAGE_NIGHT_LOCK_WAIT`` seconds, saying whom it waits for, then fails
with one line naming the holder (host, pid, what, since). The lock is re-entrant within a process
(``run-nightly`` holds it around stages that take it again).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from triage.config import get_settings
from triage.store.db import DatabaseError, get_engine
from triage.store.models import NightLock, utcnow

log = logging.getLogger(__name__)
_POLL_S = 0.5
_held: dict[str, int] = {}
_held_guard = threading.Lock()


class NightBusy(DatabaseError):
    """Another process holds the night; the message says who and since when."""


@contextlib.contextmanager
def night_lock(
    night: dt.date, what: str, wait: float | None = None, notify: Callable[[str], None] | None = None
) -> Iterator[None]:
    name = f"night:{night.isoformat()}"
    with _held_guard:
        mine = _held.get(name, 0)
        if mine:
            _held[name] = mine + 1
    if mine:
        try:
            yield
        finally:
            with _held_guard:
                _held[name] -= 1
        return

    s = get_settings()
    wait = s.night_lock_wait if wait is None else wait
    engine = get_engine()
    me = {"name": name, "host": socket.gethostname(), "pid": os.getpid(), "what": what[:128]}
    take, release = (
        (_pg_take, _pg_release) if engine.dialect.name == "postgresql" else (_lite_take, _lite_release)
    )
    deadline = time.monotonic() + wait
    told = False
    while (handle := take(engine, me)) is None:
        holder = _holder(engine, name)
        if time.monotonic() >= deadline:
            raise NightBusy(f"night {night} is busy: {holder}; run it again when that has finished")
        if not told:
            (notify or log.warning)(f"night {night} is busy: {holder}; waiting up to {wait:.0f} s")
            told = True
        time.sleep(_POLL_S)
    with _held_guard:
        _held[name] = 1
    try:
        yield
    finally:
        with _held_guard:
            del _held[name]
        release(engine, me, handle)


def _holder(engine: Any, name: str) -> str:
    with engine.connect() as conn:
        row = conn.execute(select(NightLock).where(NightLock.name == name)).first()
    if row is None:
        return "held by another process"
    since = row.since.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"{row.what} on host {row.host}, pid {row.pid}, since {since}"


# --- PostgreSQL: advisory lock + a row saying who --------------------------------------------------


def _pg_key(engine: Any, name: str) -> int:
    """A signed 64-bit key per night and schema (tests and tenants share a server)."""
    digest = hashlib.sha256(f"{get_settings().db_schema or ''}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _pg_take(engine: Any, me: dict[str, Any]) -> Any:
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": _pg_key(engine, me["name"])}
        ).scalar()
        if not got:
            conn.close()
            return None
        with engine.begin() as c:  # a row a killed holder left behind is simply replaced
            c.execute(delete(NightLock).where(NightLock.name == me["name"]))
            c.execute(insert(NightLock).values(**me, since=utcnow()))
        return conn
    except BaseException:
        conn.close()
        raise


def _pg_release(engine: Any, me: dict[str, Any], conn: Any) -> None:
    try:
        with contextlib.suppress(Exception), engine.begin() as c:
            c.execute(delete(NightLock).where(NightLock.name == me["name"], NightLock.pid == me["pid"]))
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _pg_key(engine, me["name"])})
    finally:
        conn.close()  # closing the session releases the advisory lock in any case


# --- SQLite: the row is the lock -----------------------------------------------------------------


def _lite_take(engine: Any, me: dict[str, Any]) -> Any:
    try:
        with engine.begin() as c:
            # the insert comes first: it takes SQLite's write lock, so the check below cannot race
            inserted = c.execute(
                insert(NightLock).values(**me, since=utcnow()).prefix_with("OR IGNORE")
            ).rowcount
            if inserted:
                return True
            row = c.execute(select(NightLock).where(NightLock.name == me["name"])).first()
            if row is not None and row.host == me["host"] and not _alive(row.pid):
                log.warning("night lock %s: taking over from pid %s, which is gone", me["name"], row.pid)
                c.execute(delete(NightLock).where(NightLock.name == me["name"], NightLock.pid == row.pid))
                c.execute(insert(NightLock).values(**me, since=utcnow()))
                return True
            return None
    except (IntegrityError, OperationalError) as exc:  # a concurrent taker won this round
        if "locked" in str(exc) or isinstance(exc, IntegrityError):
            return None
        raise


def _lite_release(engine: Any, me: dict[str, Any], _handle: Any) -> None:
    with engine.begin() as c:
        c.execute(
            delete(NightLock).where(
                NightLock.name == me["name"], NightLock.host == me["host"], NightLock.pid == me["pid"]
            )
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
