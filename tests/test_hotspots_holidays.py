"""Holidays in the surge baselines: a generated National Day week and its catch-up day give no
false surge; the operator's holiday file is read, and a bad date is refused naming file and line."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from triage.hotspots.holidays import day_types, read_holiday_file
from triage.hotspots.surges import SurgeParams, detect_surges


def test_official_calendar_and_catchup():
    days = [dt.date(2026, 9, 30) + dt.timedelta(days=i) for i in range(11)]
    kinds = dict(zip(days, day_types(days), strict=True))
    assert kinds[dt.date(2026, 10, 1)] == "holiday" and kinds[dt.date(2026, 10, 7)] == "holiday"
    assert kinds[dt.date(2026, 10, 8)] == "catchup"  # first working day after the break
    assert kinds[dt.date(2026, 10, 10)] == "workday"  # Saturday worked (调休)
    assert kinds[dt.date(2026, 10, 9)] == "normal"


def test_operator_file_extends_and_bad_dates_are_named(tmp_path):
    f = tmp_path / "holidays.csv"
    f.write_text(
        "# comment\ndate,kind,name\n2027-10-01,holiday,国庆节\n2027-09-26,workday,调休\n", encoding="utf-8"
    )
    assert read_holiday_file(f) == {dt.date(2027, 10, 1): "holiday", dt.date(2027, 9, 26): "workday"}
    assert day_types([dt.date(2027, 10, 1)], f) == ["holiday"]
    f.write_text("date,kind,name\n2027-10-01,holiday,国庆节\n2027/10/02,holiday,国庆节\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"holidays\.csv:3: unknown date format '2027/10/02'"):
        read_holiday_file(f)
    f.write_text("date,kind\n2027-10-01,vacation\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"holidays\.csv:2: column 'kind'"):
        read_holiday_file(f)


def _frame() -> pd.DataFrame:
    from triage.synth import generate_tickets

    res = generate_tickets(60000, seed=7, start=dt.date(2026, 7, 20), end=dt.date(2026, 10, 16),
                           surges=False, events=False, holidays=True)  # fmt: skip
    t = res.tickets
    return pd.DataFrame({"day": pd.to_datetime(t["received_at"]).dt.date, "category": t["category"],
                         "street": t["true_street_code"], "district": t["true_street_code"].str[:6]})  # fmt: skip


def test_holiday_week_and_catchup_give_no_false_surge():
    df = _frame()
    nights = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(10)]  # the week, catch-up, 调休
    false = {n: int(detect_surges(df, n).signals["significant"].sum()) for n in nights}
    assert sum(false.values()) == 0, false
    # the catch-up day expects the backlog: district expectations ~1.6× those of a calendar-blind model
    night = dt.date(2026, 10, 8)
    aware = detect_surges(df, night).signals.set_index(["level", "unit", "category"])["expected"]
    blind = detect_surges(df, night, SurgeParams(holidays=False)).signals.set_index(
        ["level", "unit", "category"]
    )
    both = aware.to_frame("aware").join(blind["expected"].rename("blind"), how="inner").loc["district"]
    assert 1.3 < (both["aware"].sum() / both["blind"].sum()) < 2.0
