"""Monthly governance lists: 治理类街乡镇 candidates, 每月一题 themes, the three-rates scoreboard.

Fair ranking (the lesson of FixMyStreet #1957: raw rates rank tiny units first or last by chance):
units below a minimum volume are listed but not ranked, and every rate or ratio is shrunk towards
the city-wide level by empirical Bayes before ranking —

* rates (response in time, resolution, satisfaction): beta-binomial; the Beta(a, b) prior is fitted
  by moments to the units with enough volume; the ranked value is (k + a) / (n + a + b);
* trend (this month against the previous months' mean, exposure-adjusted): gamma-Poisson; the
  relative risk RR = c / e gets the Gamma(α, α) prior (mean 1) with α by moments; the ranked value
  is (c + α) / (e + α).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class GovernanceParams:
    min_volume: int = 30  # a street needs this many tickets in the month to be ranked
    min_rate_n: int = 20  # … and this many closed/rated items for a rate to be ranked
    candidates: int = 20
    themes: int = 8
    theme_min_per_street: int = 3
    rr_threshold: float = 1.1


def beta_binomial_shrink(k: np.ndarray, n: np.ndarray, min_n: int) -> tuple[np.ndarray, float, float]:
    """Posterior means of k/n under a Beta prior fitted by moments to units with n ≥ min_n."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    ok = n >= max(min_n, 1)
    if ok.sum() >= 3:
        p = k[ok] / n[ok]
        m, v = float(p.mean()), float(p.var(ddof=1))
        # the between-unit variance left after binomial noise; tiny or negative → strong pooling
        noise = float(np.mean(m * (1 - m) / n[ok]))
        between = max(v - noise, 1e-6)
        strength = max(m * (1 - m) / between - 1, 1.0)
    else:
        tot = n.sum()
        m = float(k.sum() / tot) if tot else 0.5
        strength = 10.0
    m = min(max(m, 1e-4), 1 - 1e-4)
    a, b = m * strength, (1 - m) * strength
    with np.errstate(invalid="ignore", divide="ignore"):
        post = (k + a) / (n + a + b)
    return post, a, b


