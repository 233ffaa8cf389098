"""Alerts to a real local HTTP receiver and a real local SMTP server (aiosmtpd): each event once,
phone numbers masked; a receiver that is down, answers 500 or hangs never fails the run and the
alert is retried later; an SMTP server refusing the login is one clear log line; a failed Airflow
run alerts through the DAG's on_failure_callback."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from triage.tables import write_table

DAGS = Path(__file__).resolve().parent.parent / "dags"
PHONE = "13812345678"


class Receiver:
    """A webhook receiver on a free port: records JSON bodies; ``mode`` ok / 500 / hang."""

    def __init__(self, mode: str = "ok", hang_s: float = 3.0) -> None:
        self.bodies: list[dict] = []
        self.mode = mode
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.mode == "hang":
                    time.sleep(hang_s)
                    return
                if outer.mode == "500":
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.bodies.append(body)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"errcode": 0}')
                except BrokenPipeError:  # the client gave up waiting (the "hang" case)
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """aiosmtpd on a free port, keeping what it receives; ``password`` makes it demand a login."""

    def __init__(self, password: str | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[str] = []
        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
                box.messages.append(envelope.content.decode("utf-8", "replace"))
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = password is not None and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

        self.port = free_port()
        warnings.filterwarnings(
            "ignore", "Requiring AUTH while not requiring TLS", UserWarning
        )  # local test server
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticator,
            auth_require_tls=False, auth_required=password is not None,
        )  # fmt: skip
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    m = Mailbox()
    yield m
    m.close()


def configure(monkeypatch: pytest.MonkeyPatch, **values: object) -> None:
    from triage.config import reset_settings

    for k, v in values.items():
        monkeypatch.setenv(f"TRIAGE_NOTIFY_{k.upper()}", str(v))
    reset_settings()


def emergency_inbox(tmp_path: Path, n: int = 12) -> Path:
    """Today's inbox with ``n`` tickets reporting a gas leak, each with a caller's mobile in the text."""
    from triage.ingest.loader import local_today
    from triage.synth import generate_tickets

    day = local_today() - dt.timedelta(hours=0)
    df = generate_tickets(n, seed=11, start=day, end=day, labeled=False, id_prefix="EM").tickets
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    df["received_at"] = now.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    df["text"] = df["text"] + f"，楼道里有燃气泄漏的味道，请尽快处理，电话{PHONE}"
    df["title"] = f"楼道燃气泄漏 回电{PHONE}"  # the alert quotes the title: the number must arrive masked
    inbox = tmp_path / "inbox"
    f = write_table(df, inbox / local_today().isoformat() / "em.csv")
    t = time.time() - 60
    os.utime(f, (t, t))
    return inbox


def street_emergencies() -> int:
    from sqlalchemy import func

    from triage.store import QueueItem, get_engine

    with get_engine().connect() as c:
        return c.execute(
            select(func.count()).select_from(QueueItem)
            .where(QueueItem.queue == "street", QueueItem.sla_tier == "emergency")
        ).scalar_one()  # fmt: skip


def test_emergency_alerts_reach_webhook_and_mailbox_once_each_masked(
    db, tmp_path, monkeypatch, receiver, mailbox
):
    from triage.pipeline import dispatch_stage
    from triage.store import Notification, get_engine

    configure(monkeypatch, webhook_url=receiver.url, webhook_format="dingtalk", smtp_host="127.0.0.1",
              smtp_port=mailbox.port, email_to="ops@example.org, duty@example.org")  # fmt: skip
    inbox = emergency_inbox(tmp_path)
    out = dispatch_stage(inbox)
    n = street_emergencies()
    assert n >= 1 and out["alerts"]["emergency"] == n and out["alerts"]["sent"] == n
    assert len(receiver.bodies) == n and len(mailbox.messages) == n
    for body in receiver.bodies:
        assert body["msgtype"] == "text" and "【紧急】" in body["text"]["content"]
    for text in [b["text"]["content"] for b in receiver.bodies] + mailbox.messages:
        assert PHONE not in text
    assert any("138****5678" in b["text"]["content"] for b in receiver.bodies)

    dispatch_stage(inbox)  # again: nothing new, nothing sent twice
    assert len(receiver.bodies) == n and len(mailbox.messages) == n
    with get_engine().connect() as c:
        rows = c.execute(select(Notification.status, Notification.delivered)).all()
    assert [(s, sorted(d)) for s, d in rows] == [("sent", ["email", "webhook"])] * n


def test_overdue_and_proactive_alerts_once(db, tmp_path, monkeypatch, receiver):
    """An open street item past the street's deadline (dispatch + tier hours) alerts once; a new
    proactive task alerts once; items overdue long ago (before the look-back) do not."""
    from triage import notify
    from triage.pipeline import dispatch_stage
    from triage.store import QueueItem, get_engine

    inbox = emergency_inbox(tmp_path, 6)
    dispatch_stage(inbox)  # no channel configured: nothing recorded
    configure(monkeypatch, webhook_url=receiver.url)
    now = dt.datetime.now(dt.UTC)
    with get_engine().begin() as c:
        ids = (
            c.execute(select(QueueItem.id).where(QueueItem.queue == "street").order_by(QueueItem.id))
            .scalars()
            .all()
        )
        # emergency tier: 2 hours from dispatch; one overdue an hour ago, one three days ago
        c.execute(update(QueueItem).where(QueueItem.id == ids[0]).values(
            dispatched_at=now - dt.timedelta(hours=3), due_at=now - dt.timedelta(hours=3)))  # fmt: skip
        c.execute(update(QueueItem).where(QueueItem.id == ids[1]).values(
            dispatched_at=now - dt.timedelta(days=3), due_at=now - dt.timedelta(days=3)))  # fmt: skip
    assert notify.overdue_items()["overdue"] == 1
    assert notify.overdue_items()["overdue"] == 0
    notify.deliver_pending()
    assert len(receiver.bodies) == 1 and "【超期】" in receiver.bodies[0]["title"]

    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with get_engine().begin() as c:
        c.execute(QueueItem.__table__.insert(), {
            "kind": "proactive", "queue": "street", "street_code": "110105026", "lead_unit": "street_office",
            "sla_tier": "general", "priority": 3, "due_at": now + dt.timedelta(days=7), "status": "dispatched",
            "title": f"南湖东园楼道堆物 联系人{PHONE}", "task_key": "t1", "category": "sanitation"})  # fmt: skip
    assert notify.proactive_created(since)["proactive"] == 1
    assert notify.proactive_created(since)["proactive"] == 0
    notify.deliver_pending()
    assert len(receiver.bodies) == 2 and "【主动治理】" in receiver.bodies[1]["title"]
    assert PHONE not in json.dumps(receiver.bodies, ensure_ascii=False)


@pytest.mark.parametrize("mode", ["down", "500", "hang"])
def test_a_receiver_down_failing_or_hanging_never_fails_the_run(sqlite_db, tmp_path, monkeypatch, mode):
    from triage import notify
    from triage.pipeline import dispatch_stage
    from triage.store import Notification, get_engine

    bad = Receiver(mode if mode != "down" else "ok", hang_s=4)
    url = bad.url
    if mode == "down":
        bad.close()  # nothing listens there any more
    configure(monkeypatch, webhook_url=url, timeout_s=1, backoff_s=0)
    t0 = time.perf_counter()
    out = dispatch_stage(emergency_inbox(tmp_path))
    n = street_emergencies()
    assert n >= 1 and out["to_street"] >= n and out["alerts"]["sent"] == 0 and out["alerts"]["retry"] == n
    assert time.perf_counter() - t0 < 30  # one timeout per pass, not one per alert
    with get_engine().connect() as c:
        rows = c.execute(select(Notification.status, Notification.attempts, Notification.last_error)).all()
    attempted = [r for r in rows if r.attempts == 1]
    assert len(attempted) == 1 and all(
        r.status == "pending" and r.last_error.startswith("webhook:") for r in rows
    )

    good = Receiver()  # the receiver is back: the next pass delivers everything, once
    try:
        configure(monkeypatch, webhook_url=good.url, timeout_s=1, backoff_s=0)
        assert notify.deliver_pending()["sent"] == n
        assert notify.deliver_pending()["sent"] == 0
        assert len(good.bodies) == n
    finally:
        good.close()
        if mode != "down":
            bad.close()


def test_an_smtp_server_refusing_the_login_is_one_clear_log_line(sqlite_db, monkeypatch, caplog):
    from triage import notify
    from triage.store import Notification, get_engine

    box = Mailbox(password="right")
    try:
        configure(monkeypatch, smtp_host="127.0.0.1", smtp_port=box.port, smtp_user="ops", smtp_password="wrong",
                  email_to="duty@example.org", timeout_s=2)  # fmt: skip
        assert notify.enqueue("test", "test:1", "测试 subject", f"来电 {PHONE}")
        with caplog.at_level(logging.WARNING, logger="triage.notify"):
            assert notify.deliver_pending() == {"sent": 0, "retry": 1, "failed": 0}
        assert box.messages == []
        lines = [r.getMessage() for r in caplog.records if "refused the login" in r.getMessage()]
        assert len(lines) == 1 and "'ops'" in lines[0] and "TRIAGE_NOTIFY_SMTP_PASSWORD" in lines[0]
        with get_engine().connect() as c:
            assert c.execute(select(Notification.body)).scalar_one() == "来电 138****5678"
        configure(monkeypatch, smtp_password="right")
        with get_engine().begin() as c:
            c.execute(update(Notification).values(next_attempt_at=dt.datetime.now(dt.UTC)))
        assert notify.deliver_pending()["sent"] == 1 and len(box.messages) == 1
    finally:
        box.close()


@pytest.mark.airflow
def test_a_failed_intraday_run_alerts_through_the_failure_callback(
    airflow_db, env, tmp_path, monkeypatch, receiver
):
    """The database is not migrated: the run fails, and the operators hear of it (sent unrecorded,
    since the alert table is what is missing)."""
    from airflow.dag_processing.dagbag import DagBag

    configure(monkeypatch, webhook_url=receiver.url)
    dag = DagBag(dag_folder=str(DAGS)).get_dag("intraday_dispatch")
    run = dag.test(run_conf={"inbox": str(tmp_path)})
    assert run.state == "failed"
    assert len(receiver.bodies) == 1
    assert "【运行失败】intraday_dispatch" in receiver.bodies[0]["title"]
