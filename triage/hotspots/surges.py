"""Surge detection: is today's count of a (place × category) series above its own usual level?

Method (see docs/hotspots.md):

* counts per series and day over a baseline of up to ``history_days`` days before the night;
* **GLM** (enough history): log μ_{s,t} = α_s + β_c[dow(t)] — a Poisson GLM with a series intercept
  and day-of-week effects shared by all series of a category. With every series observed on the
  same days, the profile likelihood of β is the Poisson GLM of the category's daily totals, so β is
  fitted once per category with statsmodels and α_s = Y_s / Σ_t exp β_c[dow(t)] in closed form.
  Over-dispersion: a per-category negative-binomial α (method of moments on the baseline), so the
  upper-tail p-value is P(Y ≥ y) under NB(μ, α) (Poisson when α = 0);
* **EARS C2** (short history): mean and sd of the 7 days before a 2-day guard band,
  C2 = (y − mean) / max(sd, 0.5), p = 1 − Φ(C2);
* Benjamini–Hochberg q-values across every series tested that night; a signal needs
  ``q ≤ fdr`` and ``observed ≥ min_count``.

Everything is vectorised (bincount / NumPy), so a million tickets take seconds.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

GLM_MIN_DAYS = 28  # below this many baseline days the GLM's day-of-week effects are not estimable
EARS_MIN_DAYS = 3  # below this there is no history at all: nothing is tested
EXPECTED_FLOOR = 0.1  # a series never seen before still has a small expected rate


@dataclass
class SurgeParams:
    history_days: int = 84
    min_count: int = 5
    fdr: float = 0.05
    glm_min_days: int = GLM_MIN_DAYS
    # holidays (holidays.py): a day off counts as a Sunday, a 调休 working day as a Monday, and the
    # first working day after ≥ 3 days off expects (1 + catchup_boost) × its weekday's level
    holidays: bool = True
    catchup_boost: float = 0.6


@dataclass
class SurgeResult:
    signals: pd.DataFrame  # level, unit, category, observed, expected, p, q, method, significant
    notes: list[str] = field(default_factory=list)
    tested: int = 0


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted q-values (monotone, capped at 1)."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def _dow_effects(totals: np.ndarray, dows: np.ndarray) -> np.ndarray:
    """Multiplicative day-of-week factors (mean 1 over the baseline days) from a Poisson GLM of
    one category's daily totals on day-of-week dummies (statsmodels)."""
    import statsmodels.api as sm

    if totals.sum() < 14 or len(np.unique(dows)) < 7:
        return np.ones(7)
    X = np.zeros((len(dows), 7))
    X[np.arange(len(dows)), dows] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.GLM(totals, X, family=sm.families.Poisson()).fit()
        except Exception:  # noqa: BLE001 - a degenerate series falls back to no weekly pattern
            return np.ones(7)
    f = np.exp(np.clip(fit.params, -20, 20))
    f = f / f[dows].mean()
    return f


def _nb_alpha(y: np.ndarray, mu: np.ndarray) -> float:
    """NB2 dispersion by moments: Var = μ + α μ²."""
    denom = float((mu**2).sum())
    if denom <= 0:
        return 0.0
    return max(0.0, float(((y - mu) ** 2 - y).sum()) / denom)


def _upper_tail(y: np.ndarray, mu: np.ndarray, alpha: float) -> np.ndarray:
    mu = np.maximum(mu, EXPECTED_FLOOR)
    if alpha <= 1e-6:
        return stats.poisson.sf(y - 1, mu)
    n = 1.0 / alpha
    return stats.nbinom.sf(y - 1, n, n / (n + mu))


