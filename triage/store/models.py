"""The product's tables (SQLAlchemy 2, typed declarative).

Data flows one way through a night: ``ingest_files`` (ledger) → ``tickets`` / ``quarantine`` →
``predictions`` → ``queue_items`` (+ ``queue_events`` audit) → hotspots. Every table is written
idempotently: natural keys are unique, so re-running a night converges to the same rows.

All timestamps are stored in UTC (see :class:`UTCDateTime`); business dates (``night``,
``received_date``) are Asia/Shanghai calendar dates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes in, timezone-aware UTC datetimes out, on SQLite and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column; attach a timezone first")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class IngestFile(Base):
    """The ledger: one row per input file (or SQL pull) that was read, keyed by content checksum."""

    __tablename__ = "ingest_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)  # path as given, or "sql:<name>"
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    file_format: Mapped[str] = mapped_column(String(16))
    encoding: Mapped[str | None] = mapped_column(String(16))
    night: Mapped[dt.date | None] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16))  # ingested | rejected | empty
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_new: Mapped[int] = mapped_column(Integer, default=0)
    rows_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rows_quarantined: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]


class Ticket(Base):
    """A citizen's request as received. Text fields are normalised and PII-masked before storage."""

    __tablename__ = "tickets"

    ticket_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(index=True)
    received_date: Mapped[dt.date] = mapped_column(Date, index=True)  # Asia/Shanghai date
    night: Mapped[dt.date] = mapped_column(Date, index=True)  # the nightly run that first ingested it
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    district: Mapped[str | None] = mapped_column(String(64))
    street: Mapped[str | None] = mapped_column(String(128))
    community: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str | None] = mapped_column(String(32))
    caller_hash: Mapped[str | None] = mapped_column(String(32), index=True)
    caller_masked: Mapped[str | None] = mapped_column(String(32))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    source_category: Mapped[str | None] = mapped_column(String(64))
    votes: Mapped[int | None] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(40))
    # indexed: the intra-day dispatch classifies and routes the tickets of the day's files only
    source_file_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_files.id"), index=True)
    source_row: Mapped[int | None] = mapped_column(Integer)
    ingested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    shard: Mapped[int] = mapped_column(Integer, index=True)  # stable hash bucket for parallel work


