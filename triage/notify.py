"""Alerts for people: an emergency ticket dispatched to a street, an item past its deadline, a new
proactive task, a nightly or intra-day run that failed or ran late.

Rules (also in docs/deploy.md, "Alerts"):

- Channels are configuration (:class:`triage.config.Settings`, ``TRIAGE_NOTIFY_*``): a webhook (a JSON
  POST; ``dingtalk``/``wecom`` give the robots' text-message body) and SMTP e-mail. Both optional,
  none by default: with no channel nothing is recorded or sent.
- Every alert is written once to ``notifications`` under a unique key (``emergency:<item>:<street>``,
  ``overdue:<item>:<street|centre>``, ``proactive:<item>``, ``run_failed:<dag>:<run>``,
  ``run_late:<dag>:<run>``), so re-running a night or a dispatch never alerts twice.
- Delivery is one short attempt per channel (``notify_timeout_s``); a channel that fails is not
  tried again in the same pass, and the alert is retried by a later pass after ``notify_backoff_s``
  doubling per attempt, up to ``notify_max_attempts`` (then ``failed``, with the last error).
- Nothing here ever raises into the pipeline: a failure is one log line.
- Subjects and bodies go through :func:`triage.text.mask_text` before they are stored or sent.
- Only recent things alert (``notify_lookback_hours``): loading months of history does not flood
  the street offices.

This module is imported by the DAG files (callbacks): it imports nothing heavy at module level.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any, TypeVar

from triage.config import Settings, get_settings

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
EXCERPT = 120


def _never_raise(fn: F) -> F:
    """Alerts must not fail or stop the pipeline: any error becomes one warning line."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the pipeline goes on
            log.warning(
                "notify: %s failed (%s: %s); the pipeline goes on", fn.__name__, type(exc).__name__, exc
            )
            return {"error": f"{type(exc).__name__}: {exc}"}

    return wrapper  # type: ignore[return-value]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _local(t: dt.datetime | None, s: Settings) -> str:
    return t.astimezone(s.tz).strftime("%m-%d %H:%M") if t else "—"


def _excerpt(text: str | None) -> str:
    t = " ".join((text or "").split())
    return t[:EXCERPT] + ("…" if len(t) > EXCERPT else "")


# --- recording ---------------------------------------------------------------------------------
def enqueue(kind: str, key: str, subject: str, body: str, street_code: str | None = None) -> bool:
    """Record one alert under its key (masked); False if alerts are off or the key was recorded before."""
    from triage.store import Notification, get_engine, insert_ignore
    from triage.text import mask_text

    s = get_settings()
    if not s.notify_channels:
        return False
    now = _now()
    row = {
        "key": key[:160], "kind": kind, "street_code": street_code, "subject": mask_text(subject),
        "body": mask_text(body), "status": "pending", "delivered": [], "attempts": 0,
        "next_attempt_at": now, "created_at": now,
    }  # fmt: skip
    with get_engine(s).begin() as conn:
        return insert_ignore(conn, Notification.__table__, [row], ["key"]) == 1


# --- delivery ----------------------------------------------------------------------------------
def webhook_body(fmt: str, kind: str, subject: str, body: str) -> dict[str, Any]:
    """The JSON posted: our own shape, or a DingTalk / WeCom robot text message (the same shape)."""
    if fmt in ("dingtalk", "wecom"):
        return {"msgtype": "text", "text": {"content": f"{subject}\n{body}"}}
    return {"event": kind, "title": subject, "text": body}


def send_webhook(s: Settings, kind: str, subject: str, body: str) -> None:
    import httpx

    r = httpx.post(
        s.notify_webhook_url or "", json=webhook_body(s.notify_webhook_format, kind, subject, body),
        timeout=s.notify_timeout_s,
    )  # fmt: skip
    r.raise_for_status()
    if s.notify_webhook_format in ("dingtalk", "wecom"):  # the robots answer 200 with an error code
        try:
            code = r.json().get("errcode", 0)
        except ValueError:
            code = 0
        if code:
            raise RuntimeError(f"robot answered errcode {code}: {r.text[:200]}")


