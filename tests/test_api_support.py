"""Shared harness for the API tests: a real uvicorn server (subprocess, free port) over a freshly
migrated SQLite file and a fresh PostgreSQL schema, seeded through the store, with real tokens.

No tests live here; test_api*.py, test_open311.py, test_web.py and test_lifecycle.py import it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_URL, REPO, _reset_caches, drop_pg_schema, new_pg_schema_name

WANGJING = "110105026"  # 望京街道
WANSHOULU = "110108001"  # 万寿路街道
JIUXIANQIAO = "110105011"  # 酒仙桥街道
_SEQ = itertools.count(1)
_ENV_KEYS = (
    "TRIAGE_VAR_DIR", "TRIAGE_DATABASE_URL", "TRIAGE_DB_SCHEMA", "TRIAGE_API_TOKEN_CACHE_SECONDS",
    "TRIAGE_API_TOTAL_CACHE_SECONDS", "TRIAGE_PII_SALT",
)  # fmt: skip


@dataclass
class Live:
    url: str
    backend: str
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, who: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_item(
    street: str | None = WANGJING,
    text: str = "小区门口有人占道摆摊卖水果，影响通行",
    address: str | None = "朝阳区望京街道花家地西里3号楼",
    category: str = "street_vending",
    due_in_hours: float = 72,
    received_at: dt.datetime | None = None,
    masked: bool = True,
    title: str | None = None,
) -> dict[str, Any]:
    """One ticket + its queue item + route event, written through the store like the router does."""
    from triage.geo import get_gazetteer
    from triage.store import QueueEvent, QueueItem, Ticket, get_engine
    from triage.text import clean_text

    now = dt.datetime.now(dt.UTC)
    received = received_at or now - dt.timedelta(hours=1)
    tid = f"T{next(_SEQ):05d}-{uuid.uuid4().hex[:6]}"
    unit = get_gazetteer().unit(street) if street else None
    ticket = {
        "ticket_id": tid, "received_at": received, "received_date": received.date(), "night": received.date(),
        "title": clean_text(title) if title and masked else title, "text": clean_text(text) if masked else text,
        "address": clean_text(address) if address else None,
        "channel": "phone", "caller_masked": "138****5678", "content_hash": "x", "shard": 0,
    }  # fmt: skip
    item = {
        "kind": "ticket", "ticket_id": tid, "queue": "street" if street else "centre", "street_code": street,
        "district_code": unit.district_code if unit else None, "category": category,
        "lead_unit": "street_office", "departments": ["urban_management_enforcement"], "sla_tier": "general",
        "priority": 3, "due_at": now + dt.timedelta(hours=due_in_hours),
        "status": "dispatched" if street else "pending_dispatch", "route_method": "address:street",
        "route_confidence": 0.95, "return_count": 0, "escalated": False, "version": 1,
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    with get_engine().begin() as conn:
        conn.execute(Ticket.__table__.insert(), ticket)
        item_id = conn.execute(QueueItem.__table__.insert().returning(QueueItem.id), item).scalar_one()
        conn.execute(
            QueueEvent.__table__.insert(),
            {"item_id": item_id, "at": now, "actor": "system:router", "action": "route", "to_status": item["status"],
             "to_street": street},
        )  # fmt: skip
    return {**item, "id": item_id, "title": ticket["title"]}


def _start_server(tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - kept open for the server's lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "triage.api.app:asgi_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=REPO, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {(tmp / 'server.log').read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("server did not start within 60 s")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A migrated database with tokens, and a real server on it (module-wide; tests seed their own items)."""
    from triage.auth import create_token
    from triage.store import upgrade

    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    tmp = tmp_path_factory.mktemp("api")
    os.environ["TRIAGE_VAR_DIR"] = str(tmp / "var")
    os.environ["TRIAGE_API_TOKEN_CACHE_SECONDS"] = "0"  # revocation must show at once in tests
    os.environ["TRIAGE_API_TOTAL_CACHE_SECONDS"] = "0"  # tests seed rows behind the server's back
    os.environ["TRIAGE_PII_SALT"] = "test-pii-key"  # the API refuses the public default on PostgreSQL
    schema = None
    if request.param == "postgresql":
        schema = new_pg_schema_name()
        os.environ["TRIAGE_DATABASE_URL"] = PG_URL
        os.environ["TRIAGE_DB_SCHEMA"] = schema
    else:
        os.environ["TRIAGE_DATABASE_URL"] = f"sqlite:///{tmp / 'var' / 'triage.db'}"
        os.environ.pop("TRIAGE_DB_SCHEMA", None)
    _reset_caches()
    upgrade()
    live = Live("", request.param)
    for key, role, street in [
        ("wangjing", "street", WANGJING), ("wanshoulu", "street", WANSHOULU),
        ("jiuxianqiao", "street", JIUXIANQIAO), ("analyst", "analyst", None), ("admin", "admin", None),
    ]:  # fmt: skip
        live.tokens[key], _ = create_token(key, role, street)
    proc, live.url = _start_server(tmp)
    try:
        yield live
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        _reset_caches()
        if schema:
            drop_pg_schema(schema)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _reset_caches()