def gamma_poisson_shrink(c: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrunk relative risks (c + α) / (e + α) with a Gamma(α, α) prior fitted by moments."""
    c, e = np.asarray(c, float), np.asarray(e, float)
    ok = e > 0
    if ok.sum() >= 3:
        rr = c[ok] / e[ok]
        v = float(np.var(rr, ddof=1))
        noise = float(np.mean(1.0 / e[ok]))  # Poisson noise of c/e around RR = 1
        between = max(v - noise, 1e-3)
        alpha = 1.0 / between
    else:
        alpha = 10.0
    return (c + alpha) / (e + alpha), alpha


def month_bounds(month: str | dt.date) -> tuple[dt.date, dt.date]:
    d = dt.date.fromisoformat(f"{month}-01") if isinstance(month, str) else month.replace(day=1)
    nxt = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return d, nxt - dt.timedelta(days=1)


def _counted(tickets: pd.DataFrame) -> pd.DataFrame:
    """Days as dates and a count column n (1 per row where the frame holds single tickets)."""
    t = tickets.assign(day=pd.to_datetime(tickets["day"]).dt.date)
    return t if "n" in t.columns else t.assign(n=1)


def street_candidates(
    tickets: pd.DataFrame, month: str, params: GovernanceParams | None = None
) -> pd.DataFrame:
    """治理类街乡镇 candidates. ``tickets``: columns day, street (may be NaN) and optionally n (the
    tickets a row stands for; see :func:`load_month_tickets`). Volume this month, expected from the
    previous (up to 3) months scaled to the month's days, shrunk trend."""
    p = params or GovernanceParams()
    start, end = month_bounds(month)
    t = _counted(tickets).dropna(subset=["street"])
    t = t[t["day"] <= end]  # future-dated tickets do not count
    cur = t[(t["day"] >= start)].groupby("street")["n"].sum()
    prev_start = start - dt.timedelta(days=92)
    prev = t[(t["day"] >= prev_start) & (t["day"] < start)]
    prev_days = (start - max(prev_start, prev["day"].min())).days if len(prev) else 0
    n_days = (end - start).days + 1
    streets = sorted(set(cur.index) | set(prev["street"]))
    out = pd.DataFrame(index=pd.Index(streets, name="street"))
    out["volume"] = cur.reindex(out.index).fillna(0).astype(int)
    prev_counts = prev.groupby("street")["n"].sum().reindex(out.index).fillna(0)
    out["expected"] = prev_counts * (n_days / prev_days) if prev_days else np.nan
    out["raw_ratio"] = out["volume"] / out["expected"].where(out["expected"] > 0)
    if prev_days:
        out["trend"], _ = gamma_poisson_shrink(out["volume"].to_numpy(), out["expected"].to_numpy())
    else:
        out["trend"] = np.nan
    out["ranked"] = out["volume"] >= p.min_volume
    out["candidate"] = (
        out["ranked"]
        & (out["volume"] >= out.loc[out["ranked"], "volume"].quantile(0.5))
        & (out["trend"].fillna(1.0) >= p.rr_threshold)
    )
    # rank by volume weighted by the shrunk trend: big and getting worse first
    out["score"] = np.where(out["ranked"], out["volume"] * out["trend"].fillna(1.0), np.nan)
    return out.reset_index().sort_values(["ranked", "score", "volume"], ascending=[False, False, False])


def monthly_themes(tickets: pd.DataFrame, month: str, params: GovernanceParams | None = None) -> pd.DataFrame:
    """每月一题 candidate themes: categories that are widespread (many streets with ≥ k tickets),
    recurring (also widespread in the previous months) and large. ``tickets``: day, street,
    category, optionally n."""
    p = params or GovernanceParams()
    start, end = month_bounds(month)
    t = _counted(tickets).dropna(subset=["category"])
    t = t[t["category"] != "other"]  # "其他" is not a theme
    rows = []
    months = [start]
    for _ in range(3):
        months.append((months[-1] - dt.timedelta(days=1)).replace(day=1))
    spread = {}
    for m in months:
        ms, me = month_bounds(m)
        sub = t[(t["day"] >= ms) & (t["day"] <= me)].dropna(subset=["street"])
        per = sub.groupby(["category", "street"])["n"].sum()
        spread[m] = (per >= p.theme_min_per_street).groupby(level=0).sum()
    cur = t[(t["day"] >= start) & (t["day"] <= end)]
    vol = cur.groupby("category")["n"].sum()
    n_streets = max(cur["street"].nunique(), 1)
    for cat, v in vol.items():
        now = int(spread[start].get(cat, 0))
        past = [int(spread[m].get(cat, 0)) for m in months[1:]]
        recurring = sum(x >= max(3, now // 2) for x in past)
        rows.append({"category": cat, "volume": int(v), "streets_affected": now,
                     "spread": now / n_streets, "months_recurring": recurring})  # fmt: skip
    out = pd.DataFrame(rows, columns=["category", "volume", "streets_affected", "spread", "months_recurring"])
    out["score"] = out["spread"] * (1 + out["months_recurring"]) * np.log1p(out["volume"])
    return out.sort_values("score", ascending=False).head(p.themes).reset_index(drop=True)


def rate_counts(items: pd.DataFrame) -> pd.DataFrame:
    """Per item, what each rate counts (the figures come from the events that exist):

    * 响应率 response: counted once the deadline has passed in the period *or* the item was
      answered in time (an acknowledgement before the deadline counts at once); in time = the
      first human action (or the resolution) no later than the deadline;
    * 解决率 resolution: counted once the deadline has passed *or* the item was resolved;
    * 满意率 satisfaction: counted once rated.
    """
    answered = items["answered"] if "answered" in items else (items["responded_in_time"] | items["resolved"])
    return pd.DataFrame(
        {
            "response_n": items["due"] | items["responded_in_time"],
            "response_k": items["responded_in_time"],
            "resolution_n": items["due"] | items["resolved"],
            "resolution_k": items["resolved"],
            "satisfaction_n": items["rated"],
            "satisfaction_k": items["rated"] & items["satisfied"],
            "handled": answered | items["resolved"] | items["rated"],
        },
        index=items.index,
    ).astype(bool)


RATES = ("response", "resolution", "satisfaction")


def three_rates(items: pd.DataFrame, by: str, params: GovernanceParams | None = None) -> pd.DataFrame:
    """响应率/解决率/满意率 per unit with beta-binomial shrinkage. ``items``: the unit column ``by``,
    ``due`` (bool: the deadline fell in the period), ``responded_in_time`` (bool), ``resolved``
    (bool), ``rated`` (bool), ``satisfied`` (bool), optionally ``answered`` (bool: any human action).

    No rank without data: a unit is ranked only when its resolution rate counts at least
    ``min_rate_n`` items, and nobody is ranked in a period where no handling at all was recorded
    (all rates would be 0 % by absence of data, not by performance). Equal composites share a
    rank (1, 2, 2, 4): ties are not ordered by chance."""
    p = params or GovernanceParams()
    c = rate_counts(items).join(items[[by]])
    g = c.groupby(by)
    out = pd.DataFrame({"items": g.size(), **{col: g[col].sum() for col in c.columns if col != by}}).fillna(0)
    # the columns earlier callers read
    out["due"], out["in_time"] = out["response_n"], out["response_k"]
    out["resolved"], out["rated"], out["satisfied"] = (
        out["resolution_k"],
        out["satisfaction_n"],
        out["satisfaction_k"],
    )
    any_handling = bool(out["handled"].sum() > 0)
    for name in RATES:
        k, n = out[f"{name}_k"], out[f"{name}_n"]
        out[f"{name}_raw"] = k / n.where(n > 0)
        post, _, _ = beta_binomial_shrink(k.to_numpy(), n.to_numpy(), p.min_rate_n)
        out[f"{name}_shrunk"] = np.where(n > 0, post, np.nan)
        out[f"{name}_ranked"] = (n >= p.min_rate_n) & any_handling
    out["composite"] = out[[f"{r}_shrunk" for r in RATES]].mean(axis=1, skipna=True)
    out["ranked"] = out["resolution_ranked"]
    out = out.reset_index().sort_values(["ranked", "composite", "items"], ascending=[False, False, False])
    # competition ranking on the rounded composite: units equal to 4 decimals share a rank
    key = out["composite"].round(4).where(out["ranked"])
    out["rank"] = key.rank(method="min", ascending=False)
    return out


def city_rates(items: pd.DataFrame) -> dict[str, float | int | None]:
    """The city-wide three rates, counted from receipt (the citizen's clock): ``items`` with the
    ``*_city`` columns of :func:`load_rate_items` in place of the street's."""
    if items.empty:
        return {"items": 0, **{r: None for r in RATES}}
    city = items.assign(due=items["due_city"], responded_in_time=items["responded_in_time_city"])
    c = rate_counts(city).sum()
    return {
        "items": len(items),
        **{r: (float(c[f"{r}_k"] / c[f"{r}_n"]) if c[f"{r}_n"] else None) for r in RATES},
    }


def street_overdue(items: Any, now: dt.datetime) -> Any:
    """SQL condition: a street item, open, past the street's deadline (dispatch + its tier's hours).
    One bound per tier, so no date arithmetic in SQL (the same on SQLite and PostgreSQL)."""
    from sqlalchemy import and_, or_

    from triage.taxonomy import load_taxonomy
    from triage.workflow import load_workflow

    tiers = load_taxonomy().tiers
    return and_(
        items.c.queue == "street",
        items.c.status.in_(load_workflow().open_statuses),  # open work: the workflow's one rule
        items.c.dispatched_at.is_not(None),
        or_(*[and_(items.c.sla_tier == code, items.c.dispatched_at < now - dt.timedelta(hours=t.hours))
              for code, t in tiers.items()]),
    )  # fmt: skip


def street_deadline(due_at: dt.datetime, dispatched_at: dt.datetime | None, hours: float) -> dt.datetime:
    """The street's deadline: its tier's hours counted from dispatch to it (the citizen's
    ``due_at`` counts from receipt). An item without a dispatch time keeps ``due_at``. The same
    rule, vectorised, is in :func:`load_rate_items`."""
    return dispatched_at + dt.timedelta(hours=hours) if dispatched_at is not None else due_at


def load_month_tickets(month: str, months_back: int = 3) -> pd.DataFrame:
    """Ticket counts of the month and the ``months_back`` before it, per day, street, district and
    category (columns day, street, district, category, n). Counted in the database: four months of
    a busy hotline are millions of tickets but only tens of thousands of combinations."""
    start, end = month_bounds(month)
    lo = start
    for _ in range(months_back):
        lo = (lo - dt.timedelta(days=1)).replace(day=1)
    return load_ticket_counts(lo, end)


def load_ticket_counts(start: dt.date, end: dt.date) -> pd.DataFrame:
    """Tickets received in [start, end] counted per day, street, district, category (the street the
    router located, also for tickets waiting in the centre's queue; the classifier's category; NaN
    where a ticket has none yet)."""
    from sqlalchemy import and_, func, select

    from triage.store import Prediction, QueueItem, Ticket, get_engine, read_frame

    keys = (Ticket.received_date, QueueItem.located_street_code, QueueItem.district_code, Prediction.category)
    q = (
        select(*keys, func.count())
        .select_from(Ticket)
        .outerjoin(Prediction, Prediction.ticket_id == Ticket.ticket_id)
        .outerjoin(QueueItem, and_(QueueItem.ticket_id == Ticket.ticket_id, QueueItem.kind == "ticket"))
        .where(Ticket.received_date >= start, Ticket.received_date <= end)
        .group_by(*keys)
    )  # fmt: skip
    with get_engine().connect() as conn:
        return read_frame(conn, q, ["day", "street", "district", "category", "n"])


def load_rate_items(start: dt.date, end: dt.date) -> pd.DataFrame:
    """Ticket queue items received in [start, end] with what the three rates need."""
    from sqlalchemy import and_, func, select

    from triage.store import QueueEvent, QueueItem, Ticket, get_engine, read_frame

    q = (
        select(QueueItem.id, QueueItem.street_code, QueueItem.district_code, QueueItem.due_at,
               QueueItem.resolved_at, QueueItem.satisfaction, QueueItem.status, QueueItem.dispatched_at,
               QueueItem.sla_tier)
        .join(Ticket, and_(Ticket.ticket_id == QueueItem.ticket_id, QueueItem.kind == "ticket"))
        .where(Ticket.received_date >= start, Ticket.received_date <= end, QueueItem.queue == "street")
    )  # fmt: skip
    # a street's first action on each item, read on its own and joined here: as a subquery joined in
    # SQL, a planner misled by stale statistics re-ran the aggregate once per item (at 1M it had
    # not finished after minutes). No item of the period was acted on before the period began,
    # so older events are skipped.
    since = dt.datetime.combine(start - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    first_action = (
        select(QueueEvent.item_id, func.min(QueueEvent.at))
        .where(~QueueEvent.actor.like("system:%"), QueueEvent.at >= since)
        .group_by(QueueEvent.item_id)
    )
    with get_engine().connect() as conn:
        df = read_frame(
            conn, q, ["item_id", "street", "district", "due_at", "resolved_at", "satisfaction", "status",
                      "dispatched_at", "sla_tier"],
        )  # fmt: skip
        first = read_frame(conn, first_action, ["item_id", "first_at"])
    df["first_at"] = df["item_id"].map(first.set_index("item_id")["first_at"]) if len(first) else None
    if df.empty:
        return df
    # timestamps may come back naive (SQLite) or aware (PostgreSQL); compare in UTC
    for c in ("due_at", "resolved_at", "first_at", "dispatched_at"):
        df[c] = pd.to_datetime(df[c], utc=True)
    end_utc = pd.Timestamp(dt.datetime.combine(end + dt.timedelta(days=1), dt.time()), tz="Asia/Shanghai")
    end_utc = min(end_utc, pd.Timestamp.now(tz="UTC"))  # a month in progress: what is due by now
    answered = df["first_at"].fillna(df["resolved_at"])
    # fair clocks: the street's share counts from dispatch to it, the city's from receipt
    from triage.taxonomy import load_taxonomy

    hours = df["sla_tier"].map({k: t.hours for k, t in load_taxonomy().tiers.items()}).fillna(0)
    df["street_due_at"] = (df["dispatched_at"] + pd.to_timedelta(hours, unit="h")).fillna(df["due_at"])
    df["answered"] = answered.notna()
    df["due"] = df["street_due_at"] < end_utc
    df["responded_in_time"] = df["answered"] & (answered <= df["street_due_at"])
    df["due_city"] = df["due_at"] < end_utc
    df["responded_in_time_city"] = df["answered"] & (answered <= df["due_at"])
    df["resolved"] = df["resolved_at"].notna()
    df["rated"] = df["satisfaction"].notna()
    # 满意 and 基本满意 count as satisfied (stored as their codes: lifecycle.SATISFACTION)
    df["satisfied"] = df["satisfaction"].isin(["satisfied", "basically_satisfied", "满意", "基本满意"])
    return df


def governance_lists(month: str, params: GovernanceParams | None = None) -> dict[str, Any]:
    """Everything the monthly edition shows, from the database."""
    p = params or GovernanceParams()
    start, end = month_bounds(month)
    t = load_month_tickets(month)
    items = load_rate_items(start, end)
    has_handling = bool(len(items)) and bool(
        items["first_at"].notna().any() or items["resolved"].any() or items["rated"].any()
    )
    return {
        "month": start.strftime("%Y-%m"),
        "tickets": t,
        "candidates": street_candidates(t, month, p) if len(t) else pd.DataFrame(),
        "themes": monthly_themes(t, month, p) if len(t) else pd.DataFrame(),
        "rates_street": three_rates(items, "street", p) if len(items) else pd.DataFrame(),
        "rates_district": three_rates(items, "district", p) if len(items) else pd.DataFrame(),
        "rates_city": city_rates(items),
        "has_handling": has_handling,
        "params": p,
    }
