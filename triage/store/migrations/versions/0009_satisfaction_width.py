"""queue_items.satisfaction wide enough for every code (after 0004)

The column was VARCHAR(16) and ``basically_satisfied`` (基本满意) has 19 characters: PostgreSQL
refused every such call-back or closed-ticket import. SQLite does not enforce the length, so only
PostgreSQL's column changes.

Revision ID: 0009
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("queue_items", "satisfaction", type_=sa.String(length=32), existing_nullable=True)


def downgrade() -> None:
    # a stored basically_satisfied makes this fail with "value too long": refused, never cut
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("queue_items", "satisfaction", type_=sa.String(length=16), existing_nullable=True)
