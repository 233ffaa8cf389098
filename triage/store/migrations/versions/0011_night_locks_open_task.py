"""night_locks (who is running a night) and one open proactive task per task_key (after 0004)

Two runs of the same night at once corrupted the ledger, and two nights on PostgreSQL duplicated
proactive tasks (a read-then-write). ``night_locks`` holds one row per held night lock (on SQLite the
row is the lock; on PostgreSQL an advisory lock is, and the row says who holds it). A partial unique
index keeps one open proactive task per ``task_key``. Duplicates already open are closed first,
keeping the oldest of each key (its history is the task's).

Revision ID: 0011
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

# the statuses of kind fixed/closed in taxonomy/workflow.yaml (models.OPEN_TASK_WHERE says the same)
DONE = "('fixed', 'callback', 'closed')"
OPEN = f"kind = 'proactive' AND status NOT IN {DONE}"


def upgrade() -> None:
    op.create_table(
        "night_locks",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("what", sa.String(length=128), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        f"UPDATE queue_items SET status = 'closed' WHERE {OPEN} AND id > ("
        "SELECT MIN(q.id) FROM queue_items q WHERE q.task_key = queue_items.task_key "
        f"AND q.kind = 'proactive' AND q.status NOT IN {DONE})"
    )
    op.create_index(
        "uq_queue_open_task", "queue_items", ["task_key"], unique=True,
        sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("uq_queue_open_task", table_name="queue_items")
    op.drop_table("night_locks")
