"""未诉先办 / 全域预警 on a planted weekly pattern: beats naive; spikes are warned about; weeks
are the city's (Monday 00:00 in its time zone)."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from gridcore.intelligence.forecast import (
    CaseForecaster,
    city_weeks,
    feature_cube,
    poisson_deviance,
    warnings,
    week_bounds,
    weekly_panel,
)

SH, HEL = "Asia/Shanghai", "Europe/Helsinki"


def planted_cases(weeks: int = 160, seed: int = 0) -> pd.DataFrame:
    """Lamps fail in winter (annual cycle) and more in grid g1; covers are steady."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2020-01-06")
    for w in range(weeks):
        season = 1.0 + 0.8 * np.cos(2 * np.pi * w / 52)
        for grid, level in (("g1", 4.0), ("g2", 1.5), ("g3", 0.5)):
            for cat, rate in (("lamp", level * season), ("cover", level * 0.6)):
                for _ in range(rng.poisson(rate)):
                    at = start + pd.Timedelta(days=7 * w) + pd.Timedelta(
                        hours=int(rng.integers(0, 24 * 7)))
                    rows.append({"area": grid, "category": cat, "at": at})
    return pd.DataFrame(rows)


def test_forecast_beats_naive_on_a_planted_pattern() -> None:
    panel = weekly_panel(planted_cases())
    cube = feature_cube(panel)
    weeks = panel.counts.shape[1]
    model = CaseForecaster().fit(panel, until=weeks - 26, cube=cube)
    ys, mus, naive = [], [], []
    for w in range(weeks - 26, weeks):
        ys.append(panel.counts[:, w])
        mus.append(model.expected(panel, w, cube=cube))
        naive.append(panel.counts[:, w - 1])
    y, mu, nv = np.concatenate(ys), np.concatenate(mus), np.concatenate(naive)
    assert np.mean(np.abs(y - mu)) < np.mean(np.abs(y - nv))
    assert poisson_deviance(y, mu) < poisson_deviance(y, np.maximum(nv, 0.1))


def test_next_week_forecast_is_a_ranked_list() -> None:
    panel = weekly_panel(planted_cases(120))
    out = CaseForecaster().fit(panel).forecast(panel)
    assert list(out.columns) == ["area", "category", "week", "expected", "p90"]
    assert out.iloc[0].area == "g1"
    assert (out.expected > 0).all()
    assert out.week.nunique() == 1 and out.week.iloc[0] > panel.weeks[-1]


def test_a_spike_is_warned_about_and_normal_weeks_are_not() -> None:
    keys = pd.DataFrame({"area": ["g1", "g2", "g3"], "category": ["lamp"] * 3})
    found = warnings(keys, [12, 3, 1], [2.0, 2.5, 0.8])
    assert [w.area for w in found] == ["g1"]
    assert found[0].ratio == 6.0 and found[0].p_value < 1e-3


def _history(weeks: int, end: pd.Timestamp) -> pd.DataFrame:
    """``weeks`` weeks of planted cases whose last one falls on ``end``'s day."""
    cases = planted_cases(weeks)
    shift = end.normalize() - cases["at"].max().normalize()
    at = (cases["at"] + shift).dt.tz_localize("UTC")
    return pd.DataFrame({"at": at, "category": cases["category"], "community": cases["area"],
                         "grid": cases["area"] + "-1"})


def test_the_forecast_is_for_the_week_in_progress_when_trained() -> None:
    from gridcore.intelligence.forecasting import train_forecast

    sunday = pd.Timestamp("2026-12-06 20:00")  # the history ends on a Sunday evening
    history = _history(60, sunday)
    monday = datetime(2026, 12, 7, 9, tzinfo=UTC)
    trained = train_forecast(history, timezone="UTC", now=monday)
    # the week that ended on Sunday is complete: learnt from, and the forecast is for this week
    assert trained.outputs["week"].iloc[0] == pd.Timestamp("2026-12-07")
    assert trained.data_to is not None and trained.data_to.date().isoformat() == "2026-12-06"
    wednesday = datetime(2026, 12, 9, 9, tzinfo=UTC)  # the next week's first days reported
    more = pd.concat([history, _history(1, pd.Timestamp("2026-12-08 10:00")).head(5)])
    again = train_forecast(more, timezone="UTC", now=wednesday)
    assert again.outputs["week"].iloc[0] == pd.Timestamp("2026-12-07")  # not a week ahead
    # a legacy export that stopped long ago may be cut mid-week: its last week is left out
    old = train_forecast(history, timezone="UTC", now=datetime(2027, 6, 1, tzinfo=UTC))
    assert old.outputs["week"].iloc[0] == pd.Timestamp("2026-11-30")


def _utc(*args: int) -> pd.Timestamp:
    return pd.Timestamp(datetime(*args, tzinfo=UTC))


