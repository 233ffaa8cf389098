"""The analysts' sections of the reports: surges, events (drill-down to masked member tickets),
the space-time scan, proactive tasks, trends (inline SVG), the street × category heat table, the
three-rates scoreboard and the governance lists. Nightly edition and monthly edition."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from triage.config import get_settings
from triage.geo import get_gazetteer
from triage.report.render import render_to_file
from triage.store import (
    HotspotEvent,
    HotspotSignal,
    QueueItem,
    ScanCluster,
    Ticket,
    get_engine,
)
from triage.taxonomy import load_taxonomy
from triage.text import mask_pii
from triage.workflow import load_workflow

EXCERPT = 80
PALETTE = ("#c2410c", "#1d4ed8", "#15803d", "#7c3aed", "#b45309", "#0f766e", "#be185d", "#4b5563")


def _names():
    gaz, tax = get_gazetteer(), load_taxonomy()

    def unit(code: str | None) -> str:
        u = gaz.unit(code) if code else None
        return u.name if u else (code or "—")

    def cat(code: str | None) -> str:
        return tax.categories[code].name if code in tax.categories else (code or "未分类")

    return unit, cat


def _excerpt(text: str | None) -> str:
    # stored text is masked at ingest; masking again costs little and guards older rows
    t = mask_pii(text or "")
    return t[:EXCERPT] + ("…" if len(t) > EXCERPT else "")


def line_chart(
    series: dict[str, list[float]], labels: list[str], width: int = 620, height: int = 180
) -> dict:
    """Coordinates for an inline SVG line chart (the template draws it; nothing from tickets here)."""
    top = max((max(v) for v in series.values() if v), default=0) or 1
    n = max(len(labels), 2)
    px = lambda i: 40 + (width - 50) * i / (n - 1)  # noqa: E731
    py = lambda v: height - 20 - (height - 35) * v / top  # noqa: E731
    lines = []
    for k, (name, vals) in enumerate(series.items()):
        pts = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(vals))
        lines.append(
            {"name": name, "points": pts, "color": PALETTE[k % len(PALETTE)], "last": vals[-1] if vals else 0}
        )
    ticks = [
        {"x": round(px(i), 1), "label": labels[i][5:]}
        for i in range(0, len(labels), max(1, len(labels) // 6))
    ]
    return {"width": width, "height": height, "lines": lines, "top": top, "ticks": ticks, "y0": height - 20,
            "ytop": round(py(top), 1)}  # fmt: skip


def trends_and_heat(start: dt.date, end: dt.date, heat_days: int) -> dict[str, Any]:
    from triage.hotspots.governance import load_ticket_counts

    unit, cat = _names()
    df = load_ticket_counts(start, end)  # one row per day × street × district × category, with n
    if not df.empty:  # a month in progress: the chart stops at the last day with tickets
        end = min(end, max(df["day"].max(), start))
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    labels = [d.isoformat() for d in days]
    out: dict[str, Any] = {"labels": labels, "n": int(df["n"].sum())}
    if df.empty:
        out.update(cat_chart=None, dist_chart=None, heat={"cats": [], "rows": []})
        return out

    def top(frame: pd.DataFrame, col: str, k: int) -> list[str]:
        return (
            frame.groupby(col)["n"].sum().sort_values(ascending=False, kind="stable").head(k).index.tolist()
        )

    by_cd = df.groupby(["category", "day"])["n"].sum()
    by_dd = df.groupby(["district", "day"])["n"].sum()
    out["cat_chart"] = line_chart(
        {cat(c): [int(by_cd.get((c, d), 0)) for d in days] for c in top(df, "category", 6)}, labels
    )
    out["dist_chart"] = line_chart(
        {unit(c): [int(by_dd.get((c, d), 0)) for d in days] for c in top(df, "district", 6)}, labels
    )
    h = df[(df["day"] > end - dt.timedelta(days=heat_days)) & df["street"].notna()]
    cats, streets = top(h, "category", 10), top(h, "street", 25)
    tab = h.groupby(["street", "category"])["n"].sum()
    street_total = h.groupby("street")["n"].sum()
    peak = max((int(tab.get((s, c), 0)) for s in streets for c in cats), default=1) or 1
    rows = []
    for s in streets:
        cells = [int(tab.get((s, c), 0)) for c in cats]
        rows.append({"name": unit(s), "district": unit(s[:6]), "total": int(street_total[s]),
                     "cells": [{"v": v, "a": round(0.08 + 0.85 * v / peak, 2) if v else 0} for v in cells]})  # fmt: skip
    out["heat"] = {"cats": [cat(c) for c in cats], "rows": rows, "days": heat_days}
    return out


def _members(conn, ids: list[str], limit: int = 30) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(Ticket.ticket_id, Ticket.received_at, Ticket.title, Ticket.text).where(
            Ticket.ticket_id.in_(ids[-limit:])
        )
    ).all()
    tz = get_settings().tz
    return sorted(
        ({"id": r.ticket_id, "at": r.received_at.astimezone(tz).strftime("%m-%d %H:%M"),
          "title": _excerpt(r.title), "text": _excerpt(r.text)} for r in rows),
        key=lambda x: x["at"],
    )  # fmt: skip


def hotspot_section(night: dt.date, top_events: int = 15) -> dict[str, Any]:
    unit, cat = _names()
    with get_engine().connect() as conn:
        sigs = conn.execute(
            select(HotspotSignal).where(HotspotSignal.night == night, HotspotSignal.significant)
            .order_by(HotspotSignal.q_value, HotspotSignal.observed.desc())
        ).all()  # fmt: skip
        tested = conn.execute(select(HotspotSignal.id).where(HotspotSignal.night == night).limit(1)).first()
        events = conn.execute(
            select(HotspotEvent)
            .where(HotspotEvent.night == night)
            .order_by(HotspotEvent.score.desc())
            .limit(top_events)
        ).all()
        events_total = conn.execute(
            select(func.count()).select_from(HotspotEvent).where(HotspotEvent.night == night)
        ).scalar_one()  # as `triage status` counts them: every event of the night, not the top ones shown
        clusters = conn.execute(
            select(ScanCluster).where(ScanCluster.night == night).order_by(ScanCluster.rank)
        ).all()
        tasks = conn.execute(
            select(QueueItem).where(QueueItem.kind == "proactive").order_by(QueueItem.priority, QueueItem.id)
        ).all()
        ev = [
            {"key": e.event_key, "score": e.score, "size": e.size, "place": e.place or "", "title": _excerpt(e.title),
             "street": unit(e.street_code), "district": unit(e.district_code), "category": cat(e.category),
             "first": e.first_seen.astimezone(get_settings().tz).strftime("%m-%d"),
             "last": e.last_seen.astimezone(get_settings().tz).strftime("%m-%d"), "growth": e.growth,
             "recent": e.recent_7d, "repeat": e.repeat_callers, "votes": e.votes,
             "members": _members(conn, list(e.member_ids)), "more": max(0, e.size - 30)}
            for e in events
        ]  # fmt: skip
    surges = [
        {"level": "街乡镇" if s.level == "street" else "区", "unit": unit(s.unit_code), "code": s.unit_code,
         "district": unit(s.unit_code[:6]) if s.level == "street" else "", "category": cat(s.category),
         "category_code": s.category, "observed": s.observed, "expected": s.expected, "p": s.p_value,
         "q": s.q_value, "method": s.method}
        for s in sigs
    ]  # fmt: skip
    night_s = night.isoformat()
    tonight = [t for t in tasks if night_s in ((t.evidence or {}).get("nights") or [])]
    task_rows = [
        {"id": t.id, "street": unit(t.street_code), "category": cat(t.category), "title": t.title or "",
         "type": (t.evidence or {}).get("type", ""), "status": t.status, "new": (t.evidence or {}).get("nights", [None])[0] == night_s,
         "version": t.version}
        for t in tonight
    ]  # fmt: skip
    # what the night's hotspots called for but the per-street cap kept back (strongest first)
    from triage.hotspots.proactive import plan_tasks, short_unit_name

    sent = {t.task_key for t in tonight}
    held = sorted((t for t in plan_tasks(night) if t["task_key"] not in sent),
                  key=lambda t: (-float(t.get("heat", 0.0)), t["task_key"]))  # fmt: skip
    held_rows = [{"street": unit(t["street_code"]), "category": cat(t.get("category")), "title": t["title"],
                  "type": t["evidence"].get("type", ""), "heat": round(float(t.get("heat", 0.0)), 1)}
                 for t in held[:100]]  # fmt: skip
    return {
        "held": held_rows,
        "held_total": len(held),
        "computed": bool(tested) or bool(ev),
        "surges": surges,
        "events": ev,
        "events_total": events_total,
        "clusters": [
            {
                "lat": c.center_lat,
                "lon": c.center_lon,
                "radius": c.radius_km,
                "start": c.start_day.isoformat(),
                "end": c.end_day.isoformat(),
                "observed": c.observed,
                "expected": c.expected,
                "p": c.p_value,
                "where": "、".join(u["name"] for u in (c.units or []) if u["level"] == "street"),
                "communities": "、".join(
                    short_unit_name(u["name"]) for u in (c.units or []) if u["level"] == "community"
                ),
            }
            for c in clusters
        ],  # fmt: skip
        "tasks": task_rows,
        "tasks_new": sum(t["new"] for t in task_rows),
        # open work as the workflow table defines it ("resolved"/"cancelled" were never statuses)
        "tasks_open": sum(1 for t in tasks if t.status in load_workflow().open_statuses),
    }


def scoreboard(start: dt.date, end: dt.date, month: str | None = None) -> dict[str, Any]:
    from triage.hotspots.governance import governance_lists

    unit, cat = _names()
    g = governance_lists(month or end.strftime("%Y-%m"))

    def rate_rows(df: pd.DataFrame, col: str, limit: int) -> list[dict[str, Any]]:
        if df.empty:
            return []
        return [
            {"name": unit(r[col]), "code": r[col], "count": int(r["items"]), "ranked": bool(r["ranked"]),
             "rank": None if pd.isna(r["rank"]) else int(r["rank"]),
             **{f"{k}_raw": (None if pd.isna(r[f"{k}_raw"]) else float(r[f"{k}_raw"])) for k in ("response", "resolution", "satisfaction")},
             **{f"{k}": (None if pd.isna(r[f"{k}_shrunk"]) else float(r[f"{k}_shrunk"])) for k in ("response", "resolution", "satisfaction")}}
            for _, r in df.head(limit).iterrows() if r[col] is not None
        ]  # fmt: skip

    cand = g["candidates"]
    cands = []
    if len(cand):
        for _, r in cand[cand["candidate"]].head(g["params"].candidates).iterrows():
            cands.append({"name": unit(r["street"]), "district": unit(str(r["street"])[:6]), "volume": int(r["volume"]),
                          "expected": None if pd.isna(r["expected"]) else float(r["expected"]),
                          "raw": None if pd.isna(r["raw_ratio"]) else float(r["raw_ratio"]),
                          "trend": None if pd.isna(r["trend"]) else float(r["trend"])})  # fmt: skip
    themes = [
        {"name": cat(r["category"]), "volume": int(r["volume"]), "streets": int(r["streets_affected"]),
         "spread": float(r["spread"]), "recurring": int(r["months_recurring"])}
        for _, r in g["themes"].iterrows()
    ] if len(g["themes"]) else []  # fmt: skip
    streets = g["rates_street"]
    ranked_streets = streets[streets["ranked"]] if len(streets) else streets
    return {
        "month": g["month"],
        "has_handling": g["has_handling"],
        "city": g["rates_city"],
        # streets: the ranked ones only (the rest are counted, not listed as rows of "–" or 0 %)
        "streets": rate_rows(ranked_streets, "street", 30),
        "streets_unranked": int(len(streets) - len(ranked_streets)),
        "districts": rate_rows(g["rates_district"], "district", 16),
        "candidates": cands,
        "ranked_streets": int(cand["ranked"].sum()) if len(cand) else 0,
        "unranked_streets": int((~cand["ranked"]).sum()) if len(cand) else 0,
        "themes": themes,
        "min_volume": g["params"].min_volume,
        "min_rate_n": g["params"].min_rate_n,
    }


def nightly_analyst_context(night: dt.date) -> dict[str, Any]:
    return {
        "hot": hotspot_section(night),
        "trend": trends_and_heat(night - dt.timedelta(days=29), night, heat_days=7),
        "board": scoreboard(night.replace(day=1), night),
    }


def monthly_context(month: str) -> dict[str, Any]:
    from triage.hotspots.governance import month_bounds

    start, end = month_bounds(month)
    board = scoreboard(start, end, month)
    trend = trends_and_heat(start, end, heat_days=(end - start).days + 1)
    with get_engine().connect() as conn:
        tasks = conn.execute(
            select(QueueItem.status, QueueItem.evidence).where(QueueItem.kind == "proactive")
        ).all()
    by_type: dict[str, int] = defaultdict(int)
    for _status, ev in tasks:
        nights = (ev or {}).get("nights") or []
        if any(start.isoformat() <= n <= end.isoformat() for n in nights):
            by_type[(ev or {}).get("type", "")] += 1
    return {
        "month": start.strftime("%Y-%m"),
        "generated_at": dt.datetime.now(get_settings().tz).strftime("%Y-%m-%d %H:%M:%S"),
        "board": board,
        "trend": trend,
        "tasks_by_type": dict(by_type),
        "total": trend["n"],
    }


def write_monthly_report(month: str, out: Path | str | None = None) -> Path:
    ctx = monthly_context(month)
    path = Path(out) if out else get_settings().reports_dir / f"monthly-{ctx['month']}.html"
    return render_to_file("monthly.html.j2", path, **ctx)
