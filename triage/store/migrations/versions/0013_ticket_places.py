"""ticket_places: the place names read from each ticket, kept between nights (after 0012)

The nightly hotspot stage reads place names from every ticket of its 90-day window (pure Python,
most of the stage's time); 89 of those days were read on earlier nights. Each row holds what was
found and a digest of what was read (title, cut text, address) with the reader's fingerprint, so a
changed text or changed reading rules are read again (triage/hotspots/events.py). A cache only: it
can be emptied at any time. Additive.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket_places",
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("places", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.ticket_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ticket_id"),
    )


def downgrade() -> None:
    op.drop_table("ticket_places")
