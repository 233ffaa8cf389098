"""Ticket search: the database's own substring index over ticket_id, title, text and address

SQLite: an FTS5 table with the trigram tokenizer, external content on ``tickets`` (no second copy
of the text), kept current by triggers and filled from the existing rows. PostgreSQL: a pg_trgm
GIN index on one expression joining the four columns (triage.search.pg_search_expr() queries the
same expression, so the index is used).

pg_trgm is an extension of the whole database, so it is created once in ``public`` (under an
advisory lock: several schemas may migrate at the same time) and never dropped by a downgrade —
other schemas on the server may use it. The operator class is named with its schema, as a
schema-private search path does not include ``public``.

Revision ID: 0006
Revises: 0008
"""

from alembic import op

revision = "0006"
down_revision = "0008"
branch_labels = None
depends_on = None

_COLS = ("ticket_id", "title", "text", "address")
_NEW = ", ".join(f"new.{c}" for c in _COLS)
_OLD = ", ".join(f"old.{c}" for c in _COLS)
# triage.search.pg_search_expr() queries this same expression (or the index is not used)
PG_EXPR = "(ticket_id || ' ' || coalesce(title, '') || ' ' || text || ' ' || coalesce(address, ''))"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE tickets_fts USING fts5(ticket_id, title, text, address, "
            "content='tickets', content_rowid='rowid', tokenize='trigram')"
        )
        op.execute(
            f"CREATE TRIGGER tickets_fts_ai AFTER INSERT ON tickets BEGIN "
            f"INSERT INTO tickets_fts(rowid, {', '.join(_COLS)}) VALUES (new.rowid, {_NEW}); END"
        )
        op.execute(
            f"CREATE TRIGGER tickets_fts_ad AFTER DELETE ON tickets BEGIN "
            f"INSERT INTO tickets_fts(tickets_fts, rowid, {', '.join(_COLS)}) VALUES ('delete', old.rowid, {_OLD}); END"
        )
        op.execute(
            f"CREATE TRIGGER tickets_fts_au AFTER UPDATE OF {', '.join(_COLS)} ON tickets BEGIN "
            f"INSERT INTO tickets_fts(tickets_fts, rowid, {', '.join(_COLS)}) VALUES ('delete', old.rowid, {_OLD}); "
            f"INSERT INTO tickets_fts(rowid, {', '.join(_COLS)}) VALUES (new.rowid, {_NEW}); END"
        )
        op.execute("INSERT INTO tickets_fts(tickets_fts) VALUES ('rebuild')")
        return
    op.execute("SELECT pg_advisory_xact_lock(hashtext('triage:create extension pg_trgm'))")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    schema = op.get_bind().exec_driver_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    ).scalar_one()
    op.execute(f'CREATE INDEX ix_tickets_search_trgm ON tickets USING gin ({PG_EXPR} "{schema}".gin_trgm_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("tickets_fts_ai", "tickets_fts_ad", "tickets_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS tickets_fts")
        return
    op.execute("DROP INDEX IF EXISTS ix_tickets_search_trgm")