def send_email(s: Settings, subject: str, body: str) -> None:
    msg = EmailMessage()
    msg["Subject"], msg["From"] = subject, s.notify_email_from
    msg["To"] = ", ".join(a.strip() for a in s.notify_email_to.split(",") if a.strip())
    msg.set_content(body)
    where = f"{s.notify_smtp_host}:{s.notify_smtp_port}"
    with smtplib.SMTP(s.notify_smtp_host or "", s.notify_smtp_port, timeout=s.notify_timeout_s) as smtp:
        if s.notify_smtp_starttls:
            smtp.starttls()
        if s.notify_smtp_user:
            try:
                smtp.login(s.notify_smtp_user, s.notify_smtp_password or "")
            except smtplib.SMTPAuthenticationError as exc:
                detail = (
                    exc.smtp_error.decode(errors="replace")
                    if isinstance(exc.smtp_error, bytes)
                    else exc.smtp_error
                )
                raise RuntimeError(
                    f"SMTP server {where} refused the login of {s.notify_smtp_user!r} ({exc.smtp_code} {detail}); "
                    "check TRIAGE_NOTIFY_SMTP_USER / TRIAGE_NOTIFY_SMTP_PASSWORD"
                ) from None
        smtp.send_message(msg)


@_never_raise
def deliver_pending(settings: Settings | None = None) -> dict[str, Any]:
    """Send the alerts that are due, oldest first, at most ``notify_max_per_run``."""
    from sqlalchemy import select, update

    from triage.store import Notification, get_engine

    s = settings or get_settings()
    channels = s.notify_channels
    out = {"sent": 0, "retry": 0, "failed": 0}
    if not channels:
        return out
    now = _now()
    engine = get_engine(s)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Notification.id, Notification.kind, Notification.subject, Notification.body,
                   Notification.delivered, Notification.attempts)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .order_by(Notification.id).limit(s.notify_max_per_run)
        ).all()  # fmt: skip
    down: dict[str, str] = {}  # channel → its error in this pass: not tried again until the next
    for row in rows:
        delivered, errors = list(row.delivered or []), []
        tried = False
        for ch in channels:
            if ch in delivered:
                continue
            if ch in down:
                errors.append(f"{ch}: {down[ch]}")
                continue
            tried = True
            try:
                if ch == "webhook":
                    send_webhook(s, row.kind, row.subject, row.body)
                else:
                    send_email(s, row.subject, row.body)
                delivered.append(ch)
            except Exception as exc:  # noqa: BLE001 - a receiver's failure is the alert's, not the run's
                down[ch] = f"{type(exc).__name__}: {str(exc)[:300]}"
                errors.append(f"{ch}: {down[ch]}")
                log.warning(
                    "notify: %s delivery of alert #%s failed: %s (retried later)", ch, row.id, down[ch]
                )
        values: dict[str, Any] = {"delivered": delivered}
        if len(delivered) == len(channels):
            values.update(status="sent", sent_at=_now(), last_error=None)
            out["sent"] += 1
        else:
            attempts = row.attempts + (1 if tried else 0)
            values.update(attempts=attempts, last_error="; ".join(errors))
            if attempts >= s.notify_max_attempts:
                values["status"] = "failed"
                out["failed"] += 1
                log.warning("notify: alert #%s given up after %d attempts: %s", row.id, attempts, errors)
            else:
                values["next_attempt_at"] = now + dt.timedelta(
                    seconds=s.notify_backoff_s * 2 ** max(attempts - 1, 0)
                )
                out["retry"] += 1
        with engine.begin() as conn:
            conn.execute(update(Notification).where(Notification.id == row.id).values(**values))
    return out


# --- the events ----------------------------------------------------------------------------------
def _names() -> tuple[Callable[[str | None], str], Callable[[str | None], str]]:
    from triage.geo import get_gazetteer
    from triage.taxonomy import load_taxonomy

    gaz, tax = get_gazetteer(), load_taxonomy()

    def unit(code: str | None) -> str:
        u = gaz.unit(code) if code else None
        return f"{u.name}({code})" if u else (code or "12345 中心 centre")

    def cat(code: str | None) -> str:
        return tax.categories[code].name if code in tax.categories else (code or "—")

    return unit, cat


