"""workflow_statuses: queue_items.status may only hold a status of taxonomy/workflow.yaml (after 0004)

The status column was a free string. It now refers to ``workflow_statuses`` (code, name, kind), a
table `triage db upgrade` keeps in step with taxonomy/workflow.yaml (adding a status is one edit
there, no migration). PostgreSQL enforces it with a foreign key; SQLite, whose ALTER TABLE cannot
add one without rebuilding queue_items (and a rebuild would cascade-delete its audit events), with
two triggers. This revision seeds the eight statuses the product had when it was written.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATUSES = [
    ("pending_dispatch", "待派单", "open"), ("dispatched", "派单", "open"), ("acknowledged", "签收", "open"),
    ("in_progress", "办理", "open"), ("fixed", "办结", "fixed"), ("returned", "退单", "open"),
    ("callback", "回访", "fixed"), ("closed", "结案", "closed"),
]  # fmt: skip
_MESSAGE = "queue_items.status is not a status of workflow_statuses (taxonomy/workflow.yaml)"


def upgrade() -> None:
    table = op.create_table(
        "workflow_statuses",
        sa.Column("code", sa.String(length=24), primary_key=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
    )
    op.bulk_insert(table, [{"code": c, "name": n, "kind": k} for c, n, k in STATUSES])
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key(
            "fk_queue_items_status", "queue_items", "workflow_statuses", ["status"], ["code"]
        )
        return
    for event in ("INSERT", "UPDATE OF status"):
        name = "ck_queue_items_status_" + event.split()[0].lower()
        op.execute(
            f"CREATE TRIGGER {name} BEFORE {event} ON queue_items "
            "WHEN NOT EXISTS (SELECT 1 FROM workflow_statuses WHERE code = NEW.status) "
            f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("fk_queue_items_status", "queue_items", type_="foreignkey")
    else:
        op.execute("DROP TRIGGER IF EXISTS ck_queue_items_status_insert")
        op.execute("DROP TRIGGER IF EXISTS ck_queue_items_status_update")
    op.drop_table("workflow_statuses")
