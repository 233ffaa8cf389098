"""SQLite search index filled in bulk by ingest (after 0013)

Migration 0006 keeps ``tickets_fts`` current by triggers, one index insert per ticket row: at 1M
tickets that made a night's ingest 10x slower (64 s → 610 s). One ``INSERT … SELECT`` per batch
into the index costs half what the per-row trigger does (100k tickets: 13.7 s vs 27.1 s). So
the insert trigger now stands aside while a row sits in ``search_index_deferred``: the bulk path
(``triage.store.db.search_index_in_bulk``) adds that row inside its transaction, inserts the
tickets, indexes them with one statement and removes the row again before the commit — other
connections never see it, and a rollback takes everything back. Every other insert (Open311, a
single ticket) is still indexed by the trigger; updates and deletes are unchanged. PostgreSQL:
nothing (its GIN index is maintained by the database).

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_COLS = "ticket_id, title, text, address"
_NEW = "new.ticket_id, new.title, new.text, new.address"


def _insert_trigger(when: str) -> str:
    return (
        f"CREATE TRIGGER tickets_fts_ai AFTER INSERT ON tickets {when}BEGIN "
        f"INSERT INTO tickets_fts(rowid, {_COLS}) VALUES (new.rowid, {_NEW}); END"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE search_index_deferred (since_rowid INTEGER NOT NULL)")
    op.execute("DROP TRIGGER tickets_fts_ai")
    op.execute(_insert_trigger("WHEN NOT EXISTS (SELECT 1 FROM search_index_deferred) "))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER tickets_fts_ai")
    op.execute(_insert_trigger(""))
    op.execute("DROP TABLE search_index_deferred")
