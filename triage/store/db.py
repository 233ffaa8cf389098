"""Engine, sessions, migrations and the few bulk-write helpers every stage shares.

SQLite (the embedded default) and PostgreSQL are both first-class: the URL alone decides. On
PostgreSQL an optional schema (``TRIAGE_DB_SCHEMA``) is created and put first on the search path,
which is how the test suite isolates itself and how one server can host several environments.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import sqltypes

from triage.config import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DatabaseError(RuntimeError):
    """A database problem the user can act on (unreachable server, schema not migrated, …)."""


def _make_engine(url: str, schema: str | None) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers (API, report) do not block the night's writer
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        return engine

    connect_args: dict[str, Any] = {}
    if schema:
        if not _SCHEMA_NAME.match(schema):
            raise DatabaseError(f"TRIAGE_DB_SCHEMA={schema!r} is not a plain lower-case identifier")
        connect_args["options"] = f"-csearch_path={schema}"
    engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if schema:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    return engine


_ENGINES: dict[tuple[str, str | None], Engine] = {}


def get_engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine for the configured URL (one pool per URL and schema)."""
    s = settings or get_settings()
    key = (s.database_url, s.db_schema)
    if key not in _ENGINES:
        try:
            _ENGINES[key] = _make_engine(*key)
        except DatabaseError:
            raise
        except Exception as exc:  # connection refused, bad URL, missing driver…
            raise DatabaseError(f"cannot open database {redact_url(s.database_url)}: {exc}") from exc
    return _ENGINES[key]


def dispose_engines() -> None:
    """Close pooled connections (call after fork, and between tests that change the URL)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


def redact_url(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]+@", r"//\1:***@", url)


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A transaction: commit on success, roll back on error."""
    factory = sessionmaker(bind=get_engine(settings), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


# --- migrations --------------------------------------------------------------------------------
def _alembic_config(settings: Settings):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["settings"] = settings
    return cfg


def upgrade(settings: Settings | None = None, revision: str = "head") -> str:
    """Bring the database schema to ``revision`` and, at the head, the workflow's statuses to
    taxonomy/workflow.yaml; returns the resulting revision id."""
    result = _migrate("upgrade", settings, revision)
    if revision == "head":
        sync_workflow_statuses(settings)
    return result


def _status_rows() -> dict[str, tuple[str, str]]:
    from triage.workflow import load_workflow

    return {c: (s.name, s.kind) for c, s in load_workflow().statuses.items()}


def sync_workflow_statuses(settings: Settings | None = None) -> list[str]:
    """Add (or rename) the statuses of workflow.yaml in ``workflow_statuses``; returns the codes
    added or changed. Statuses no longer in the file are kept: items may still hold them."""
    from sqlalchemy import select, update

    from triage.store.models import WorkflowStatus

    t = WorkflowStatus.__table__
    changed = []
    with get_engine(settings).begin() as conn:
        have = {r.code: (r.name, r.kind) for r in conn.execute(select(t))}
        for code, (name, kind) in _status_rows().items():
            if code not in have:
                conn.execute(t.insert(), {"code": code, "name": name, "kind": kind})
            elif have[code] != (name, kind):
                conn.execute(update(t).where(t.c.code == code).values(name=name, kind=kind))
            else:
                continue
            changed.append(code)
    return changed


def downgrade(settings: Settings | None = None, revision: str = "-1") -> str:
    """Step the schema back (``base`` drops every product table); returns the resulting revision."""
    return _migrate("downgrade", settings, revision)


def _migrate(direction: str, settings: Settings | None, revision: str) -> str:
    from alembic import command

    s = settings or get_settings()
    cfg = _alembic_config(s)
    with get_engine(s).begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, direction)(cfg, revision)
    return current_revision(s) or ""


def current_revision(settings: Settings | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(settings).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(get_settings())).get_current_head() or ""