class Quarantine(Base):
    """Rows that could not be used, with where they came from and why. Raw values are PII-masked."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("source_sha256", "row_number", name="uq_quarantine_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    row_number: Mapped[int] = mapped_column(Integer)
    ticket_id: Mapped[str | None] = mapped_column(String(256))
    field: Mapped[str | None] = mapped_column(String(64))
    reason_code: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    night: Mapped[dt.date | None] = mapped_column(Date, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Prediction(Base):
    """The current classification of a ticket, with the model version that made it."""

    __tablename__ = "predictions"

    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("tickets.ticket_id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(64), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    top3: Mapped[list[Any]] = mapped_column(default=list)  # [[code, prob], ...]
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    model_version: Mapped[str] = mapped_column(String(64))
    predicted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WorkflowStatus(Base):
    """The statuses of taxonomy/workflow.yaml, kept in step by `triage db upgrade`: queue_items.status
    must be one of them (a foreign key on PostgreSQL, triggers on SQLite; migration 0005)."""

    __tablename__ = "workflow_statuses"

    code: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))


# a proactive task is open until a status of kind fixed/closed in taxonomy/workflow.yaml
# (tests/test_faults.py checks the two agree; a new such status needs a migration of the index)
OPEN_TASK_WHERE = "kind = 'proactive' AND status NOT IN ('fixed', 'callback', 'closed')"


class QueueItem(Base):
    """One unit of work in a street's (or the city centre's) queue: a ticket or a proactive task."""

    __tablename__ = "queue_items"
    __table_args__ = (
        Index("ix_queue_street_status_due", "street_code", "status", "due_at"),
        # a street's first page (sorted by deadline), its count (index-only) and the centre's queue
        # (street_code IS NULL) are all range scans of this one index
        Index("ix_queue_street_due_id", "street_code", "queue", "due_at", "id"),
        Index("ix_queue_due_id", "due_at", "id"),  # analysts' and Open311's city-wide pages
        Index("ix_queue_street_newest", "street_code", "queue", "id"),  # a street's newest (search)
        # the centre review desk (migration 0008, which also adds PostgreSQL statistics)
        Index(
            "ix_queue_centre_review",
            "due_at",
            "id",
            "status",
            "escalated",
            "located_street_code",
            postgresql_where=sql_text("queue = 'centre' AND street_code IS NULL"),
            sqlite_where=sql_text("queue = 'centre' AND street_code IS NULL"),
        ),  # fmt: skip
        UniqueConstraint("kind", "ticket_id", name="uq_queue_ticket"),
        # one open proactive task per key, kept by the database: two nights writing at once cannot
        # both create it (the writer settles the conflict, triage/hotspots/proactive.py)
        Index(
            "uq_queue_open_task",
            "task_key",
            unique=True,
            sqlite_where=text(OPEN_TASK_WHERE),
            postgresql_where=text(OPEN_TASK_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="ticket")  # ticket | proactive
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.ticket_id", ondelete="CASCADE"))
    queue: Mapped[str] = mapped_column(String(16))  # street | centre
    street_code: Mapped[str | None] = mapped_column(String(12))
    district_code: Mapped[str | None] = mapped_column(String(6), index=True)
    community_code: Mapped[str | None] = mapped_column(String(12))
    # the street the ticket's location resolved to, whichever queue holds it: a low-confidence
    # ticket waits in the centre's queue (street_code NULL) but still counts for its street's
    # hotspots and trends. Analysis only — access and queues go by street_code.
    located_street_code: Mapped[str | None] = mapped_column(String(12))
    category: Mapped[str | None] = mapped_column(String(64))
    lead_unit: Mapped[str] = mapped_column(String(64))
    departments: Mapped[list[Any]] = mapped_column(default=list)
    sla_tier: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)  # 1 = most urgent
    due_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(24), index=True)
    route_method: Mapped[str | None] = mapped_column(String(32))
    route_confidence: Mapped[float | None] = mapped_column(Float)
    centre_reason: Mapped[str | None] = mapped_column(Text)  # why it is in the centre's queue
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved_at: Mapped[dt.datetime | None]
    satisfaction: Mapped[str | None] = mapped_column(String(32))  # basically_satisfied: 19
    version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic concurrency
    acknowledged_at: Mapped[dt.datetime | None]
    # when the item last entered a street's queue: the street's SLA clock starts here, the
    # citizen's (due_at) at receipt (docs/hotspots.md, "Fair SLA clocks")
    dispatched_at: Mapped[dt.datetime | None]
    # streets that sent the item back (退单), so re-dispatch never picks them again
    returned_from: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # proactive tasks (kind='proactive', ticket_id NULL): a stable key to update an open task
    # instead of duplicating it, a title, and the evidence (signal / event / pattern ids, figures)
    task_key: Mapped[str | None] = mapped_column(String(128), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class QueueEvent(Base):
    """Audit trail: every change of a queue item (who, when, from, to, note)."""

    __tablename__ = "queue_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("queue_items.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    from_street: Mapped[str | None] = mapped_column(String(12))
    to_street: Mapped[str | None] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text)


class Notification(Base):
    """An alert (emergency dispatched, item overdue, proactive task, run failed or late): written
    once under its key, then delivered to the configured channels with retries (triage.notify)."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("key", name="uq_notification_key"),
        Index("ix_notifications_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(32))
    street_code: Mapped[str | None] = mapped_column(String(12))
    subject: Mapped[str] = mapped_column(Text)  # masked
    body: Mapped[str] = mapped_column(Text)  # masked
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | failed
    delivered: Mapped[list[Any]] = mapped_column(default=list)  # channels that took it
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]