@_never_raise
def emergencies_dispatched(since: dt.datetime) -> dict[str, Any]:
    """An alert for each emergency ticket put into a street's queue since ``since`` (recent ones)."""
    from sqlalchemy import select

    from triage.store import QueueItem, Ticket, get_engine

    s = get_settings()
    if not s.notify_channels:
        return {"emergency": 0}
    recent = _now() - dt.timedelta(hours=s.notify_lookback_hours)
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(QueueItem.id, QueueItem.street_code, QueueItem.category, QueueItem.due_at,
                   QueueItem.dispatched_at, Ticket.ticket_id, Ticket.received_at, Ticket.title, Ticket.text,
                   Ticket.address)
            .join(Ticket, Ticket.ticket_id == QueueItem.ticket_id)
            .where(QueueItem.kind == "ticket", QueueItem.queue == "street", QueueItem.sla_tier == "emergency",
                   QueueItem.dispatched_at >= since, Ticket.received_at >= recent)
            .order_by(QueueItem.id)
        ).all()  # fmt: skip
    if not rows:
        return {"emergency": 0}
    unit, cat = _names()
    n = 0
    for r in rows:
        subject = f"【紧急】{unit(r.street_code)} 新派紧急工单 {r.ticket_id}"
        body = (
            f"工单 ticket {r.ticket_id} · {cat(r.category)} · 派至 {unit(r.street_code)}\n"
            f"受理 received {_local(r.received_at, s)} · 派单 dispatched {_local(r.dispatched_at, s)} · "
            f"时限 due {_local(r.due_at, s)}\n地址 {r.address or '—'}\n{_excerpt(r.title or r.text)}"
        )
        n += enqueue("emergency", f"emergency:{r.id}:{r.street_code}", subject, body, r.street_code)
    return {"emergency": n}


@_never_raise
def overdue_items(now: dt.datetime | None = None) -> dict[str, Any]:
    """An alert for each open ticket whose deadline passed within the look-back window: a street's
    item by the street's clock (dispatch + tier hours), a centre item by the citizen's (``due_at``)."""
    s = get_settings()
    if not s.notify_channels:
        return {"overdue": 0}
    from sqlalchemy import select

    from triage.hotspots.governance import street_deadline
    from triage.store import QueueItem, Ticket, get_engine
    from triage.taxonomy import load_taxonomy
    from triage.workflow import load_workflow

    now = now or _now()
    tax = load_taxonomy()
    recent = now - dt.timedelta(hours=s.notify_lookback_hours)
    longest = dt.timedelta(hours=max(t.hours for t in tax.tiers.values()))
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(QueueItem.id, QueueItem.queue, QueueItem.street_code, QueueItem.category, QueueItem.sla_tier,
                   QueueItem.due_at, QueueItem.dispatched_at, QueueItem.status, Ticket.ticket_id, Ticket.title,
                   Ticket.text)
            .join(Ticket, Ticket.ticket_id == QueueItem.ticket_id)
            .where(QueueItem.kind == "ticket", QueueItem.status.in_(load_workflow().open_statuses),
                   QueueItem.due_at <= now,
                   QueueItem.due_at >= recent - longest)
            .order_by(QueueItem.due_at)
        ).all()  # fmt: skip
    unit, cat = None, None
    n = 0
    for r in rows:
        deadline = (
            street_deadline(r.due_at, r.dispatched_at, tax.tiers[r.sla_tier].hours)
            if r.queue == "street"
            else r.due_at
        )
        if not (recent <= deadline <= now):
            continue
        if unit is None:
            unit, cat = _names()
        where = r.street_code if r.queue == "street" else "centre"
        subject = f"【超期】{unit(r.street_code)} 工单 {r.ticket_id} 已超过办理时限"
        body = (
            f"工单 ticket {r.ticket_id} · {cat(r.category)} · {r.sla_tier} · 状态 {r.status}\n"
            f"时限 due {_local(deadline, s)}（{'街道时钟：派单起算' if r.queue == 'street' else '受理起算'}）\n"
            f"{_excerpt(r.title or r.text)}"
        )
        n += enqueue("overdue", f"overdue:{r.id}:{where}", subject, body, r.street_code)
    return {"overdue": n}


