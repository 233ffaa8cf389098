"""SQLite search index: FTS5 buffers 64 MB of new index entries in memory, not 1 MB (after 0014)

FTS5 keeps the terms of rows being indexed in an in-memory hash and writes them out as a new
segment of the index whenever that hash passes its ``hashsize`` (1 MB by default); segments are
then merged again and again as they accumulate (``automerge``). A night's ingest indexes 50,000
tickets per statement (migration 0014): with trigram terms, 1 MB is a few hundred tickets, so each
batch wrote dozens of small segments and most of the indexing time went into merging them. With
64 MB a batch writes about one segment (measured in docs/benchmarks.md, "2026-12-03: search index
settings for ingest"). The setting lives in the table's own ``tickets_fts_config`` row, so every
connection uses it. The memory is used only while an insert is being indexed and is freed at the
commit. Search reads the same index (fewer, larger segments); results are unchanged.

``hashsize`` is read by FTS5 like ``automerge`` and ``pgsz`` (``fts5_config.c``) but, unlike them,
is not listed in the FTS5 documentation; tests check that it is in effect after this migration.

PostgreSQL: nothing here; its GIN index is tuned per ingest transaction in
``triage.store.db.search_index_in_bulk`` (a session setting, not part of the schema).

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

HASHSIZE = 64 * 1024 * 1024
DEFAULT_HASHSIZE = 1024 * 1024  # FTS5's own default (FTS5_DEFAULT_HASHSIZE)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"INSERT INTO tickets_fts(tickets_fts, rank) VALUES ('hashsize', {HASHSIZE})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # through FTS5 (not a DELETE on its config table), so open connections reload the value
    op.execute(f"INSERT INTO tickets_fts(tickets_fts, rank) VALUES ('hashsize', {DEFAULT_HASHSIZE})")
