"""Prospective space-time permutation scan (Kulldorff et al. 2005), NumPy only.

Tickets with coordinates are binned to a grid of ``cell_km`` cells and to days. Candidate clusters
are cylinders: a base of the k nearest cells around each non-empty cell (k = 1 … ``max_cells``,
radius ≤ ``max_radius_km``) and a height of the last w days (w = 1 … ``max_days``), all ending on
the night (prospective surveillance, as NYC runs it on 311 data). Under the null, where a ticket
is and when it came are independent given the margins, so the expected count of a cylinder is
μ = Σ_cells Σ_days N_z· N_·d / N and the Poisson generalised likelihood ratio is
    GLR = c ln(c/μ) + (N−c) ln((N−c)/(N−μ))  for c > μ.
The p-value of the most likely cluster is its rank among ``replicas`` Monte Carlo data sets made by
permuting the tickets' days (space and time margins kept): p = (1 + #{max GLR_rep ≥ GLR}) / (1 + R).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

KM_PER_DEG_LAT = 111.0


@dataclass
class ScanParams:
    cell_km: float = 1.0
    max_cells: int = 12
    max_radius_km: float = 3.0
    max_days: int = 7
    study_days: int = 30
    replicas: int = 999
    alpha: float = 0.05
    seed: int = 0
    max_clusters: int = 5  # secondary clusters: the best cylinders that share no cell with a better one


@dataclass
class ScanResult:
    clusters: list[dict] = field(default_factory=list)  # significant, non-overlapping, best first;
    # each with "rows": positions (in the input frame) of its tickets
    best: dict | None = None  # the most likely cluster whatever its p-value
    notes: list[str] = field(default_factory=list)
    n_used: int = 0


def _glr(c: np.ndarray, mu: np.ndarray, N: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        v = c * np.log(c / mu) + (N - c) * np.log((N - c) / (N - mu))
    v = np.where((c > mu) & (c > 0) & (mu > 0), v, 0.0)
    return np.nan_to_num(v, nan=0.0, posinf=0.0)


def _cylinder_stats(counts: np.ndarray, nbr: np.ndarray, valid: np.ndarray, W: int) -> np.ndarray:
    """counts: cells × days (days ascending, last = night). Returns cylinder counts with shape
    (centres, k, w): cells accumulated over neighbours, days accumulated backwards from the night."""
    tail = np.cumsum(counts[:, ::-1][:, :W], axis=1)  # cells × w  (last 1..W days)
    cyl = np.cumsum(tail[nbr], axis=1)  # centres × k × w
    return np.where(valid[:, :, None], cyl, 0.0)


def space_time_scan(
    df: pd.DataFrame, night: pd.Timestamp | str, params: ScanParams | None = None
) -> ScanResult:
    """Scan ``df`` (columns lat, lon, day) for the study period ending on ``night``."""
    p = params or ScanParams()
    res = ScanResult()
    night = pd.Timestamp(night).normalize()
    day = pd.to_datetime(df["day"], errors="coerce").dt.normalize()
    lat = pd.to_numeric(df["lat"], errors="coerce")
    lon = pd.to_numeric(df["lon"], errors="coerce")
    start = night - pd.Timedelta(days=p.study_days - 1)
    in_time = (day >= start) & (day <= night)
    has_xy = lat.notna() & lon.notna() & lat.between(-90, 90) & lon.between(-180, 180)
    missing = int((in_time & ~has_xy).sum())
    use = in_time & has_xy
    res.n_used = int(use.sum())
    if missing:
        res.notes.append(f"{missing} ticket(s) without coordinates left out of the scan")
    if res.n_used < 10:
        res.notes.append(f"scan skipped: only {res.n_used} ticket(s) with coordinates in the study period")
        return res
    lat, lon, day = lat[use].to_numpy(), lon[use].to_numpy(), day[use]
    t = ((day - start).dt.days).to_numpy().astype(int)
    T = p.study_days
    W = min(p.max_days, T - 1)
    if len(np.unique(t)) < 2:
        res.notes.append("scan skipped: every ticket on one day (no time variation to scan)")
        return res
    lat0 = float(np.mean(lat))
    ky, kx = KM_PER_DEG_LAT, KM_PER_DEG_LAT * np.cos(np.radians(lat0))
    gy = np.floor((lat - lat.min()) * ky / p.cell_km).astype(int)
    gx = np.floor((lon - lon.min()) * kx / p.cell_km).astype(int)
    cell_key = gy * (gx.max() + 1) + gx
    cells, z = np.unique(cell_key, return_inverse=True)
    Z = len(cells)
    cy = (cells // (gx.max() + 1) + 0.5) * p.cell_km
    cx = (cells % (gx.max() + 1) + 0.5) * p.cell_km
    K = min(p.max_cells, Z)
    # k nearest non-empty cells of each centre, in chunks to bound memory
    nbr = np.empty((Z, K), dtype=int)
    dist = np.empty((Z, K))
    for a in range(0, Z, 2048):
        d = np.hypot(cy[a : a + 2048, None] - cy[None, :], cx[a : a + 2048, None] - cx[None, :])
        idx = np.argsort(d, axis=1)[:, :K]
        nbr[a : a + 2048] = idx
        dist[a : a + 2048] = np.take_along_axis(d, idx, axis=1)
    valid = dist <= max(p.max_radius_km, p.cell_km)
    N = float(len(t))
    counts = np.bincount(z * T + t, minlength=Z * T).reshape(Z, T).astype(float)
    n_z = counts.sum(axis=1)
    n_d = counts.sum(axis=0)
    tail_d = np.cumsum(n_d[::-1][:W])  # tickets in the last w days
    nz_cyl = np.cumsum(n_z[nbr] * valid, axis=1)  # centres × k
    mu = nz_cyl[:, :, None] * tail_d[None, None, :] / N
    obs = _cylinder_stats(counts, nbr, valid, W)
    llr = _glr(obs, mu, N)
    best = np.unravel_index(int(np.argmax(llr)), llr.shape)
    best_llr = float(llr[best])
    rng = np.random.default_rng(p.seed)
    rep_max = np.empty(p.replicas)
    for r in range(p.replicas):
        tp = rng.permutation(t)  # permute days: margins kept, space-time link broken
        c = np.bincount(z * T + tp, minlength=Z * T).reshape(Z, T).astype(float)
        rep_max[r] = float(_glr(_cylinder_stats(c, nbr, valid, W), mu, N).max())

    def p_of(v: float) -> float:
        # each cluster against the replicas' maxima: conservative for secondary clusters (Kulldorff)
        return float((1 + int((rep_max >= v).sum())) / (1 + p.replicas))

    p_best = p_of(best_llr)

    def describe(ci: int, k: int, w: int, pv: float) -> dict:
        members = nbr[ci, : k + 1]
        return {
            "center_lat": round(float(lat.min() + cy[ci] / ky), 6),
            "center_lon": round(float(lon.min() + cx[ci] / kx), 6),
            "radius_km": round(float(dist[ci, k]) + p.cell_km / 2, 3),
            "cells": int(k + 1),
            "days": int(w + 1),
            "start_day": (night - pd.Timedelta(days=w)).date().isoformat(),
            "end_day": night.date().isoformat(),
            "observed": int(obs[ci, k, w]),
            "expected": round(float(mu[ci, k, w]), 3),
            "llr": round(float(llr[ci, k, w]), 3),
            "p_value": round(pv, 4),
            "_cells": set(members.tolist()),
            "_w": int(w),
        }

    res.best = describe(*best, p_best)
    # secondary clusters: each centre's best cylinder, strongest first, skipping any that shares a
    # cell with one already taken (SaTScan's "no geographical overlap")
    flat = llr.reshape(Z, -1)
    arg = flat.argmax(axis=1)
    per_centre = flat[np.arange(Z), arg]
    taken: set[int] = set()
    for ci in np.argsort(-per_centre, kind="stable"):
        v = float(per_centre[ci])
        if v <= 0 or len(res.clusters) >= p.max_clusters:
            break
        pv = p_of(v)
        if pv > p.alpha:
            break
        k, w = np.unravel_index(int(arg[ci]), llr.shape[1:])
        d = describe(int(ci), int(k), int(w), pv)
        if d["_cells"] & taken:
            continue
        taken |= d["_cells"]
        res.clusters.append(d)
    # the tickets of each cluster (their other columns, e.g. street and community, name it)
    for d in res.clusters:
        in_c = np.isin(z, list(d["_cells"])) & (t >= T - 1 - d["_w"])
        d["rows"] = np.flatnonzero(use.to_numpy())[in_c]
    for d in [res.best, *res.clusters]:
        d.pop("_cells", None)
        d.pop("_w", None)
    if best_llr <= 0:
        res.notes.append("no cylinder has more tickets than expected")
    return res
