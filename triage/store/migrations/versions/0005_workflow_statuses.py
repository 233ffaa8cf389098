"""workflow_statuses: queue_items.status may only hold a status of taxonomy/workflow.yaml (after 0004);
callers' hashes become HMAC-SHA-256


The status column was a free string. It now refers to ``workflow_statuses`` (code, name, kind), a
table `triage db upgrade` keeps in step with taxonomy/workflow.yaml (adding a status is one edit
there, no migration). PostgreSQL enforces it with a foreign key; SQLite, whose ALTER TABLE cannot
add one without rebuilding queue_items (and a rebuild would cascade-delete its audit events), with
two triggers. This revision seeds the eight statuses the product had when it was written.

tickets.caller_hash: the salted SHA-256 (20 hex characters) becomes an HMAC-SHA-256 keyed with
TRIAGE_PII_SALT over that hash (32 characters, triage.text.caller_hash), so stored hashes are
converted here without any phone number: run the upgrade with the same TRIAGE_PII_SALT the tickets
were ingested with. Only 20-character values are converted (running it again changes nothing); a
downgrade keeps the converted values (the HMAC cannot be undone, and the old code only compares them).

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


def _rehash_callers() -> None:
    from triage.config import get_settings
    from triage.text import rehash_legacy

    key = get_settings().pii_salt
    conn = op.get_bind()
    old = conn.execute(
        sa.text("SELECT DISTINCT caller_hash FROM tickets WHERE LENGTH(caller_hash) = 20")
    ).scalars().all()
    update = sa.text("UPDATE tickets SET caller_hash = :new WHERE caller_hash = :old")
    for i in range(0, len(old), 10_000):
        conn.execute(update, [{"old": h, "new": rehash_legacy(h, key)} for h in old[i : i + 10_000]])


def upgrade() -> None:
    _rehash_callers()
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
