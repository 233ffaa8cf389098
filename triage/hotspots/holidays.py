"""Chinese public holidays and 调休 make-up working days, for the surge baselines.

Source: the ``chinesecalendar`` package (the State Council's yearly schedule, maintained upstream)
plus ``taxonomy/holidays.csv``, which an operator extends for years the package does not know yet
(and which overrides it). A malformed row is refused naming the file and line.

Day types: ``holiday`` (a day off that is not an ordinary weekend, or a holiday falling on one),
``workday`` (a weekend day worked, 调休), ``catchup`` (the first working day after a break of ≥ 3 days
off: the backlog of the holiday arrives), else ``normal``.
"""

from __future__ import annotations

import csv
import datetime as dt
from functools import lru_cache
from pathlib import Path

KINDS = ("holiday", "workday")


def _path() -> Path:
    from triage.config import get_settings

    return get_settings().taxonomy_dir / "holidays.csv"


def read_holiday_file(path: Path | str) -> dict[dt.date, str]:
    """``{date: 'holiday'|'workday'}`` from the operator's file; comment lines start with '#'."""
    path = Path(path)
    out: dict[dt.date, str] = {}
    if not path.exists():
        return out
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = [
            (i, line)
            for i, line in enumerate(fh, start=1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
    if not rows:
        return out
    header = next(csv.reader([rows[0][1]]))
    if [h.strip() for h in header[:2]] != ["date", "kind"]:
        raise ValueError(
            f"{path}:{rows[0][0]}: the header must start with 'date,kind' (got {rows[0][1].strip()!r})"
        )
    for lineno, line in rows[1:]:
        cells = next(csv.reader([line]))
        raw = cells[0].strip() if cells else ""
        try:
            day = dt.date.fromisoformat(raw)
            if len(raw) != 10:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{path}:{lineno}: unknown date format {raw!r} in column 'date' (expected YYYY-MM-DD, e.g. 2027-10-01)"
            ) from None
        kind = cells[1].strip() if len(cells) > 1 else ""
        if kind not in KINDS:
            raise ValueError(f"{path}:{lineno}: column 'kind' must be holiday or workday (got {kind!r})")
        out[day] = kind
    return out


@lru_cache(maxsize=4)
def _overrides(path: str) -> dict[dt.date, str]:
    return read_holiday_file(path)


def day_kind(day: dt.date, path: Path | str | None = None) -> str:
    """'holiday', 'workday' (调休) or 'normal' (an ordinary weekday or weekend)."""
    import chinese_calendar

    over = _overrides(str(path or _path()))
    if day in over:
        return over[day]
    try:
        off = chinese_calendar.is_holiday(day)
    except NotImplementedError:  # a year the package does not know: the file, else ordinary days
        return "normal"
    weekend = day.weekday() >= 5
    if off and not weekend:
        return "holiday"
    if weekend and not off:
        return "workday"
    if off and weekend and chinese_calendar.get_holiday_detail(day)[1] is not None:
        return "holiday"
    return "normal"


def day_types(days: list[dt.date], path: Path | str | None = None) -> list[str]:
    """Each day's type, with ``catchup`` for the first working day after ≥ 3 consecutive days off
    (counted over the 7 days before it)."""
    kinds = [day_kind(d, path) for d in days]
    out = []
    for d, k in zip(days, kinds, strict=True):
        if k == "normal" and d.weekday() < 5 or k == "workday":
            off = 0
            x = d - dt.timedelta(days=1)
            while off < 10:
                kx = day_kind(x, path)
                if kx == "holiday" or (kx == "normal" and x.weekday() >= 5):
                    off += 1
                    x -= dt.timedelta(days=1)
                else:
                    break
            has_holiday = any(
                day_kind(d - dt.timedelta(days=i), path) == "holiday" for i in range(1, off + 1)
            )
            out.append("catchup" if off >= 3 and has_holiday else k)
        else:
            out.append(k)
    return out
