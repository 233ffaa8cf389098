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
        "change-me-in-production",
        description="salt for the one-way hash of callers' phone numbers (repeat-caller counts)",
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
    # --- intra-day dispatch and alerts (docs/deploy.md "Intra-day dispatch", "Alerts") ---
    intraday_settle_seconds: float = Field(
        10.0, ge=0, description="an inbox file is read intra-day only once unchanged (size, mtime) this long"
    )
    notify_webhook_url: str | None = Field(None, description="alerts: JSON POST here (none by default)")
    notify_webhook_format: str = Field(
        "json",
        pattern="^(json|dingtalk|wecom)$",
        description="body: json, or a DingTalk/WeCom robot text message",
    )
    notify_smtp_host: str | None = Field(None, description="alerts by e-mail through this SMTP server")
    notify_smtp_port: int = 25
    notify_smtp_user: str | None = None
    notify_smtp_password: str | None = None
    notify_smtp_starttls: bool = False
    notify_email_from: str = "12345-triage@localhost"
    notify_email_to: str = Field("", description="comma-separated recipients")
    notify_timeout_s: float = Field(5.0, gt=0, description="one delivery attempt waits at most this long")
    notify_max_attempts: int = Field(6, ge=1, description="then an alert is marked failed")
    notify_backoff_s: float = Field(60.0, ge=0, description="retry after this, doubling each attempt")
    notify_lookback_hours: float = Field(
        24.0, description="only items received/overdue this recently raise alerts (no flood from history)"
    )
    notify_max_per_run: int = Field(
        200, ge=1, description="alerts delivered per run; the rest wait for the next"
    )

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
    def notify_channels(self) -> list[str]:
        """The alert channels configured (none by default)."""
        return [name for name, on in (("webhook", self.notify_webhook_url),
                                      ("email", self.notify_smtp_host and self.notify_email_to)) if on]  # fmt: skip

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; call ``reset_settings()`` after changing the environment (tests)."""
    return Settings()


def reset_settings() -> None:
    get_settings.cache_clear()