def require_schema(settings: Settings | None = None) -> None:
    """Fail with a clear message when the database has not been migrated to the code's schema."""
    s = settings or get_settings()
    current = current_revision(s)
    head = head_revision()
    if current != head:
        raise DatabaseError(
            f"database {redact_url(s.database_url)} is at schema revision {current or 'none'}, "
            f"the code needs {head}: run `triage db upgrade`"
        )
    from sqlalchemy import select

    from triage.store.models import WorkflowStatus

    with get_engine(s).connect() as conn:
        known = set(conn.execute(select(WorkflowStatus.code)).scalars())
    missing = sorted(set(_status_rows()) - known)
    if missing:
        raise DatabaseError(
            f"status(es) {', '.join(missing)} of taxonomy/workflow.yaml are not in the database yet: "
            "run `triage db upgrade`"
        )


class NotWritableError(OSError):
    """A path the run must write (the SQLite database, its folder, the reports folder) is not writable."""


def require_writable(settings: Settings | None = None, *, reports: bool = True) -> None:
    """Before a night is run: every path it writes can be written, else one line naming the first
    that cannot (a read-only var/ otherwise ends the run in a traceback half-way)."""
    s = settings or get_settings()
    paths = [s.reports_dir] if reports else []
    if s.is_sqlite:
        db = s.database_url.split("///", 1)[-1]
        if db and db != ":memory:":
            paths += [Path(db), Path(db).parent]  # SQLite writes its -wal and -shm files beside it
    for p in paths:
        if problem := _not_writable(p):
            raise NotWritableError(problem)


