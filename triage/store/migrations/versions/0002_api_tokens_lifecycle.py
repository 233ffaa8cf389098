"""api tokens, lifecycle columns, queue indexes for the street API

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:00:00
"""

import sqlalchemy as sa
from alembic import op

import triage.store.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("street_code", sa.String(length=12), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", triage.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", triage.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", triage.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("acknowledged_at", triage.store.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("returned_from", sa.JSON(), nullable=True))
        batch_op.create_index(
            "ix_queue_street_due_id", ["street_code", "queue", "due_at", "id"], unique=False
        )
        batch_op.create_index("ix_queue_due_id", ["due_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("queue_items", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_due_id")
        batch_op.drop_index("ix_queue_street_due_id")
        batch_op.drop_column("returned_from")
        batch_op.drop_column("acknowledged_at")
    op.drop_table("api_tokens")
