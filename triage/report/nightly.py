"""The night's operations summary: what came in, what was quarantined, how tickets were
classified and where they were routed (per street and category)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from triage.classify.registry import champion_version
from triage.config import get_settings
from triage.geo import get_gazetteer
from triage.report.render import render_to_file
from triage.store import IngestFile, Prediction, Quarantine, QueueItem, Ticket, get_engine
from triage.taxonomy import load_taxonomy
from triage.text import mask_text


def nightly_context(night: dt.date) -> dict[str, Any]:
    engine = get_engine()
    tax = load_taxonomy()
    gaz = get_gazetteer()
    with engine.connect() as conn:
        files = (
            conn.execute(
                select(IngestFile.__table__)
                .where(IngestFile.night == night, IngestFile.status != "superseded")  # as night_status
                .order_by(IngestFile.id)
            )
            .mappings()
            .all()
        )
        q_reasons = conn.execute(
            select(Quarantine.reason_code, func.count())
            .where(Quarantine.night == night)
            .group_by(Quarantine.reason_code)
        ).all()
        q_examples = conn.execute(
            select(
                Quarantine.source,
                Quarantine.row_number,
                Quarantine.field,
                Quarantine.reason_code,
                Quarantine.reason,
            )
            .where(Quarantine.night == night)
            .order_by(Quarantine.source, Quarantine.row_number)
            .limit(50)
        ).all()
        # counted in the database: one row per combination, not one per ticket (a million a night)
        keys = (
            Prediction.category, Prediction.needs_review, Prediction.model_version, QueueItem.queue,
            QueueItem.street_code, QueueItem.district_code, QueueItem.sla_tier, QueueItem.centre_reason,
        )  # fmt: skip
        rows = conn.execute(
            select(*keys, func.count().label("n"))
            .select_from(Ticket)
            .outerjoin(Prediction, Prediction.ticket_id == Ticket.ticket_id)
            .outerjoin(QueueItem, (QueueItem.ticket_id == Ticket.ticket_id) & (QueueItem.kind == "ticket"))
            .where(Ticket.night == night)
            .group_by(*keys)
        ).all()

    by_cat: dict[str, Counter] = defaultdict(Counter)
    by_street: dict[str, Counter] = defaultdict(Counter)
    by_district: Counter = Counter()
    tiers: Counter = Counter()
    centre_reasons: Counter = Counter()
    models: Counter = Counter()
    unclassified = unrouted = 0
    for r in rows:
        if r.category is None:
            unclassified += r.n
            continue
        models[r.model_version] += r.n
        c = by_cat[r.category]
        c["total"] += r.n
        c["review"] += r.n if r.needs_review else 0
        if r.queue is None:
            unrouted += r.n
            continue
        c[r.queue] += r.n
        tiers[r.sla_tier] += r.n
        if r.district_code:
            by_district[r.district_code] += r.n
        if r.queue == "street":
            by_street[r.street_code][r.category] += r.n
        else:
            for part in (r.centre_reason or "").split("; "):
                centre_reasons[mask_text(part.split(" (")[0])] += r.n  # a return reason is staff's text

    n = sum(r.n for r in rows)
    categories = [
        {
            "code": code,
            "name": tax.categories[code].name,
            "total": by_cat[code]["total"],
            "share": by_cat[code]["total"] / n if n else 0,
            "street": by_cat[code]["street"],
            "centre": by_cat[code]["centre"],
            "review": by_cat[code]["review"],
        }
        for code in tax.codes
        if by_cat.get(code)
    ]
    categories.sort(key=lambda x: -x["total"])
    top_cats = [c["code"] for c in categories[:8]]
    streets = []
    for code, cnt in sorted(by_street.items(), key=lambda kv: -sum(kv[1].values())):
        u = gaz.unit(code)
        d = gaz.unit(u.district_code) if u else None
        streets.append(
            {
                "code": code,
                "name": u.name if u else code,
                "district": d.name if d else "",
                "total": sum(cnt.values()),
                "cells": [cnt.get(c, 0) for c in top_cats],
                "top": tax.categories[cnt.most_common(1)[0][0]].name,
            }
        )
    districts = [
        {"code": c, "name": (gaz.unit(c).name if gaz.unit(c) else c), "total": v}
        for c, v in by_district.most_common()
    ]
    routed = sum(r.n for r in rows if r.queue)
    return {
        "night": night.isoformat(),
        "generated_at": dt.datetime.now(get_settings().tz).strftime("%Y-%m-%d %H:%M:%S"),
        "taxonomy_version": tax.version,
        "champion": champion_version(),
        "models": dict(models),
        "files": files,
        "totals": {
            "files": len(files),
            "rows_read": sum(f["rows_read"] for f in files),
            "tickets": n,
            "quarantined": sum(v for _, v in q_reasons),
            "classified": n - unclassified,
            "needs_review": sum(c["review"] for c in categories),
            "to_street": sum(r.n for r in rows if r.queue == "street"),
            "to_centre": sum(r.n for r in rows if r.queue == "centre"),
            "unrouted": unrouted + unclassified,
            "routed": routed,
            "streets": len(by_street),
        },
        "quarantine_reasons": sorted(q_reasons, key=lambda x: -x[1]),
        # reasons quote the rejected value; rows stored before ingest masked them are masked here
        "quarantine_examples": [{**r._mapping, "reason": mask_text(r.reason)} for r in q_examples],
        "categories": categories,
        "top_cats": [{"code": c, "name": tax.categories[c].name} for c in top_cats],
        "streets": streets[:40],
        "more_streets": max(0, len(streets) - 40),
        "districts": districts,
        "tiers": [{"code": t, "name": tax.tiers[t].name, "count": tiers.get(t, 0)} for t in tax.tiers],
        "centre_reasons": centre_reasons.most_common(),
    }


def write_nightly_report(night: dt.date, out: Path | str | None = None) -> Path:
    from triage.report.analysts import nightly_analyst_context

    path = Path(out) if out else get_settings().reports_dir / f"nightly-{night.isoformat()}.html"
    from triage.review import model_loop

    return render_to_file(
        "nightly.html.j2", path, **nightly_context(night), **nightly_analyst_context(night),
        model_loop=model_loop(night),
    )  # fmt: skip
