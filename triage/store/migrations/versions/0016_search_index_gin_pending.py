"""PostgreSQL search index: GIN's pending list may hold 256 MB before an inserting session merges it

The trigram GIN index (migration 0006) takes new tickets into its pending list (``fastupdate``)
and merges the list into the index when it passes ``gin_pending_list_limit`` (4 MB by default):
at a night's ingest rate, a merge every ~1,500 tickets, most of PostgreSQL's ingest work. As this
index's own storage parameter the larger limit holds for every session. What is pending is
merged on purpose instead: by ingest at the end of each file, and by the intra-day run every 10
minutes (``triage.store.clean_search_index``), so searches never scan more than ~10 minutes of
Open311 tickets in the pending list.

Why on the index and not in ingest's session alone: then any other session inserting while a
large list was pending (an Open311 ticket during the night's ingest) found the list over *its own*
4 MB limit and merged all of it itself, seconds on the emergency path. With the index's limit an
Open311 insert merges only if it is the very insert that crosses 256 MB, while ingest adds
thousands of tickets a second; and a regular insert that finds a merge running elsewhere skips
it rather than waits (PostgreSQL's ``ginInsertCleanup``).

Measured (docs/benchmarks.md, "GIN pending-list limit for every session"): a 200k ingest
70–73 s → 50–55 s, PostgreSQL's CPU 49–51 s → 33–36 s, search after ingest unchanged; a 1M night's
ingest 465 s → 255 s. The index file keeps the merged lists' freed pages for reuse (150 → 370 MB
on a fresh database at 200k).

SQLite: nothing here (FTS5's settings: migration 0015).

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

PENDING_LIMIT_KB = 256 * 1024


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER INDEX ix_tickets_search_trgm SET (gin_pending_list_limit = {PENDING_LIMIT_KB})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER INDEX ix_tickets_search_trgm RESET (gin_pending_list_limit)")
