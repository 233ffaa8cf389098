"""API tokens: created by `triage token create`, stored only as a SHA-256 hash, revocable.

A token is ``t345_`` + 32 random URL-safe characters. The secret is shown once at creation; the
database keeps its hash and a short prefix to tell tokens apart. Roles:

- ``street``  — one street office: sees and works only its own street's queue (others are 404)
- ``analyst`` — reads every queue, corrects categories (labels for retraining), statistics
- ``admin``   — everything, plus the centre's work: re-dispatch, callback, close
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update

from triage.store import get_engine
from triage.store.models import ApiToken, utcnow


class Role(StrEnum):
    """Who a token speaks for; what each may see and do is triage.policy (and workflow.yaml)."""

    street = "street"
    analyst = "analyst"
    admin = "admin"


ROLES = tuple(r.value for r in Role)
TOKEN_PREFIX = "t345_"


class TokenError(ValueError):
    """A token request that cannot be honoured (unknown role, street missing, …)."""


@dataclass(frozen=True)
class Principal:
    token_id: int
    name: str
    role: Role
    street_code: str | None

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"  # StrEnum: "street:name"


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(name: str, role: str, street_code: str | None = None) -> tuple[str, dict[str, Any]]:
    """(secret, record). A street token must name its street; other roles must not."""
    if role not in ROLES:
        raise TokenError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == Role.street and not street_code:
        raise TokenError("a street token needs --street CODE|NAME")
    if role != Role.street and street_code:
        raise TokenError(f"a {role} token is not tied to a street; drop --street")
    name = (name or "").strip() or f"{role}-{street_code or 'all'}"
    secret = TOKEN_PREFIX + secrets.token_urlsafe(24)
    row = {
        "name": name[:128],
        "role": role,
        "street_code": street_code,
        "token_hash": hash_token(secret),
        "prefix": secret[:10],
        "created_at": utcnow(),
    }
    with get_engine().begin() as conn:
        row["id"] = conn.execute(ApiToken.__table__.insert().returning(ApiToken.id), row).scalar_one()
    _CACHE.clear()
    return secret, {k: v for k, v in row.items() if k != "token_hash"}


def list_tokens() -> list[dict[str, Any]]:
    cols = [c for c in ApiToken.__table__.c if c.name != "token_hash"]
    with get_engine().connect() as conn:
        return [dict(r) for r in conn.execute(select(*cols).order_by(ApiToken.id)).mappings()]


def revoke_token(token_id_or_prefix: str) -> int:
    """Revoke by numeric id or by the shown prefix; returns how many tokens were revoked."""
    t = ApiToken.__table__
    cond = (
        t.c.id == int(token_id_or_prefix)
        if token_id_or_prefix.isdigit()
        else t.c.prefix == token_id_or_prefix
    )
    with get_engine().begin() as conn:
        n = conn.execute(update(t).where(cond, t.c.revoked_at.is_(None)).values(revoked_at=utcnow())).rowcount
    _CACHE.clear()
    return n


# Looking a token up costs a query per request; a short in-process cache keeps the hot path cheap.
# A revoked token stops working within TRIAGE_API_TOKEN_CACHE_SECONDS (default 5) in other processes.
_CACHE: dict[str, tuple[float, Principal | None]] = {}
_LOCK = threading.Lock()


def _cache_seconds() -> float:
    from triage.config import get_settings

    return get_settings().api_token_cache_seconds


def authenticate(secret: str | None) -> Principal | None:
    """The principal for a presented token, or None if unknown or revoked."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    h = hash_token(secret)
    ttl = _cache_seconds()
    now = time.monotonic()
    hit = _CACHE.get(h)
    if hit and now - hit[0] < ttl:
        return hit[1]
    t = ApiToken.__table__
    with get_engine().connect() as conn:
        row = conn.execute(
            select(t.c.id, t.c.name, t.c.role, t.c.street_code, t.c.revoked_at).where(t.c.token_hash == h)
        ).first()
    p = None
    if row is not None and row.revoked_at is None:
        p = Principal(row.id, row.name, Role(row.role), row.street_code)
    with _LOCK:
        if len(_CACHE) > 10_000:
            _CACHE.clear()
        _CACHE[h] = (now, p)
    return p
