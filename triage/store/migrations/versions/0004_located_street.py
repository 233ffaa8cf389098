"""queue_items.located_street_code: the resolved street of a ticket in any queue (after 0003)

A ticket sent to the centre's queue for a low-confidence category keeps no street_code (that column
decides who may see and act on it), but its location is known and belongs in its street's hotspot
and trend counts. Existing rows are filled from street_code, or from the community code's street.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("queue_items", sa.Column("located_street_code", sa.String(length=12), nullable=True))
    # community codes are the street's 9-digit code + 3 digits (the gazetteer's scheme)
    op.execute(
        "UPDATE queue_items SET located_street_code = COALESCE(street_code, SUBSTR(community_code, 1, 9)) "
        "WHERE kind = 'ticket'"
    )


def downgrade() -> None:
    op.drop_column("queue_items", "located_street_code")
