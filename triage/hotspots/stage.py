"""The nightly hotspot stage on the database: load the window, detect surges, cluster events,
scan coordinates, store every result (idempotent per night: a re-run replaces that night's rows)."""

from __future__ import annotations

import datetime as dt
import time
from functools import lru_cache
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from triage.hotspots.events import EventParams, cluster_events, place_digests, places_fingerprint
from triage.hotspots.scan import ScanParams, space_time_scan
from triage.hotspots.surges import SurgeParams, detect_surges
from triage.store import (
    HotspotEvent,
    HotspotSignal,
    Prediction,
    QueueItem,
    ScanCluster,
    Ticket,
    TicketPlace,
    get_engine,
    read_frame,
    upsert,
)

WINDOW_DAYS = 90
DB_TEXT_CHARS = 120  # the place and the problem come first; shorter texts keep 1M tickets fast


@lru_cache(maxsize=1)
def admin_names() -> frozenset[str]:
    """District and street names and their stems (西城, 黄村): areas, never an event's place."""
    from triage.geo import get_gazetteer

    gaz = get_gazetteer()
    out: set[str] = set()
    for u in gaz.units.values():
        if u.level == "community":
            continue
        out.add(u.name)
        for suf in ("街道", "地区", "区", "镇", "乡"):
            if u.name.endswith(suf) and len(u.name) - len(suf) >= 2:
                out.add(u.name[: -len(suf)])
    return frozenset(out)


def load_window(night: dt.date, days: int = WINDOW_DAYS) -> pd.DataFrame:
    """Tickets received in the ``days`` days up to the night, with their category and codes (the
    street is where the ticket was located, also when it waits in the centre's queue), and the
    places read from them on earlier nights with the digest of what was read then (``places``,
    ``places_digest``: None where never read)."""
    start = night - dt.timedelta(days=days - 1)
    q = (
        select(
            Ticket.ticket_id, Ticket.received_at, Ticket.received_date, Ticket.title,
            # cut in the database: a million full texts would be ~1 GB of Python strings
            func.substr(Ticket.text, 1, DB_TEXT_CHARS).label("text"),
            Ticket.address, Ticket.caller_hash, Ticket.lat, Ticket.lon, Ticket.votes,
            Prediction.category, QueueItem.located_street_code.label("street_code"), QueueItem.district_code,
            QueueItem.community_code, TicketPlace.places, TicketPlace.digest.label("places_digest"),
        )
        .select_from(Ticket)
        .outerjoin(Prediction, Prediction.ticket_id == Ticket.ticket_id)
        .outerjoin(QueueItem, (QueueItem.ticket_id == Ticket.ticket_id) & (QueueItem.kind == "ticket"))
        .outerjoin(TicketPlace, TicketPlace.ticket_id == Ticket.ticket_id)
        .where(Ticket.received_date >= start, Ticket.received_date <= night)
    )  # fmt: skip
    with get_engine().connect() as conn:
        df = read_frame(conn, q, list(q.selected_columns.keys()))
    return df


