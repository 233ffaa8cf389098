"""Test harness: every test that touches a database gets a fresh one — a SQLite file in a temp
folder, and (for tests using the ``db`` fixture) also a private schema on the real PostgreSQL
server at 127.0.0.1:5432. Nothing is mocked.

PostgreSQL is required: if it is not reachable the PostgreSQL variants fail with a clear message.
Set TRIAGE_TEST_SKIP_PG=1 to skip them deliberately on a machine without it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PG_URL = os.environ.get("TRIAGE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parent.parent


def _reset_caches() -> None:
    from triage.classify import registry
    from triage.config import reset_settings
    from triage.store import dispose_engines
    from triage.taxonomy import clear_cache

    dispose_engines()
    reset_settings()
    clear_cache()
    registry._CHAMPION_CACHE.clear()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Isolated settings: var/ in a temp folder, SQLite database there."""
    var = tmp_path / "var"
    monkeypatch.setenv("TRIAGE_VAR_DIR", str(var))
    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{var / 'triage.db'}")
    monkeypatch.delenv("TRIAGE_DB_SCHEMA", raising=False)
    _reset_caches()
    yield tmp_path
    _reset_caches()


def _pg_available() -> str | None:
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(PG_URL)
        with eng.connect() as c:
            c.execute(sa.text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - report whatever the driver says
        return f"{exc.__class__.__name__}: {exc}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated, empty database: SQLite, then the same test again on PostgreSQL."""
    from triage.store import upgrade

    schema = None
    if request.param == "postgresql":
        schema = new_pg_schema_name()
        monkeypatch.setenv("TRIAGE_DATABASE_URL", PG_URL)
        monkeypatch.setenv("TRIAGE_DB_SCHEMA", schema)
        _reset_caches()
    upgrade()
    yield request.param
    _reset_caches()
    if schema:
        drop_pg_schema(schema)


def new_pg_schema_name() -> str:
    """A fresh private schema name for one test on the real PostgreSQL; skips the test when
    TRIAGE_TEST_SKIP_PG=1 and fails it with the reason when the server is unreachable."""
    if os.environ.get("TRIAGE_TEST_SKIP_PG") == "1":
        pytest.skip("TRIAGE_TEST_SKIP_PG=1")
    problem = _pg_available()
    if problem:
        pytest.fail(
            f"PostgreSQL at {PG_URL} is not reachable ({problem}); start it or set TRIAGE_TEST_SKIP_PG=1"
        )
    return f"t_{uuid.uuid4().hex[:12]}"


def drop_pg_schema(schema: str) -> None:
    """Remove a test's private PostgreSQL schema and everything in it."""
    import sqlalchemy as sa

    eng = sa.create_engine(PG_URL)
    with eng.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


@pytest.fixture
def sqlite_db(env: Path) -> Path:
    """A migrated SQLite database only (for tests where the backend does not matter)."""
    from triage.store import upgrade

    upgrade()
    return env


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty TRIAGE_MODELS_DIR in a temp folder (model registry tests)."""
    from triage.classify import registry
    from triage.config import reset_settings

    d = tmp_path / "models"
    monkeypatch.setenv("TRIAGE_MODELS_DIR", str(d))
    reset_settings()
    registry._CHAMPION_CACHE.clear()
    yield d
    reset_settings()
    registry._CHAMPION_CACHE.clear()


# --- Airflow ---------------------------------------------------------------------------------
# Airflow reads its configuration when first imported, so its home is fixed for the whole test
# session here, before any test imports it: a temp folder with its own SQLite metadata database.
_AIRFLOW_HOME = Path(
    os.environ.get("TRIAGE_TEST_AIRFLOW_HOME")
    or Path(__import__("tempfile").mkdtemp(prefix="triage-airflow-"))
)
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
# dag.test() cannot finish a DAG run with a DeadlineAlert (Airflow 3.3): see dags/nightly_triage.py
os.environ["TRIAGE_DAG_DEADLINES"] = "0"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, migrated once per session (the real `airflow db migrate`)."""
    import subprocess
    import sys

    airflow = Path(sys.executable).with_name("airflow")
    proc = subprocess.run(
        [str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy()
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return _AIRFLOW_HOME


# --- Headless Chromium -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chrome() -> Iterator[Any]:
    """A headless Debian Chromium driven by Selenium (`make test` installs chromium + chromium-driver).

    ``browser_errors(driver)`` (below) returns the page's console errors."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.fail(
            "headless Chromium is missing: run `make browser` (Debian packages chromium, chromium-driver)"
        )
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def browser_errors(driver: Any) -> list[str]:
    """Console messages of level SEVERE since the last call (Chromium clears the log on read)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
