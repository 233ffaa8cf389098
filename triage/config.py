"""One settings object for the whole product.

Every value can be set by an environment variable named ``TRIAGE_<FIELD>`` (for example
``TRIAGE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test``). Paths default to the
project checkout so that a fresh clone works with no configuration at all: an embedded SQLite file
under ``var/``, the shipped taxonomy, models and sample data.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PII_SALT = "change-me-in-production"


class ConfigError(RuntimeError):
    """A setting that must be changed before this process may start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIAGE_", extra="ignore")

    home: Path = Field(PROJECT_ROOT, description="checkout holding taxonomy/, models/, data_samples/")
    var_dir: Path | None = Field(None, description="working files: SQLite database, reports, inbox")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite under var/")
    db_schema: str | None = Field(None, description="PostgreSQL schema to use (tests isolate by schema)")
    taxonomy_dir: Path | None = None
    models_dir: Path | None = None
    inbox_dir: Path | None = Field(
        None, description="per-night folders of export files: <inbox>/<YYYY-MM-DD>/"
    )
    reports_dir: Path | None = None
    timezone: str = Field("Asia/Shanghai", description="business timezone; naive timestamps are read in it")
    pii_salt: str = Field(
        DEFAULT_PII_SALT,
        description="secret key of the one-way HMAC of callers' phone numbers (repeat-caller counts); "
        "the API and the DAGs refuse to start on PostgreSQL with the default",
    )
    max_text_chars: int = Field(
        20_000, description="longer texts are quarantined (text_too_long) with a bounded excerpt"
    )
    max_file_bytes: int = Field(2_000_000_000, description="larger input files are refused before reading")
    batch_rows: int = Field(50_000, description="rows per batch when streaming files into the database")
    ingest_processes: int = Field(
        min(os.cpu_count() or 1, 4),
        ge=1,
        description="processes that validate and clean rows of a large file in parallel (1 = in the task itself)",
    )

    # the API (triage.api.app)
    api_threads: int = Field(
        10, ge=1, description="threads per API worker (keep at the connection pool's size)"
    )
    api_max_body_bytes: int = Field(64 * 1024, ge=1024, description="larger request bodies get 413")
    api_token_cache_seconds: float = Field(
        5.0, ge=0, description="a revoked token stops working within this many seconds in other processes"
    )
    api_total_cache_seconds: float = Field(
        5.0, ge=0, description="queue totals are reused this long per filter"
    )
    # the DAGs and the workers
    classify_shards: int = Field(2, ge=1, description="parallel classify/route tasks of the nightly DAG")
    retry_delay_s: int = Field(120, ge=0, description="a failed DAG task is retried after this delay")
    retrain_min_new_labels: int = Field(
        50, ge=1, description="new labels that trigger retraining before its weekly schedule (labels asset)"
    )
    worker_name: str | None = Field(None, description="Celery worker host name (default: the FQDN)")

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        self.var_dir = self.var_dir or self.home / "var"
        self.taxonomy_dir = self.taxonomy_dir or self.home / "taxonomy"
        self.models_dir = self.models_dir or self.home / "models"
        self.inbox_dir = self.inbox_dir or self.home / "data_samples" / "inbox"
        self.reports_dir = self.reports_dir or self.var_dir / "reports"
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'triage.db'}"
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def require_production_secrets(self) -> None:
        """Refuse to serve a real database with the public default PII key: anyone could re-compute
        callers' hashes from phone numbers. SQLite (a laptop, the demo, tests) is left alone."""
        if not self.is_sqlite and self.pii_salt == DEFAULT_PII_SALT:
            raise ConfigError(
                "TRIAGE_PII_SALT is the public default 'change-me-in-production' on a PostgreSQL "
                'database: set TRIAGE_PII_SALT to a long random secret (e.g. `python -c "import secrets; '
                'print(secrets.token_urlsafe(32))"`), the same for the API, the DAGs and the CLI; '
                "see docs/deploy.md 'Caller hashes'"
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; call ``reset_settings()`` after changing the environment (tests)."""
    return Settings()


def reset_settings() -> None:
    get_settings.cache_clear()