def test_a_week_begins_on_monday_midnight_of_the_city() -> None:
    # Shanghai: Sunday 23:30 (15:30 UTC) is that week's, Monday 00:30 (Sunday 16:30 UTC) the next
    at = pd.Series([_utc(2026, 12, 6, 15, 30), _utc(2026, 12, 6, 16, 30)])
    assert list(city_weeks(at, SH)) == [pd.Timestamp("2026-11-30"), pd.Timestamp("2026-12-07")]
    # Helsinki (UTC+2 in winter) follows its own: both are still its Sunday evening …
    assert list(city_weeks(at, HEL)) == [pd.Timestamp("2026-11-30")] * 2
    # … and its own boundary is at 22:00 UTC
    at = pd.Series([_utc(2026, 12, 6, 21, 30), _utc(2026, 12, 6, 22, 30)])
    assert list(city_weeks(at, HEL)) == [pd.Timestamp("2026-11-30"), pd.Timestamp("2026-12-07")]
    assert list(city_weeks(at, SH)) == [pd.Timestamp("2026-12-07")] * 2
    # naive times are the city's wall clock already (the case import's rule)
    naive = pd.Series([pd.Timestamp("2026-12-06 23:30"), pd.Timestamp("2026-12-07 00:30")])
    assert list(city_weeks(naive, SH)) == [pd.Timestamp("2026-11-30"), pd.Timestamp("2026-12-07")]
    with pytest.raises(ValueError, match="time zone"):
        city_weeks(pd.Series([_utc(2026, 12, 6, 15, 30)]), None)


def test_a_week_runs_between_two_city_mondays_even_across_a_clock_change() -> None:
    start, end = week_bounds(date(2026, 12, 7), SH)
    assert start.isoformat() == "2026-12-07T00:00:00+08:00"
    assert end.isoformat() == "2026-12-14T00:00:00+08:00"
    start, end = week_bounds(date(2026, 3, 23), HEL)  # summer time from Sunday 29 March
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == 167 * 3600
    assert start.utcoffset() != end.utcoffset()


def test_the_panel_counts_the_city_weeks() -> None:
    cases = pd.DataFrame({"area": "g1", "category": "lamp",
                          "at": [_utc(2026, 11, 30, 2), _utc(2026, 12, 6, 15, 30),
                                 _utc(2026, 12, 6, 16, 30)]})
    panel = weekly_panel(cases, timezone=SH)
    assert list(panel.weeks) == [pd.Timestamp("2026-11-30"), pd.Timestamp("2026-12-07")]
    assert panel.counts.tolist() == [[2.0, 1.0]]
    panel = weekly_panel(cases, timezone=HEL)  # all three in Helsinki's week of 30 November
    assert list(panel.weeks) == [pd.Timestamp("2026-11-30")]
    assert panel.counts.tolist() == [[3.0]]
    with pytest.raises(ValueError, match="time zone"):
        weekly_panel(cases)


def test_the_week_in_progress_is_cut_at_the_city_monday() -> None:
    from gridcore.intelligence.forecasting import train_forecast

    history = _history(60, pd.Timestamp("2026-12-05 12:00"))  # the last case on Saturday
    late = history.tail(1).assign(at=[_utc(2026, 12, 6, 15, 30)])  # Sunday 23:30 in Shanghai
    history = pd.concat([history, late], ignore_index=True)
    monday = datetime(2026, 12, 7, 0, 30, tzinfo=ZoneInfo(SH))  # Sunday 16:30 UTC
    trained = train_forecast(history, timezone=SH, now=monday)
    # the Shanghai week that ended at Sunday midnight is full: learnt from, and the forecast
    # is for the week that began on Monday 7 December in Shanghai
    assert trained.outputs["week"].iloc[0] == pd.Timestamp("2026-12-07")
    assert trained.data_to == _utc(2026, 12, 6, 15, 30).to_pydatetime()
    assert trained.params["timezone"] == SH
    assert "Monday 00:00 Asia/Shanghai" in trained.notes[0]
    # Helsinki at that instant: still Sunday afternoon, its week in progress left out
    trained = train_forecast(history, timezone=HEL, now=monday)
    assert trained.outputs["week"].iloc[0] == pd.Timestamp("2026-11-30")


def test_naive_case_times_are_read_as_the_city_clock_and_said() -> None:
    from gridcore.intelligence.forecasting import train_forecast

    history = _history(60, pd.Timestamp("2026-12-06 20:00"))
    naive = history.assign(at=history["at"].dt.tz_convert(SH).dt.tz_localize(None))
    aware = train_forecast(history, timezone=SH, now=datetime(2026, 12, 7, 9, tzinfo=UTC))
    read = train_forecast(naive, timezone=SH, now=datetime(2026, 12, 7, 17))  # city clock
    assert read.outputs["week"].iloc[0] == aware.outputs["week"].iloc[0]
    assert read.data_to == aware.data_to and read.data_to is not None
    assert read.data_to.tzinfo is not None  # stored as an instant, not a naive time
    assert any(f"read as {SH} wall-clock time" in n for n in read.notes)
    assert not any("no time zone" in n for n in aware.notes)
