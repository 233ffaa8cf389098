"""Routing: each classified ticket becomes exactly one queue item — in its street office's queue
with a lead unit, assisting departments, an SLA tier and a deadline, or in the 12345 centre's
manual-dispatch queue with the reason it could not be dispatched automatically.

The decisions are data: ``taxonomy/categories.yaml`` (lead, departments, default tier),
``taxonomy/routing.yaml`` (overrides by category and district, keyword escalations) and the
gazetteer (address → street). Nothing is ever dropped: no street or an uncertain category sends
the ticket to the centre.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select, text

from triage.config import get_settings
from triage.geo import Resolution, get_resolver
from triage.store import Prediction, QueueItem, Ticket, get_engine, insert_ignore
from triage.store.models import utcnow
from triage.taxonomy import Taxonomy, TaxonomyError, load_taxonomy, read_yaml_text
from triage.workflow import load_workflow

TIER_PRIORITY = {"emergency": 1, "urgent": 2, "general": 3, "complex": 4}


def first_status(queue: str) -> str:
    """A new item's status: the first status of workflow.yaml that sits in that queue
    (派单 dispatched for a street, 待派单 pending_dispatch for the centre)."""
    return next(c for c, s in load_workflow().statuses.items() if s.queue == queue)


@dataclass(frozen=True)
class Escalation:
    tier: str
    reason: str
    keywords: tuple[str, ...]
    months: tuple[int, ...] = ()


@dataclass(frozen=True)
class RoutingTable:
    overrides: tuple[dict[str, Any], ...]
    escalations: tuple[Escalation, ...]

    def lead_and_departments(
        self, tax: Taxonomy, category: str, district: str | None
    ) -> tuple[str, list[str]]:
        best = None
        for rule in self.overrides:
            if rule["category"] != category:
                continue
            if rule.get("districts"):
                if district in rule["districts"]:
                    best = rule
                    break
            elif best is None:
                best = rule
        if best:
            return best.get("lead", "street_office"), list(best.get("departments", []))
        c = tax.category(category)
        return c.lead, list(c.departments)

    def tier_for(self, tax: Taxonomy, category: str, text: str, when: dt.datetime) -> tuple[str, str | None]:
        tier, reason = tax.category(category).sla_tier, None
        month = when.astimezone(get_settings().tz).month
        for esc in self.escalations:
            if esc.months and month not in esc.months:
                continue
            if TIER_PRIORITY[esc.tier] < TIER_PRIORITY[tier] and any(k in text for k in esc.keywords):
                tier, reason = esc.tier, esc.reason
        return tier, reason


@lru_cache(maxsize=2)
def load_routing(path: Path | None = None) -> RoutingTable:
    p = path or get_settings().taxonomy_dir / "routing.yaml"
    tax = load_taxonomy()
    try:
        data = read_yaml_text(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TaxonomyError(p, f"cannot read routing table: {exc}") from None
    overrides = []
    for i, rule in enumerate(data.get("overrides") or [], start=1):
        entry = f"overrides #{i}"
        if rule.get("category") not in tax.categories:
            raise TaxonomyError(
                p, f"unknown category {rule.get('category')!r}", entry=entry, field="category"
            )
        for dep in [rule.get("lead", "street_office"), *rule.get("departments", [])]:
            if dep not in tax.departments:
                raise TaxonomyError(p, f"unknown department {dep!r}", entry=entry, field="departments")
        overrides.append(rule)
    escalations = []
    for i, rule in enumerate(data.get("escalations") or [], start=1):
        if rule.get("tier") not in tax.tiers:
            raise TaxonomyError(
                p, f"unknown tier {rule.get('tier')!r}", entry=f"escalations #{i}", field="tier"
            )
        escalations.append(
            Escalation(
                rule["tier"],
                rule.get("reason", ""),
                tuple(rule.get("keywords") or ()),
                tuple(rule.get("months") or ()),
            )
        )
    return RoutingTable(tuple(overrides), tuple(escalations))


def plan_item(
    ticket: dict[str, Any],
    prediction: dict[str, Any],
    resolution: Resolution,
    tax: Taxonomy,
    table: RoutingTable,
) -> dict[str, Any]:
    """The queue item for one ticket (pure function: easy to test, same answer every run)."""
    category = prediction["category"]
    body = f"{ticket.get('title') or ''} {ticket['text']}"
    tier, tier_reason = table.tier_for(tax, category, body, ticket["received_at"])
    lead, departments = table.lead_and_departments(tax, category, resolution.district_code)
    reasons = []
    if prediction["needs_review"]:
        top = ", ".join(f"{c} {p:.2f}" for c, p in prediction["top3"])
        reasons.append(f"分类置信度低 low confidence ({top})")
    if not resolution.street_code:
        reasons.append("地址未能定位到街乡镇 location not resolved to a street" + (
            f" (district {resolution.district_code})" if resolution.district_code else ""))  # fmt: skip
    to_centre = bool(reasons)
    hours = tax.tiers[tier].hours
    return {
        "kind": "ticket",
        "ticket_id": ticket["ticket_id"],
        "queue": "centre" if to_centre else "street",
        "street_code": None if to_centre else resolution.street_code,
        "located_street_code": resolution.street_code,
        "district_code": resolution.district_code,
        "community_code": resolution.community_code,
        "category": category,
        "lead_unit": lead,
        "departments": departments,
        "sla_tier": tier,
        "priority": TIER_PRIORITY[tier],
        "due_at": ticket["received_at"] + dt.timedelta(hours=hours),
        "status": first_status("centre" if to_centre else "street"),
        "route_method": resolution.method,
        "route_confidence": resolution.confidence,
        "centre_reason": "; ".join(reasons) if to_centre else tier_reason,
        "return_count": 0,
        "escalated": False,
        "version": 1,
    }


def route_pending(batch_rows: int = 20_000, shard: int = 0, n_shards: int = 1) -> dict[str, Any]:
    """Create queue items for every classified ticket that has none yet (idempotent). With
    ``n_shards`` > 1 only tickets with ``shard % n_shards == shard`` are taken, so parallel workers
    never route the same ticket."""
    tax, table, resolver = load_taxonomy(), load_routing(), get_resolver()
    engine = get_engine()
    t0 = time.perf_counter()
    to_street = to_centre = 0
    last_id = ""
    while True:
        q = (
            select(Ticket.ticket_id, Ticket.received_at, Ticket.title, Ticket.text, Ticket.address,
                   Ticket.district, Ticket.street, Ticket.community,
                   Prediction.category, Prediction.needs_review, Prediction.top3)
            .join(Prediction, Prediction.ticket_id == Ticket.ticket_id)
            .outerjoin(QueueItem, (QueueItem.ticket_id == Ticket.ticket_id) & (QueueItem.kind == "ticket"))
            .where(QueueItem.id.is_(None), Ticket.ticket_id > last_id)
            .order_by(Ticket.ticket_id)
            .limit(batch_rows)
        )  # fmt: skip
        if n_shards > 1:
            q = q.where(Ticket.shard % n_shards == shard)
        with engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        if not rows:
            break
        last_id = rows[-1]["ticket_id"]
        now = utcnow()
        items = []
        for r in rows:
            res = resolver.resolve(r["address"], r["text"], r["district"], r["street"], r["community"])
            item = plan_item(dict(r), dict(r), res, tax, table)
            item["created_at"] = item["updated_at"] = now
            items.append(item)
        with engine.begin() as conn:
            insert_ignore(conn, QueueItem.__table__, items, ["kind", "ticket_id"])
            # the dispatch itself is the first audit event of every item created in this batch
            conn.execute(
                text(
                    "INSERT INTO queue_events (item_id, at, actor, action, from_status, to_status, to_street, note) "
                    "SELECT id, created_at, 'system:router', 'route', NULL, status, street_code, "
                    "COALESCE(centre_reason, route_method) FROM queue_items "
                    # updated_at is indexed and equals created_at until the item is first changed
                    # (not before this transaction commits): no scan of the whole queue per batch
                    "WHERE updated_at = :now AND created_at = :now AND kind = 'ticket' AND NOT EXISTS "
                    "(SELECT 1 FROM queue_events e WHERE e.item_id = queue_items.id)"
                ),
                {"now": QueueItem.__table__.c.created_at.type.process_bind_param(now, conn.dialect)},
            )
        for it in items:
            if it["queue"] == "street":
                to_street += 1
            else:
                to_centre += 1
    return {"to_street": to_street, "to_centre": to_centre, "seconds": round(time.perf_counter() - t0, 2)}


CLIENT_AGREEMENT_SHARE = 0.5  # docs/api.md, "A client's service_code as evidence"


def client_code_agrees(client_code: str | None, label: str, confidence: float, threshold: float) -> bool:
    """A client's own category (Open311 ``service_code``) is a second, independent opinion: when
    the model's first choice is that same category, it is dispatched with at least half the
    confidence the model alone needs. Disagreement, or a near coin-flip, still goes to the centre."""
    return client_code == label and confidence >= CLIENT_AGREEMENT_SHARE * threshold


def intake_one(
    description: str,
    *,
    address: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    channel: str = "open311",
    source_category: str | None = None,
    ticket_id: str | None = None,
) -> dict[str, Any]:
    """Store one ticket received online and classify and route it at once (Open311 POST).

    Same rules as the night: text normalised and PII-masked before storage, the champion model's
    category (below its threshold → centre), the routing table, one queue item + its audit event."""
    import hashlib
    import uuid
    import zlib

    import numpy as np

    from triage.classify.registry import load_champion
    from triage.classify.train import predict_frame
    from triage.ingest.schema import SHARDS
    from triage.store import QueueEvent
    from triage.text import clean_text

    settings = get_settings()
    now = utcnow()
    tid = ticket_id or f"O311-{now.astimezone(settings.tz):%Y%m%d}-{uuid.uuid4().hex[:10]}"
    text_ = clean_text(description)
    addr = clean_text(address) if address else None
    local = now.astimezone(settings.tz).date()
    ticket = {
        "ticket_id": tid, "received_at": now, "received_date": local, "night": local, "title": None,
        "text": text_, "address": addr, "channel": channel, "lat": lat, "lon": lon,
        "source_category": source_category, "ingested_at": now,
        "content_hash": hashlib.sha1(f"{text_}|{addr}|{lat}|{lon}".encode()).hexdigest(),
        "shard": zlib.crc32(tid.encode()) % SHARDS,
    }  # fmt: skip
    model = load_champion()
    pred = predict_frame(model.estimator, np.array([["", text_]], dtype=object), model.threshold).iloc[0]
    needs_review = bool(pred["needs_review"]) and not client_code_agrees(
        source_category, pred["label"], float(pred["confidence"]), model.threshold
    )
    prediction = {
        "ticket_id": tid, "category": pred["label"], "confidence": float(pred["confidence"]),
        "top3": [[c, float(p)] for c, p in pred["top3"]], "needs_review": needs_review,
        "model_version": model.version, "predicted_at": now,
    }  # fmt: skip
    res = get_resolver().resolve(addr, text_)
    item = plan_item(ticket, prediction, res, load_taxonomy(), load_routing())
    item["created_at"] = item["updated_at"] = now
    with get_engine().begin() as conn:
        conn.execute(Ticket.__table__.insert(), ticket)
        conn.execute(Prediction.__table__.insert(), prediction)
        item_id = conn.execute(QueueItem.__table__.insert().returning(QueueItem.id), item).scalar_one()
        conn.execute(
            QueueEvent.__table__.insert(),
            {"item_id": item_id, "at": now, "actor": "system:router", "action": "route", "from_status": None,
             "to_status": item["status"], "to_street": item["street_code"],
             "note": item["centre_reason"] or item["route_method"]},
        )  # fmt: skip
    item["id"] = item_id
    return item