def compute_hotspots(
    df: pd.DataFrame,
    night: dt.date,
    surge_params: SurgeParams | None = None,
    event_params: EventParams | None = None,
    scan_params: ScanParams | None = None,
    known_places: pd.Series | None = None,
) -> dict[str, Any]:
    """Surges, events and the scan of one night from a window of tickets (no database access).

    ``known_places`` (on ``df``'s index, None where unknown) are the rows' places read on earlier
    nights (:func:`cached_places`); the rows read tonight are then in ``places``."""
    timings: dict[str, float] = {}
    notes: list[str] = []
    t0 = time.perf_counter()
    if df.empty:
        return {"signals": pd.DataFrame(), "events": pd.DataFrame(), "scan": None, "notes": ["no tickets"],
                "timings": timings}  # fmt: skip
    d = pd.DataFrame(
        {
            "day": df["received_date"],
            "category": df["category"],
            "street": df["street_code"],
            "district": df["district_code"].where(df["district_code"].notna(), df["street_code"].str[:6]),
        }
    )
    sr = detect_surges(d, night, surge_params)
    notes += sr.notes
    timings["surges"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    ev_in = df.assign(
        block_street=df["street_code"].fillna(df["district_code"]).fillna("-"),
        block_cat=df["category"].fillna("-"),
        # where the resolver put the ticket: a learned place name must be mostly in one of these
        trust_unit=df["community_code"].fillna(df["street_code"]),
    )
    events, _ = cluster_events(
        ev_in, "ticket_id", "text", "received_at", title_col="title", votes_col="votes",
        caller_col="caller_hash", place_cols=("address",), block_cols=("block_street", "block_cat"),
        params=event_params or EventParams(max_chars=DB_TEXT_CHARS, min_size=3),
        mode="keyed",
        exclude_keys=admin_names(), unit_col="trust_unit",
        ref_time=pd.Timestamp(dt.datetime.combine(night + dt.timedelta(days=1), dt.time())),
        known_places=known_places,
    )  # fmt: skip
    # taken off the events at once: pandas deep-copies attrs into every frame derived from them
    places = events.attrs.pop("places", None)
    timings["events"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    scan = space_time_scan(
        df[["lat", "lon"]].assign(day=df["received_date"]), pd.Timestamp(night), scan_params
    )
    notes += scan.notes
    for c in scan.clusters:
        c["units"] = cluster_units(df.iloc[c.pop("rows")])
    timings["scan"] = round(time.perf_counter() - t0, 2)
    return {"signals": sr.signals, "events": events, "scan": scan, "notes": notes, "timings": timings,
            "tested": sr.tested, "places": places}  # fmt: skip


def cluster_units(
    members: pd.DataFrame, top_streets: int = 3, top_communities: int = 5
) -> list[dict[str, Any]]:
    """The streets and communities a scan cluster covers, most tickets first, by name: a street
    office reads "望京街道 花家地西里社区", not (39.99, 116.41)."""
    from triage.geo import get_gazetteer

    gaz = get_gazetteer()
    out: list[dict[str, Any]] = []
    for level, col, top in (
        ("street", "street_code", top_streets),
        ("community", "community_code", top_communities),
    ):
        if col not in members:
            continue
        for code, n in members[col].dropna().astype(str).value_counts().head(top).items():
            u = gaz.unit(code)
            out.append({"level": level, "code": code, "name": u.name if u else code, "tickets": int(n)})
    return out


def _utc(ts: str) -> dt.datetime:
    """An event's first/last time as an aware datetime. ``cluster_events`` hands back Beijing wall
    times without a zone (it converts the database's UTC times to the local day), so a naive time
    is local: reading it as UTC put the report's dates 8 hours late."""
    from triage.config import get_settings

    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize(get_settings().tz)
    return t.to_pydatetime()


def store_hotspots(night: dt.date, result: dict[str, Any], min_signal_count: int = 2) -> dict[str, int]:
    sig = result["signals"]
    # every series with at least a couple of tickets tonight is kept (observed, expected, p, q),
    # significant or not, so an analyst can see why a series did not fire
    keep = sig[sig["observed"] >= min_signal_count] if not sig.empty else sig
    sig_rows = [
        {"night": night, "level": r.level, "unit_code": str(r.unit), "category": r.category,
         "observed": int(r.observed), "expected": float(r.expected), "p_value": float(r.p),
         "q_value": float(r.q), "method": r.method, "history_days": int(r.history_days),
         "significant": bool(r.significant)}
        for r in keep.itertuples()
    ]  # fmt: skip
    ev = result["events"]
    ev_rows = [
        {"night": night, "event_key": r.event_id,
         "street_code": r.block_street if len(r.block_street) == 9 else None,  # else a district or "-"
         "district_code": None if r.block_street == "-" else r.block_street[:6],
         "category": None if r.block_cat == "-" else r.block_cat, "place": r.place, "title": r.title,
         "size": int(r.size), "first_seen": _utc(r.first_seen), "last_seen": _utc(r.last_seen),
         "growth": float(r.growth), "recent_7d": int(r.recent_7d), "repeat_callers": int(r.repeat_callers),
         "votes": float(r.votes), "score": float(r.score), "member_ids": list(r.member_ids),
         "kind": r.kind, "voices": int(r.voices), "baseline_7d": float(r.baseline_7d),
         "surprise": float(r.surprise)}
        for r in ev.itertuples()
    ]  # fmt: skip
    scan = result["scan"]
    sc_rows = []
    if scan is not None:
        for i, c in enumerate(scan.clusters):
            sc_rows.append(
                {"night": night, "rank": i + 1, **{k: c[k] for k in (
                    "center_lat", "center_lon", "radius_km", "observed", "expected", "llr", "p_value")},
                 "units": c.get("units"),
                 "start_day": dt.date.fromisoformat(c["start_day"]), "end_day": dt.date.fromisoformat(c["end_day"])}
            )  # fmt: skip
    with get_engine().begin() as conn:
        for table in (HotspotSignal, HotspotEvent, ScanCluster):
            conn.execute(delete(table).where(table.night == night))
        for table, rows in ((HotspotSignal, sig_rows), (HotspotEvent, ev_rows), (ScanCluster, sc_rows)):
            for a in range(0, len(rows), 5000):
                conn.execute(table.__table__.insert(), rows[a : a + 5000])
    return {"signals": len(sig_rows), "events": len(ev_rows), "scan_clusters": len(sc_rows)}


def place_digests_of(df: pd.DataFrame) -> list[str]:
    """Each row's digest of what the event stage reads from it (title, text cut to
    ``DB_TEXT_CHARS``, address) and of the reading rules and their data, as ``ticket_places`` holds
    it. The stage's events read the text with ``max_chars=DB_TEXT_CHARS`` (:func:`compute_hotspots`)."""
    cols = [df["title"].fillna("").astype(str), df["text"], df["address"]]
    return place_digests(cols, DB_TEXT_CHARS, places_fingerprint(admin_names()))


def cached_places(df: pd.DataFrame, digests: list[str]) -> pd.Series:
    """The places read on earlier nights where they were read from the same texts by the same
    rules (equal digests), else None: those rows are read again."""
    same = (df["places_digest"] == pd.Series(digests, index=df.index)).to_numpy()
    return pd.Series([ks if s else None for ks, s in zip(df["places"], same, strict=True)], index=df.index,
                     dtype=object)  # fmt: skip


def store_places(
    conn: Connection, df: pd.DataFrame, digests: list[str], places: pd.Series | None, batch: int = 5000
) -> int:
    """Keep the places read tonight (``places``, on ``df``'s index) with their digests, replacing
    stale rows; returns how many. Written in ticket order: two nights storing at once lock rows
    in the same order on PostgreSQL."""
    if places is None or places.empty:
        return 0
    pos = df.index.get_indexer(places.index)
    ids = df["ticket_id"].to_numpy()[pos]
    dig = pd.Series(digests).to_numpy()[pos]
    rows = sorted(
        ({"ticket_id": i, "digest": d, "places": ks} for i, d, ks in zip(ids, dig, places, strict=True)),
        key=lambda r: r["ticket_id"],
    )
    for a in range(0, len(rows), batch):
        upsert(conn, TicketPlace.__table__, rows[a : a + batch], ["ticket_id"], ["digest", "places"])
    return len(rows)


def run_hotspots(night: dt.date) -> dict[str, Any]:
    """Load, compute, store. Returns counts only (what goes through XCom).

    The places read from each ticket are kept in ``ticket_places``: a night reads only its new
    tickets and those whose text or reading rules changed since (the rest of its 90 days were read
    on earlier nights); the events are the same as from reading every ticket again."""
    t0 = time.perf_counter()
    df = load_window(night)
    load_s = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    digests = place_digests_of(df)
    known = cached_places(df, digests)
    digest_s = round(time.perf_counter() - t0, 2)
    res = compute_hotspots(df, night, known_places=known)
    stored = store_hotspots(night, res)
    t0 = time.perf_counter()
    with get_engine().begin() as conn:
        n_read = store_places(conn, df, digests, res.get("places"))
    store_s = round(time.perf_counter() - t0, 2)
    sig = res["signals"]
    return {
        "tickets_in_window": len(df),
        "places_read": n_read,
        "series_tested": int(res.get("tested", 0)),
        "surges": int(sig["significant"].sum()) if not sig.empty else 0,
        "events": stored["events"],
        "signals_stored": stored["signals"],
        "scan_clusters": stored["scan_clusters"],
        "notes": res["notes"][:10],
        "timings": {"load": load_s, "places_digest": digest_s, **res["timings"], "places_store": store_s},
    }
