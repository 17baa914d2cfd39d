"""未诉先办 / 全域预警 on a planted weekly pattern: beats naive; spikes are warned about."""

import numpy as np
import pandas as pd

from gridcore.intelligence.forecast import (
    CaseForecaster,
    feature_cube,
    poisson_deviance,
    warnings,
    weekly_panel,
)


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
    from datetime import UTC, datetime

    from gridcore.intelligence.forecasting import train_forecast

    sunday = pd.Timestamp("2026-12-06 20:00")  # the history ends on a Sunday evening
    history = _history(60, sunday)
    monday = datetime(2026, 12, 7, 9, tzinfo=UTC)
    trained = train_forecast(history, now=monday)
    # the week that ended on Sunday is complete: learnt from, and the forecast is for this week
    assert trained.outputs["week"].iloc[0] == pd.Timestamp("2026-12-07")
    assert trained.data_to is not None and trained.data_to.date().isoformat() == "2026-12-06"
    wednesday = datetime(2026, 12, 9, 9, tzinfo=UTC)  # the next week's first days reported
    more = pd.concat([history, _history(1, pd.Timestamp("2026-12-08 10:00")).head(5)])
    again = train_forecast(more, now=wednesday)
    assert again.outputs["week"].iloc[0] == pd.Timestamp("2026-12-07")  # not a week ahead
    # a legacy export that stopped long ago may be cut mid-week: its last week is left out
    old = train_forecast(history, now=datetime(2027, 6, 1, tzinfo=UTC))
    assert old.outputs["week"].iloc[0] == pd.Timestamp("2026-11-30")
