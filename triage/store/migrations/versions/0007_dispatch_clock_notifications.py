"""queue_items.dispatched_at (the street's SLA clock) and the notifications table (after 0004)

A street can only answer an item once it has been dispatched to it: the street's share of the
response and deadline figures counts from ``dispatched_at`` (docs/hotspots.md, "Fair SLA clocks").
Existing street items get the time of their last dispatch to the street holding them (the
router's ``route`` or the centre's ``redispatch`` event), else their creation time.

``notifications``: every alert once (unique ``key``), with its delivery attempts. An index on
``tickets.source_file_id``: the intra-day dispatch works on the day's files only.

Revision ID: 0007
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("queue_items", sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE queue_items SET dispatched_at = COALESCE("
        "(SELECT MAX(e.at) FROM queue_events e WHERE e.item_id = queue_items.id "
        "AND e.action IN ('route', 'redispatch') AND e.to_street = queue_items.street_code), created_at) "
        "WHERE street_code IS NOT NULL"
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("street_code", sa.String(length=12), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("delivered", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key", name="uq_notification_key"),
    )
    op.create_index("ix_notifications_status_next", "notifications", ["status", "next_attempt_at"])
    # the intra-day dispatch classifies and routes the tickets of the day's files only
    op.create_index("ix_tickets_source_file_id", "tickets", ["source_file_id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_source_file_id", table_name="tickets")
    op.drop_index("ix_notifications_status_next", table_name="notifications")
    op.drop_table("notifications")
    op.drop_column("queue_items", "dispatched_at")