@_never_raise
def proactive_created(since: dt.datetime) -> dict[str, Any]:
    """An alert for each proactive task created since ``since``."""
    from sqlalchemy import select

    from triage.store import QueueItem, get_engine

    if not get_settings().notify_channels:
        return {"proactive": 0}
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(QueueItem.id, QueueItem.street_code, QueueItem.category, QueueItem.title, QueueItem.due_at)
            .where(QueueItem.kind == "proactive", QueueItem.created_at >= since)
            .order_by(QueueItem.id)
        ).all()  # fmt: skip
    if not rows:
        return {"proactive": 0}
    unit, cat = _names()
    n = 0
    for r in rows:
        subject = f"【主动治理】{unit(r.street_code)} 新任务 #{r.id}"
        body = f"{cat(r.category)} · {_excerpt(r.title)}\n时限 due {_local(r.due_at, get_settings())}"
        n += enqueue("proactive", f"proactive:{r.id}", subject, body, r.street_code)
    return {"proactive": n}


def _run_ids(context: dict[str, Any] | None) -> tuple[str, str]:
    ctx = context or {}
    run = ctx.get("dag_run")
    dag = ctx.get("dag")
    dag_id = getattr(run, "dag_id", None) or getattr(dag, "dag_id", None) or ctx.get("dag_id") or "?"
    return str(dag_id), str(getattr(run, "run_id", None) or ctx.get("run_id") or "?")


@_never_raise
def run_failed(context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Airflow ``on_failure_callback`` of the nightly and intra-day DAGs: alert at once."""
    dag_id, run_id = _run_ids(context)
    ctx = context or {}
    why = ctx.get("reason") or ctx.get("exception") or ""
    ti = ctx.get("task_instance") or ctx.get("ti")
    task = f" · 任务 task {ti.task_id}" if getattr(ti, "task_id", None) else ""
    subject = f"【运行失败】{dag_id} 运行失败 run failed"
    body = (
        f"DAG {dag_id} · run {run_id}{task}\n{_excerpt(str(why))}\n请查看 Airflow 日志 (see the Airflow log)."
    )
    return _alert_now("run_failed", f"run_failed:{dag_id}:{run_id}", subject, body)


def dag_alerts(dag_id: str, deadline_minutes: int) -> dict[str, Any]:
    """What a DAG carries to tell people (``@dag(**dag_alerts(...))``): the failure callback and,
    unless ``TRIAGE_DAG_DEADLINES=0``, a deadline alert counted from when the run was queued.
    (``dag.test()`` of Airflow 3.3 cannot finish a run of a DAG with a deadline: the tests and
    ``make demo`` parse with it off.)"""
    from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

    deadline = None
    if get_settings().dag_deadlines:
        deadline = DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=dt.timedelta(minutes=deadline_minutes),
            callback=SyncCallback("triage.notify.run_late", kwargs={"dag_id": dag_id}),
        )
    return {"on_failure_callback": run_failed, "deadline": deadline}


@_never_raise
def run_late(dag_id: str = "", context: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
    """The DAGs' DeadlineAlert callback (airflow.sdk SyncCallback): the run is past its deadline."""
    d, run_id = _run_ids(context)
    dag_id = dag_id or d
    subject = f"【运行超时】{dag_id} 超过时限仍未完成 run past its deadline"
    body = f"DAG {dag_id} · run {run_id} 仍在运行或排队 (still running or queued)."
    return _alert_now("run_late", f"run_late:{dag_id}:{run_id}", subject, body)


def _alert_now(kind: str, key: str, subject: str, body: str) -> dict[str, Any]:
    """Record and deliver at once. If the database itself is what failed (unreachable, not
    migrated), the alert is sent straight to the channels, without the once-only record."""
    try:
        enqueue(kind, key, subject, body)
    except Exception as exc:  # noqa: BLE001 - the run's own failure may be the database
        from triage.text import mask_text

        s = get_settings()
        log.warning("notify: cannot record alert %s (%s); sending it unrecorded", key, type(exc).__name__)
        subject = mask_text(subject)
        body = mask_text(f"{body}\n(数据库不可用 database unavailable: {type(exc).__name__})")
        sent = []
        for ch in s.notify_channels:
            try:
                if ch == "webhook":
                    send_webhook(s, kind, subject, body)
                else:
                    send_email(s, subject, body)
                sent.append(ch)
            except Exception as err:  # noqa: BLE001 - one line, the run goes on
                log.warning("notify: %s delivery of %s failed: %s", ch, key, err)
        return {"sent_unrecorded": sent}
    return deliver_pending()