def _series_scores(
    units: np.ndarray, cats: np.ndarray, days: np.ndarray, night: dt.date, params: SurgeParams, level: str
) -> tuple[pd.DataFrame, list[str]]:
    notes: list[str] = []
    start = night - dt.timedelta(days=params.history_days)
    offs = (days - np.datetime64(start, "D")).astype(int)
    keep = (offs >= 0) & (offs <= params.history_days)
    units, cats, offs = units[keep], cats[keep], offs[keep]
    T = params.history_days + 1  # baseline days + the night itself (last column)
    if len(offs) == 0:
        return pd.DataFrame(), notes
    key = pd.MultiIndex.from_arrays([units, cats])
    codes, uniq = pd.factorize(key)
    S = len(uniq)
    counts = np.bincount(codes * T + offs, minlength=S * T).reshape(S, T).astype(float)
    # history starts at the first day any ticket of this level was seen
    first = int(offs.min())
    base_days = T - 1 - first
    y = counts[:, -1]
    u_arr = np.asarray(uniq.get_level_values(0))
    c_arr = np.asarray(uniq.get_level_values(1))
    if base_days < EARS_MIN_DAYS:
        notes.append(f"{level}: only {max(base_days, 0)} day(s) of history before {night}; no surge test")
        return pd.DataFrame(), notes
    if base_days >= params.glm_min_days:
        base = counts[:, first : T - 1]
        all_days = [start + dt.timedelta(days=int(i)) for i in range(first, T)]
        dows, boost = _effective_dows(all_days, params)
        mu = np.zeros(S)
        p = np.ones(S)
        for cat in np.unique(c_arr):
            rows = np.flatnonzero(c_arr == cat)
            f = _dow_effects(base[rows].sum(axis=0), dows[:-1])
            a = base[rows].sum(axis=1) / f[dows[:-1]].sum()  # closed-form series intercepts
            fitted = np.outer(a, f[dows[:-1]])
            alpha = _nb_alpha(base[rows].ravel(), fitted.ravel())
            mu[rows] = a * f[dows[-1]] * boost
            p[rows] = _upper_tail(y[rows], mu[rows], alpha)
        method = "glm_nb"
    else:
        lo, hi = max(first, T - 1 - 9), T - 1 - 2  # 7 baseline days, 2-day guard band
        if hi - lo < EARS_MIN_DAYS:
            lo, hi = first, T - 1
        win = counts[:, lo:hi]
        _, boost = _effective_dows([night], params)
        mu = win.mean(axis=1) * boost
        sd = np.maximum(win.std(axis=1, ddof=1) if win.shape[1] > 1 else np.zeros(S), 0.5)
        p = stats.norm.sf((y - mu) / sd)
        method = "ears_c2"
        notes.append(f"{level}: {base_days} day(s) of history; EARS C2 instead of the GLM")
    out = pd.DataFrame(
        {
            "level": level,
            "unit": u_arr,
            "category": c_arr,
            "observed": y.astype(int),
            "expected": np.round(mu, 3),
            "p": p,
            "method": method,
            "history_days": base_days,
        }
    )
    return out, notes


def _effective_dows(days: list[dt.date], params: SurgeParams) -> tuple[np.ndarray, float]:
    """Day-of-week codes with holidays as Sundays and 调休 working days as Mondays, and the factor
    for the last day (1 + catchup_boost on a post-holiday catch-up day, else 1)."""
    dows = np.array([d.weekday() for d in days])
    if not params.holidays:
        return dows, 1.0
    from triage.hotspots.holidays import day_types

    kinds = day_types(list(days))
    dows = np.array(
        [6 if k == "holiday" else 0 if k == "workday" else w for k, w in zip(kinds, dows, strict=True)]
    )
    return dows, (1.0 + params.catchup_boost) if kinds[-1] == "catchup" else 1.0


def detect_surges(
    df: pd.DataFrame,
    night: dt.date,
    params: SurgeParams | None = None,
    levels: dict[str, str] | None = None,
) -> SurgeResult:
    """Surges of one night. ``df`` has a ``day`` column (date-like) and ``category`` plus one column
    per level (default: ``street`` and ``district``). Rows after the night are ignored (future
    timestamps), rows with no unit are skipped for that level."""
    params = params or SurgeParams()
    levels = levels or {"street": "street", "district": "district"}
    notes: list[str] = []
    if df.empty:
        return SurgeResult(pd.DataFrame(columns=_COLUMNS), ["no tickets"], 0)
    days = pd.to_datetime(df["day"]).to_numpy().astype("datetime64[D]")
    future = int((days > np.datetime64(night, "D")).sum())
    if future:
        notes.append(f"{future} ticket(s) dated after {night} ignored")
    frames = []
    for level, col in levels.items():
        ok = df[col].notna().to_numpy() & df["category"].notna().to_numpy()
        part, n = _series_scores(
            df[col].to_numpy()[ok].astype(str),
            df["category"].to_numpy()[ok].astype(str),
            days[ok],
            night,
            params,
            level,
        )
        notes += n
        if not part.empty:
            frames.append(part)
    if not frames:
        return SurgeResult(pd.DataFrame(columns=_COLUMNS), notes, 0)
    out = pd.concat(frames, ignore_index=True)
    out["q"] = benjamini_hochberg(out["p"].to_numpy())
    out["significant"] = (out["q"] <= params.fdr) & (out["observed"] >= params.min_count)
    out = out.sort_values(["significant", "q", "observed"], ascending=[False, True, False])
    return SurgeResult(out[_COLUMNS].reset_index(drop=True), notes, len(out))


_COLUMNS = [
    "level",
    "unit",
    "category",
    "observed",
    "expected",
    "p",
    "q",
    "method",
    "history_days",
    "significant",
]
