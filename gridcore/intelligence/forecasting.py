"""Learning the forecast (未诉先办 / 全域预警) from the stored history: a rolling-origin
evaluation against the naive and seasonal-naive forecasts, then next week's expectation per
area × class at each level (grid, community) for the map layer, the patrol list and warnings.

Weeks are the city's (Monday 00:00 in its time zone, ``gridcore.intelligence.forecast.
city_weeks``): the caller passes the settings' ``city_timezone``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from scipy.stats import poisson

from gridcore.intelligence.errors import NotEnoughHistory
from gridcore.intelligence.forecast import (
    FEATURES,
    CaseForecaster,
    Panel,
    city_week_of,
    city_weeks,
    feature_cube,
    poisson_deviance,
    weekly_panel,
)
from gridcore.intelligence.training import OURS, Trained

LEVELS = ("community", "grid")
LIVE_GAP = pd.Timedelta(days=2)  # a history whose last case is this recent reaches "now"
# A zero forecast has infinite deviance: each baseline gets the floor that suits it best
FLOORS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


@dataclass
class ForecastModels:
    """One forecaster per level, and the last full week they learnt from."""

    forecasters: dict[str, CaseForecaster] = field(default_factory=dict)
    last_week: pd.Timestamp | None = None


def _instants(at: pd.Series, timezone: str) -> pd.Series:
    """Aware UTC instants of the history's times; naive ones are the city's wall clock (as
    :func:`city_times` reads them: the repeated hour of a daylight-saving change taken as
    standard time, the skipped one moved forward, as the case import does)."""
    if getattr(at.dt, "tz", None) is not None:
        return at.dt.tz_convert("UTC")
    return at.dt.tz_localize(timezone, ambiguous=np.zeros(len(at), dtype=bool),
                             nonexistent="shift_forward").dt.tz_convert("UTC")


def _full_weeks(history: pd.DataFrame, timezone: str,
                now: datetime | None = None) -> pd.DataFrame:
    """The cases of full weeks only (the week in progress would read as a sudden drop), with
    ``at`` as aware UTC instants. Weeks are the city's: Monday 00:00 in ``timezone``.

    A history that reaches ``now`` (its last case within ``LIVE_GAP``: a city in service files
    cases every day) is complete up to now: every week that ended by then is full — a history
    ending on a Sunday evening keeps that week, so a model trained on Monday forecasts the
    week that has begun, not the one just past. A history that stops earlier (an import of a
    legacy system's export) may have been cut in the middle of its last week: that week is
    left out. A naive ``now`` is the city's wall clock, as naive case times are."""
    at = pd.to_datetime(history["at"])
    if at.dtype == object:
        at = pd.to_datetime(at, utc=True)
    week = city_weeks(at, timezone)
    instants = _instants(at, timezone)
    kept = history.assign(at=instants)
    if now is not None and len(at):
        stamp = pd.Timestamp(now)
        stamp = (stamp.tz_convert("UTC") if stamp.tzinfo
                 else _instants(pd.Series([stamp]), timezone).iloc[0])
        if stamp - instants.max() <= LIVE_GAP:
            return kept[week < city_week_of(stamp, timezone)]
    return kept[week < week.max()]


def rolling_scores(panel: Panel, weeks: int, refit: int) -> dict[str, dict[str, float]]:
    """One-week-ahead forecasts at each of the last ``weeks`` weeks for every series that had a
    case before, the model refitted every ``refit`` weeks on everything before the origin."""
    cube = feature_cube(panel)
    total = panel.counts.shape[1]
    ys: list[np.ndarray] = []
    preds: dict[str, list[np.ndarray]] = {
        OURS: [], "naive (last week)": [], "seasonal naive (a year ago)": []}
    model: CaseForecaster | None = None
    for k, origin in enumerate(range(total - weeks, total)):
        if k % refit == 0:
            model = CaseForecaster().fit(panel, until=origin, cube=cube)
        assert model is not None
        live = panel.first < origin
        ys.append(panel.counts[live, origin])
        preds[OURS].append(model.expected(panel, origin, cube=cube)[live])
        preds["naive (last week)"].append(cube[live, origin, FEATURES.index("lag1")])
        preds["seasonal naive (a year ago)"].append(
            cube[live, origin, FEATURES.index("last_year")])
    y = np.concatenate(ys)
    out = {}
    for name, parts in preds.items():
        mu = np.concatenate(parts)
        dev = poisson_deviance(y, np.maximum(mu, 1e-6)) if name == OURS else min(
            poisson_deviance(y, np.maximum(mu, f)) for f in FLOORS)
        mae = float(np.mean(np.abs(y - (poisson.ppf(0.5, np.maximum(mu, 1e-9))
                                        if name == OURS else mu))))
        out[name] = {"deviance": dev, "mae": mae}
    return out


def train_forecast(history: pd.DataFrame, *, timezone: str, levels: Sequence[str] = LEVELS,
                   weeks: int = 26, refit: int = 13,
                   inventory: Mapping[str, pd.DataFrame] | None = None,
                   now: datetime | None = None) -> Trained:
    """Evaluate at the first of ``levels`` over the last ``weeks`` full weeks, then fit one
    forecaster per level on every full week and forecast the week after. ``timezone``: the
    city's (its weeks begin on Monday 00:00 there; naive case times are read as its wall clock,
    and the notes say so). ``inventory`` per level: columns area, category, parts, damaged (city
    parts today: the same for every week). ``now``: when the model is trained (the week in
    progress then is left out). The outputs' ``week`` is the date of the city's Monday that
    begins the forecast week."""
    given = history[history["category"].notna()]
    stamps = pd.to_datetime(given["at"])
    naive = len(given) > 0 and stamps.dtype != object and getattr(stamps.dt, "tz", None) is None
    h = _full_weeks(given, timezone, now)
    panels = {}
    for level in levels:
        cases = h[h[level].notna() & (h[level] != "")]
        if len(cases):
            inv = (inventory or {}).get(level)
            panels[level] = weekly_panel(cases, area=level, category="category", at="at",
                                         inventory=inv if inv is not None and len(inv) else None,
                                         timezone=timezone)
    if levels[0] not in panels or panels[levels[0]].counts.shape[1] < weeks + 16:
        raise NotEnoughHistory(f"forecasting needs ≥ {weeks + 16} full weeks of cases with a "
                               f"{levels[0]}; the history has "
                               f"{panels[levels[0]].counts.shape[1] if levels[0] in panels else 0}")
    main = panels[levels[0]]
    scores = rolling_scores(main, weeks, refit)
    n = int(sum(int((main.first < o).sum()) for o in range(main.counts.shape[1] - weeks,
                                                           main.counts.shape[1])))
    models = ForecastModels(last_week=main.weeks[-1])
    rows = []
    for level, panel in panels.items():
        f = CaseForecaster().fit(panel)
        models.forecasters[level] = f
        rows.append(f.forecast(panel).assign(level=level))
    out = pd.concat(rows, ignore_index=True)
    return Trained(
        "forecast", models, scores, "deviance",
        f"rolling origin over the last {weeks} full weeks at {levels[0]} × class level "
        f"({main.counts.shape[0]} series, {n} series-weeks; refit every {refit} weeks; "
        "MAE of the model at its Poisson median)",
        None, {"levels": list(panels), "weeks": weeks, "refit": refit, "timezone": timezone},
        pd.Timestamp(h["at"].min()).to_pydatetime(), pd.Timestamp(h["at"].max()).to_pydatetime(),
        len(h), [f"forecast for the week of {out['week'].iloc[0]:%Y-%m-%d} (Monday 00:00 "
                 f"{timezone})"]
        + ([f"{len(given)} case times had no time zone: read as {timezone} wall-clock time"]
           if naive else []),
        outputs=out)
