"""hotspot_events: kind (place / org), voices, own baseline and surprise; scan_clusters: the units
a cluster covers (after 0004)

An event is about a place or an organisation/case; its voices count one caller once however often
they call; ``baseline_7d`` is what its own history (and its category's) lets one expect in 7 days,
``surprise`` = −log10 P(recent ≥ observed | baseline), the heat a proactive task is ranked by. A scan
cluster names its street(s) and communities instead of raw coordinates. All nullable: additive.

Revision ID: 0010
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hotspot_events") as b:
        b.add_column(sa.Column("kind", sa.String(length=8), nullable=True))
        b.add_column(sa.Column("voices", sa.Integer(), nullable=True))
        b.add_column(sa.Column("baseline_7d", sa.Float(), nullable=True))
        b.add_column(sa.Column("surprise", sa.Float(), nullable=True))
    with op.batch_alter_table("scan_clusters") as b:
        b.add_column(sa.Column("units", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scan_clusters") as b:
        b.drop_column("units")
    with op.batch_alter_table("hotspot_events") as b:
        for c in ("surprise", "baseline_7d", "voices", "kind"):
            b.drop_column(c)