class ApiToken(Base):
    """An API / web sign-in token. Only a SHA-256 of the secret is stored; revocation is a timestamp."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))  # street | analyst | admin
    street_code: Mapped[str | None] = mapped_column(String(12))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to tell tokens apart in lists
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]


class Label(Base):
    """A human-assigned category for a ticket (imported or an analyst's correction)."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("ticket_id", "labeled_by", name="uq_label_ticket_labeler"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.ticket_id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(64))
    labeled_by: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(32), default="import")  # import | correction
    labeled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PipelineRun(Base):
    """One stage of one night: what ran, when, and the counts it produced."""

    __tablename__ = "pipeline_runs"
    __table_args__ = (UniqueConstraint("night", "stage", "shard", name="uq_run_stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    night: Mapped[dt.date] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(32))
    shard: Mapped[int] = mapped_column(Integer, default=-1)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SourceWatermark(Base):
    """How far an incremental SQL source has been read (received/updated time)."""

    __tablename__ = "source_watermarks"

    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    watermark: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HotspotSignal(Base):
    """One tested (unit × category) series of one night: observed, expected, p and BH q-value."""

    __tablename__ = "hotspot_signals"
    __table_args__ = (UniqueConstraint("night", "level", "unit_code", "category", name="uq_hotspot_signal"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    night: Mapped[dt.date] = mapped_column(Date, index=True)
    level: Mapped[str] = mapped_column(String(16))  # street | district
    unit_code: Mapped[str] = mapped_column(String(12))
    category: Mapped[str] = mapped_column(String(64))
    observed: Mapped[int] = mapped_column(Integer)
    expected: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    q_value: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(16))  # glm_nb | ears_c2
    history_days: Mapped[int] = mapped_column(Integer)
    significant: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HotspotEvent(Base):
    """A repeated-complaint event (same place and problem) as seen on one night."""

    __tablename__ = "hotspot_events"
    __table_args__ = (UniqueConstraint("night", "event_key", name="uq_hotspot_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    night: Mapped[dt.date] = mapped_column(Date, index=True)
    event_key: Mapped[str] = mapped_column(String(32))
    street_code: Mapped[str | None] = mapped_column(String(12))
    district_code: Mapped[str | None] = mapped_column(String(6))
    category: Mapped[str | None] = mapped_column(String(64))
    place: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]
    growth: Mapped[float] = mapped_column(Float, default=0.0)
    recent_7d: Mapped[int] = mapped_column(Integer, default=0)
    repeat_callers: Mapped[int] = mapped_column(Integer, default=0)
    votes: Mapped[float] = mapped_column(Float, default=0.0)
    score: Mapped[float] = mapped_column(Float)
    member_ids: Mapped[list[Any]] = mapped_column(default=list)
    kind: Mapped[str | None] = mapped_column(String(8))  # place | org (migration 0010)
    voices: Mapped[int | None] = mapped_column(Integer)  # distinct callers (+ anonymous tickets)
    baseline_7d: Mapped[float | None] = mapped_column(Float)  # its own expected last 7 days
    surprise: Mapped[float | None] = mapped_column(Float)  # −log10 P(recent ≥ observed | baseline)


class TicketPlace(Base):
    """The place names read from one ticket by the hotspot stage, kept between nights (0013).

    ``digest`` covers what was read (title, cut text, address) and the reader's fingerprint
    (triage.hotspots.events.place_digests): a row whose digest no longer matches is read again."""

    __tablename__ = "ticket_places"

    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("tickets.ticket_id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(32))
    places: Mapped[list[Any]] = mapped_column()  # the keys in the order the reader found them


class ScanCluster(Base):
    """The most likely space-time cluster of a night (space-time permutation scan), with p-value."""

    __tablename__ = "scan_clusters"
    __table_args__ = (UniqueConstraint("night", "rank", name="uq_scan_cluster"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    night: Mapped[dt.date] = mapped_column(Date, index=True)
    rank: Mapped[int] = mapped_column(Integer)
    center_lat: Mapped[float] = mapped_column(Float)
    center_lon: Mapped[float] = mapped_column(Float)
    radius_km: Mapped[float] = mapped_column(Float)
    start_day: Mapped[dt.date] = mapped_column(Date)
    end_day: Mapped[dt.date] = mapped_column(Date)
    observed: Mapped[int] = mapped_column(Integer)
    expected: Mapped[float] = mapped_column(Float)
    llr: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    # [{"level": "street"|"community", "code", "name", "tickets"}], most tickets first (0010)
    units: Mapped[list[Any] | None] = mapped_column(JSON)


class NightLock(Base):
    """Who holds a night (triage.store.locks): one row per held lock, for the message a second run
    gets. On PostgreSQL the lock itself is an advisory lock; on SQLite this row is the lock."""

    __tablename__ = "night_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    what: Mapped[str] = mapped_column(String(128))
    since: Mapped[dt.datetime] = mapped_column(default=utcnow)
