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
from triage.report.tables import Col, Table, build
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
    categories.sort(key=lambda x: (-x["total"], x["code"]))
    top_cats = [c["code"] for c in categories[:8]]
    streets = []
    for code, cnt in sorted(by_street.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
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
    tiers_list = [{"code": t, "name": tax.tiers[t].name, "count": tiers.get(t, 0)} for t in tax.tiers]
    q_examples = [{**r._mapping, "reason": mask_text(r.reason)} for r in q_examples]
    tables = build(
        [
            Table("files", "文件台账 Files", [Col("文件 file", "code"), Col("格式 format"), Col("编码 encoding"),
                  Col("状态 status"), Col("读取 read", "num"), Col("新增 new", "num"), Col("未变 unchanged", "num"),
                  Col("隔离 quarantined", "num"), Col("说明 message")],
                  [[f["source"], f["file_format"], f["encoding"] or "", f["status"], f["rows_read"], f["rows_new"],
                    f["rows_unchanged"], f["rows_quarantined"], f["message"] or ""] for f in files],
                  empty="本夜无文件 no files this night"),
            Table("quarantine-reasons", "隔离原因 Quarantine reasons", [Col("原因 reason", "code"), Col("行数 rows", "num")],
                  [[c, n_] for c, n_ in sorted(q_reasons, key=lambda x: (-x[1], x[0]))], empty="无隔离行 nothing quarantined"),
            Table("quarantine-examples", "隔离示例 Quarantined rows (前 50 条 first 50)",
                  [Col("文件 file", "code"), Col("行 row", "num"), Col("字段 field"), Col("原因 reason", "code"),
                   Col("说明 message")],
                  [[q["source"], q["row_number"], q["field"] or "", q["reason_code"], q["reason"]] for q in q_examples],
                  empty="无隔离行 nothing quarantined"),
            Table("categories", "按类别 By category", [Col("类别 category"), Col("code", "code"), Col("工单 tickets", "num"),
                  Col("占比 share %", "pct"), Col("", "bar"), Col("直派 to street", "num"), Col("转中心 to centre", "num"),
                  Col("待复核 needs review", "num")],
                  [[c["name"], c["code"], c["total"], c["share"], c["share"], c["street"], c["centre"], c["review"]]
                   for c in categories]),
            Table("tiers", "时限档位 SLA tiers", [Col("档位 tier"), Col("code", "code"), Col("工单 tickets", "num")],
                  [[t["name"], t["code"], t["count"]] for t in tiers_list]),
            Table("centre-reasons", "中心人工派单原因 Why tickets went to the centre",
                  [Col("原因 reason"), Col("工单 tickets", "num")],
                  [[r_, n_] for r_, n_ in sorted(centre_reasons.items(), key=lambda kv: (-kv[1], kv[0]))]),
            Table("districts", "按区 By district", [Col("区 district"), Col("code", "code"), Col("工单 tickets", "num")],
                  [[d["name"], d["code"], d["total"]] for d in districts]),
            Table("streets", "街乡镇 × 类别 Streets × categories",
                  [Col("街乡镇 street"), Col("code", "code"), Col("区 district"), Col("合计 total", "num"),
                   *[Col(tax.categories[c].name, "num") for c in top_cats], Col("最多类别 top category")],
                  [[x["name"], x["code"], x["district"], x["total"], *x["cells"], x["top"]] for x in streets],
                  note=f"列出工单最多的 {len(top_cats)} 个类别 the {len(top_cats)} largest categories as columns"),
        ],
        night,
        f"nightly-{night.isoformat()}",
    )  # fmt: skip
    return {
        "night": night.isoformat(),
        "tables": tables,
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
        "quarantine_examples": q_examples,
        "categories": categories,
        "top_cats": [{"code": c, "name": tax.categories[c].name} for c in top_cats],
        "streets": streets[:40],
        "more_streets": max(0, len(streets) - 40),
        "districts": districts,
        "tiers": tiers_list,
        "centre_reasons": centre_reasons.most_common(),
    }


def hotspot_tables(hot: dict[str, Any], night: dt.date) -> dict[str, Table]:
    """The hotspot section's long tables (surges, proactive tasks) as folded, downloadable tables."""
    from triage.exports import status_zh

    return build(
        [
            Table("surges", "当夜激增 Surges", [Col("层级 level"), Col("单位 unit"), Col("code", "code"), Col("区 district"),
                  Col("类别 category"), Col("当日 observed", "num"), Col("预期 expected"), Col("p"), Col("q (BH)"),
                  Col("方法 method", "code")],
                  [[x["level"], x["unit"], x["code"], x["district"], x["category"], x["observed"], f"{x['expected']:.1f}",
                    f"{x['p']:.1e}", f"{x['q']:.1e}", x["method"]] for x in hot["surges"]],
                  empty="无显著激增 no significant surge", row_class="surge"),
            Table("tasks", "主动治理任务 Proactive tasks (本夜新建或更新 new or updated tonight)",
                  [Col("# id", "num"), Col("街乡镇 street"), Col("类别 category"), Col("任务 task"), Col("来源 source"),
                   Col("状态 status"), Col("新/更新 new or updated")],
                  [[t["id"], t["street"], t["category"], t["title"], t["type"], status_zh(t["status"]),
                    "新建" if t["new"] else f"更新 v{t['version']}"] for t in hot["tasks"]]),
        ],
        night,
        f"nightly-{night.isoformat()}",
    )  # fmt: skip


def write_nightly_report(night: dt.date, out: Path | str | None = None) -> Path:
    from triage.report.analysts import nightly_analyst_context

    path = Path(out) if out else get_settings().reports_dir / f"nightly-{night.isoformat()}.html"
    ctx = nightly_context(night)
    analysts = nightly_analyst_context(night)
    ctx["tables"].update(hotspot_tables(analysts["hot"], night))
    from triage.review import model_loop

    return render_to_file("nightly.html.j2", path, **ctx, **analysts, model_loop=model_loop(night))