def _not_writable(path: Path) -> str | None:
    """Why ``path`` (or, if it does not exist yet, the folder it would be created in) cannot be
    written; tried for real, so read-only mounts and ACLs count as well as modes."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        if p.is_dir():
            with tempfile.TemporaryFile(dir=p):
                pass
        else:
            with open(p, "r+b"):  # opened for writing, nothing written
                pass
    except OSError as exc:
        what = "folder" if p.is_dir() else "file"
        return f"{p}: this {what} is not writable ({exc.strerror}); the night needs to write {path}"
    return None


def table_names(settings: Settings | None = None) -> list[str]:
    return inspect(get_engine(settings)).get_table_names()


# --- bulk reads --------------------------------------------------------------------------------
_READ_CHUNK_ROWS = 50_000


def read_frame(conn: Connection, query: Any, columns: Sequence[str] | None = None) -> Any:
    """A query's rows as a pandas DataFrame (columns: the query's labels unless given).

    Streams the rows in chunks of 50,000 (a server-side cursor on PostgreSQL) and builds the frame
    chunk by chunk: the frame stores text in compact Arrow buffers, but a million rows held as
    Python objects at once cost ~2 GB that the process kept after they were freed (the nightly
    hotspot window at 1M tickets). Rows become plain tuples first: pandas probes each SQLAlchemy
    Row for attributes it does not have, and each failed probe raises (~5 s per million rows)."""
    import pandas as pd

    result = conn.execute(query, execution_options={"yield_per": _READ_CHUNK_ROWS})
    names = list(columns) if columns is not None else list(result.keys())
    parts = [pd.DataFrame([tuple(r) for r in chunk], columns=names) for chunk in result.partitions()]
    if not parts:
        return pd.DataFrame(columns=names)
    if len(parts) == 1:
        return parts[0]
    # a chunk whose column is all NULL is typed object; one frame would have typed it str
    return pd.concat(parts, ignore_index=True).infer_objects()


# --- bulk writes -------------------------------------------------------------------------------
def refresh_statistics(conn: Connection, tables: Iterable[str]) -> None:
    """Update the query planner's statistics after a bulk load (PostgreSQL ``ANALYZE``).

    Autovacuum analyses a freshly loaded table only some time later; until then the planner
    believes it holds a handful of rows and picks nested loops. At one million tickets the report's
    scoreboard query (an aggregate re-run per row) had not finished after 4.5 minutes; after
    ANALYZE the whole report takes ~10 s. SQLite needs nothing here: its planner works from the
    indexes without statistics."""
    if conn.dialect.name != "postgresql":
        return
    for name in tables:
        conn.execute(text(f'ANALYZE "{name}"'))


_COPY_MIN_ROWS = 200  # from this many rows on, insert through the driver's bulk path


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Iterable[str]) -> int:
    """Insert rows, skipping those whose ``keys`` already exist. Returns rows actually inserted."""
    if not rows:
        return 0
    keys = list(keys)
    if len(rows) >= _COPY_MIN_ROWS and conn.dialect.name == "postgresql":
        return _pg_copy_insert_ignore(conn, table, rows, keys)
    if len(rows) >= _COPY_MIN_ROWS and conn.dialect.name == "sqlite":
        return _sqlite_executemany_insert_ignore(conn, table, rows, keys)
    stmt = _dialect_insert(conn, table).on_conflict_do_nothing(index_elements=keys)
    # executemany rowcounts are not reliable across drivers; RETURNING counts exactly what landed
    stmt = stmt.returning(table.c[keys[0]])
    return len(conn.execute(stmt, list(rows)).all())


def _bulk_rows(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], json_as_text: bool
) -> tuple[str, int, Iterator[list[Any]]]:
    """The columns to write and each row's values, bound as SQLAlchemy would bind them (type
    processors, Python-side defaults) — for the drivers' bulk paths, which bypass SQLAlchemy's
    per-row parameter handling (~2 s per 100k rows)."""
    given = set().union(*(r.keys() for r in rows))
    columns = [c for c in table.columns if c.name in given or (c.default is not None and not c.primary_key)]
    defaults: dict[str, Any] = {}
    for c in columns:
        if c.name not in given:  # a Python-side default (scalar, or a callable such as utcnow)
            defaults[c.name] = c.default.arg(None) if c.default.is_callable else c.default.arg
    prepare = []
    for c in columns:
        proc = c.type.bind_processor(conn.dialect)
        if json_as_text and isinstance(c.type, sqltypes.JSON):
            proc = _json_text
        prepare.append((c.name, proc))
    values = (
        [(p(v) if p is not None and v is not None else v) for name, p in prepare for v in (r.get(name, defaults.get(name)),)]
        for r in rows
    )  # fmt: skip
    return ", ".join(f'"{c.name}"' for c in columns), len(columns), values


# PostgreSQL: the memory GIN's pending-list merges sort in when ingest starts them (work_mem inside
# its transactions) and at each clean_search_index (maintenance_work_mem). How large the list may
# grow is the index's own limit, 256 MB for every session (migration 0016). None: the server's
# defaults.
GIN_MERGE_MEMORY: str | None = "256MB"


@contextmanager
def search_index_in_bulk(conn: Connection) -> Iterator[None]:
    """Inside: tickets inserted on ``conn`` are not indexed one by one for search; on leaving,
    every ticket inserted since entering is indexed with one statement (SQLite's FTS5 table of
    migration 0006; half the cost of its per-row trigger, migration 0014). Must run inside the
    caller's transaction, which makes it atomic. PostgreSQL: the GIN index's pending list takes the
    tickets (up to its 256 MB limit, migration 0016); with ``GIN_MERGE_MEMORY`` set, a merge this
    transaction starts sorts in that much memory (``SET LOCAL work_mem``); ``clean_search_index``
    merges what is left at the end of the load."""
    if conn.dialect.name != "sqlite":
        if conn.dialect.name == "postgresql" and GIN_MERGE_MEMORY:
            conn.execute(text(f"SET LOCAL work_mem = '{GIN_MERGE_MEMORY}'"))
        yield
        return
    # one statement takes the write lock and reads the largest rowid: no other writer can add a
    # ticket (indexed by its trigger) between the two; new rows take rowids above it
    conn.execute(
        text("INSERT INTO search_index_deferred (since_rowid) SELECT coalesce(max(rowid), 0) FROM tickets")
    )
    since = conn.execute(text("SELECT since_rowid FROM search_index_deferred")).scalar_one()
    yield
    cols = "ticket_id, title, text, address"
    conn.execute(
        text(f"INSERT INTO tickets_fts(rowid, {cols}) SELECT rowid, {cols} FROM tickets WHERE rowid > :r"),
        {"r": since},
    )
    conn.execute(text("DELETE FROM search_index_deferred"))


def clean_search_index(conn: Connection) -> int:
    """PostgreSQL: merge the GIN index's pending list into the index now (``gin_clean_pending_list``),
    so searches do not scan its unsorted entries (measured at 200k: ticket-id search p95 31–35 ms
    instead of 69–80 ms with 3.7 MB pending). Ingest calls it at the end of each file, the intra-day
    run every 10 minutes (Open311 tickets); the list's own limit is 256 MB (migration 0016).
    Returns the pending-list pages removed. SQLite: nothing (0)."""
    if conn.dialect.name != "postgresql":
        return 0
    if GIN_MERGE_MEMORY:
        conn.execute(text(f"SET LOCAL maintenance_work_mem = '{GIN_MERGE_MEMORY}'"))
    return int(
        conn.execute(text("SELECT gin_clean_pending_list('ix_tickets_search_trgm'::regclass)")).scalar_one()
    )


def _sqlite_executemany_insert_ignore(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: list[str]
) -> int:
    """One prepared INSERT … ON CONFLICT DO NOTHING run by sqlite3's executemany; rows inserted
    are the cursor's summed row count (ignored rows do not count). Not the connection's
    total_changes: that also counts rows written by triggers (the search index of migration 0006)."""
    names, n_cols, values = _bulk_rows(conn, table, rows, json_as_text=False)
    key_list = ", ".join(f'"{k}"' for k in keys)
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.executemany(
            f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" * n_cols)}) '
            f"ON CONFLICT ({key_list}) DO NOTHING",
            values,
        )
        return cur.rowcount
    finally:
        cur.close()


def _pg_copy_insert_ignore(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: list[str]
) -> int:
    """COPY the rows into a temporary table, then one INSERT … SELECT … ON CONFLICT DO NOTHING.

    A multi-row VALUES statement with ~25 parameters per row cost ~2 ms per row on PostgreSQL
    (psycopg parsing the huge query, the server planning it): 100k tickets took 200 s to ingest.
    COPY is PostgreSQL's bulk path. Values go through the same SQLAlchemy bind processing as an
    INSERT, and Python-side column defaults are applied the same way."""
    names, _, values = _bulk_rows(conn, table, rows, json_as_text=True)
    stage = f"_copy_{table.name}"
    cur = conn.connection.driver_connection.cursor()
    try:
        # only the columns written, no defaults (a serial id's sequence must not be drawn twice)
        cur.execute(
            f'CREATE TEMPORARY TABLE "{stage}" ON COMMIT DROP AS SELECT {names} FROM "{table.name}" WITH NO DATA'
        )
        with cur.copy(f'COPY "{stage}" ({names}) FROM STDIN') as copy:
            for v in values:
                copy.write_row(v)
        key_list = ", ".join(f'"{k}"' for k in keys)
        cur.execute(
            f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{stage}" '
            f"ON CONFLICT ({key_list}) DO NOTHING"
        )
        inserted = cur.rowcount
        cur.execute(f'DROP TABLE "{stage}"')
    finally:
        cur.close()
    return inserted


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Iterable[str],
    update_cols: Iterable[str],
) -> None:
    """Insert rows, or update ``update_cols`` where ``keys`` already exist (one statement, bulk)."""
    if not rows:
        return
    ins = _dialect_insert(conn, table)
    cols = list(update_cols)
    stmt = ins.on_conflict_do_update(index_elements=list(keys), set_={c: ins.excluded[c] for c in cols})
    conn.execute(stmt, list(rows))


def _dialect_insert(conn: Connection, table: Table):
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise DatabaseError(f"unsupported database dialect {name!r}: use SQLite or PostgreSQL")
