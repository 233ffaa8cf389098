"""Persistence: SQLAlchemy models, engine/session helpers, Alembic migrations."""

from triage.store.db import (
    DatabaseError,
    dispose_engines,
    get_engine,
    insert_ignore,
    require_schema,
    session_scope,
    upgrade,
    upsert,
)
from triage.store.models import (
    Base,
    IngestFile,
    Label,
    PipelineRun,
    Prediction,
    Quarantine,
    QueueEvent,
    QueueItem,
    SourceWatermark,
    Ticket,
)

__all__ = [
    "Base",
    "DatabaseError",
    "IngestFile",
    "Label",
    "PipelineRun",
    "Prediction",
    "QueueEvent",
    "QueueItem",
    "Quarantine",
    "SourceWatermark",
    "Ticket",
    "dispose_engines",
    "get_engine",
    "insert_ignore",
    "require_schema",
    "session_scope",
    "upgrade",
    "upsert",
]
