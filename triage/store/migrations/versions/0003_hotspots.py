"""hotspots: signals, events, scan clusters; proactive-task columns on queue_items (after 0002)

Additive only (new tables, new nullable columns, new indexes), so it can be re-chained after any
other revision.

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import triage.store.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC = triage.store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "hotspot_signals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("observed", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("q_value", sa.Float(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("history_days", sa.Integer(), nullable=False),
        sa.Column("significant", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("night", "level", "unit_code", "category", name="uq_hotspot_signal"),
    )
    op.create_index("ix_hotspot_signals_night", "hotspot_signals", ["night"])
    op.create_table(
        "hotspot_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("event_key", sa.String(length=32), nullable=False),
        sa.Column("street_code", sa.String(length=12), nullable=True),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("place", sa.String(length=128), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("first_seen", UTC, nullable=False),
        sa.Column("last_seen", UTC, nullable=False),
        sa.Column("growth", sa.Float(), nullable=False),
        sa.Column("recent_7d", sa.Integer(), nullable=False),
        sa.Column("repeat_callers", sa.Integer(), nullable=False),
        sa.Column("votes", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("member_ids", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("night", "event_key", name="uq_hotspot_event"),
    )
    op.create_index("ix_hotspot_events_night", "hotspot_events", ["night"])
    op.create_table(
        "scan_clusters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("center_lat", sa.Float(), nullable=False),
        sa.Column("center_lon", sa.Float(), nullable=False),
        sa.Column("radius_km", sa.Float(), nullable=False),
        sa.Column("start_day", sa.Date(), nullable=False),
        sa.Column("end_day", sa.Date(), nullable=False),
        sa.Column("observed", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=False),
        sa.Column("llr", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("night", "rank", name="uq_scan_cluster"),
    )
    op.create_index("ix_scan_clusters_night", "scan_clusters", ["night"])
    # plain ADD COLUMN (nullable) works on SQLite without a table rebuild
    op.add_column("queue_items", sa.Column("task_key", sa.String(length=128), nullable=True))
    op.add_column("queue_items", sa.Column("title", sa.Text(), nullable=True))
    op.add_column("queue_items", sa.Column("evidence", sa.JSON(), nullable=True))
    op.create_index("ix_queue_items_task_key", "queue_items", ["task_key"])


def downgrade() -> None:
    op.drop_index("ix_queue_items_task_key", table_name="queue_items")
    with op.batch_alter_table("queue_items") as batch:
        batch.drop_column("evidence")
        batch.drop_column("title")
        batch.drop_column("task_key")
    op.drop_table("scan_clusters")
    op.drop_table("hotspot_events")
    op.drop_table("hotspot_signals")
