"""A street's queue items newest first: an index on (street_code, queue, id) (after 0010)

Search reads a street's newest tickets directly before it asks the trigram index
(triage/search.py); queue item ids grow with arrival, so this index walks them newest first.

Revision ID: 0012
Revises: 0010
"""

from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_queue_street_newest", "queue_items", ["street_code", "queue", "id"])


def downgrade() -> None:
    op.drop_index("ix_queue_street_newest", table_name="queue_items")
