"""Problems before they are reported (未诉先办 / 全域预警): expected cases per area × class.

For every area (grid, community…) and class, the number of cases expected next week, learnt from
the weekly history: the recent level (last 1-4, 13 and 52 weeks), the same weeks a year before
(season), the trend of the class across the whole city and of everything in the area, how long
the series has run, and — when the storage side provides them — the city-part inventory (parts
of that class in the area, how many damaged) and past repeat problems. A gradient-boosted model
with a Poisson loss learns how these combine; counts are small, so it predicts a rate.

``warnings`` flags an area × class whose observed count is improbably high for its expectation
(a Poisson upper tail), the "this grid runs far above normal today" signal (全域预警).
No I/O: cases come in as a DataFrame and forecasts go out as one.

A week is the city's: it begins on Monday 00:00 in the city's time zone (``city_timezone`` of
the settings' ``cases`` section, passed down by the caller) and is named by that Monday's date
(:func:`city_weeks`). Every count of the forecast — the training panel, the full-weeks cut, the
stored rows' ``week``, the observed counts of the warnings (SQL in ``layers.intelligence``) —
follows this one rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.stats import poisson
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from gridcore.intelligence.errors import NotEnoughHistory, NotFitted

FEATURES = ("lag1", "lag2", "lag3", "lag4", "mean4", "mean13", "mean52", "last_year",
            "area_mean4", "area_mean52", "class_mean4", "class_mean52", "age_weeks",
            "woy_sin", "woy_cos", "repeats13", "parts", "damaged")


def city_times(times: pd.Series, timezone: str | None) -> pd.Series:
    """Times as the city's wall clock (naive): aware times are converted to ``timezone``; naive
    ones are taken as the city's wall-clock time already (the rule of the case import: a time
    without an offset is local time). Aware times without a ``timezone`` are refused: which
    week they fall in depends on the city."""
    at = pd.to_datetime(times)
    if at.dtype == object:  # aware times of mixed offsets: one zone first
        at = pd.to_datetime(at, utc=True)
    tz = getattr(at.dt, "tz", None)
    if tz is None:
        return at
    if timezone is None:
        raise ValueError("aware case times need the city's time zone to be counted in weeks")
    return at.dt.tz_convert(timezone).dt.tz_localize(None)


def city_weeks(times: pd.Series, timezone: str | None) -> pd.Series:
    """The week of each time: the Monday 00:00 that begins it on the city's wall clock, as a
    naive Timestamp (read it as the date of the city's Monday). See :func:`city_times`."""
    return city_times(times, timezone).dt.to_period("W-SUN").dt.start_time


def city_week_of(stamp: datetime | pd.Timestamp, timezone: str | None) -> pd.Timestamp:
    """The week of one time (:func:`city_weeks`)."""
    return pd.Timestamp(city_weeks(pd.Series([pd.Timestamp(stamp)]), timezone).iloc[0])


def week_bounds(monday: date, timezone: str) -> tuple[datetime, datetime]:
    """The instants a city's week begins and ends (end exclusive): Monday 00:00 to the next
    Monday 00:00 in ``timezone`` (168 hours, or one more or less across a daylight-saving
    change)."""
    tz = ZoneInfo(timezone)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=tz)
    nxt = monday + timedelta(days=7)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)


@dataclass
class Panel:
    """Weekly counts: one row per (area, class) series, one column per week.

    ``weeks`` are the city's Mondays (:func:`city_weeks`: naive, midnight, read as dates)."""

    keys: pd.DataFrame  # columns area, category; row i = series i
    weeks: pd.DatetimeIndex
    counts: NDArray[np.float64]  # series × weeks
    first: NDArray[np.intp]  # first week with a case, per series
    repeats: NDArray[np.float64]  # series × weeks: repeat cases (0 when not given)
    parts: NDArray[np.float64]  # per series: city parts of the class in the area (0 unknown)
    damaged: NDArray[np.float64]  # per series: of which damaged / missing


def weekly_panel(cases: pd.DataFrame, *, area: str = "area", category: str = "category",
                 at: str = "at", repeat: str | None = None,
                 inventory: pd.DataFrame | None = None,
                 until: pd.Timestamp | None = None, timezone: str | None = None) -> Panel:
    """Weekly counts per (area, class) from one row per case, in the city's weeks (Monday
    00:00 in ``timezone``, :func:`city_weeks`; naive times are read as the city's wall clock).

    ``repeat`` names a boolean column (the case repeats an earlier problem at the same place);
    ``inventory`` has columns area, category, parts, damaged (city parts, 部件)."""
    if cases.empty:
        raise NotEnoughHistory("no cases to count")
    week = city_weeks(cases[at], timezone)
    last = week.max() if until is None else city_week_of(until, timezone)
    weeks = pd.date_range(week.min(), last, freq="7D")
    frame = pd.DataFrame({"area": cases[area].astype(str).to_numpy(),
                          "category": cases[category].astype(str).to_numpy(),
                          "w": ((week - weeks[0]).dt.days // 7).to_numpy(),
                          "r": cases[repeat].astype(float).to_numpy() if repeat else 0.0})
    frame = frame[frame.w < len(weeks)]
    keys = frame[["area", "category"]].drop_duplicates().sort_values(["area", "category"])
    keys = keys.reset_index(drop=True)
    sid = frame.merge(keys.reset_index(), on=["area", "category"])["index"].to_numpy()
    counts = np.zeros((len(keys), len(weeks)))
    repeats = np.zeros_like(counts)
    np.add.at(counts, (sid, frame.w.to_numpy()), 1.0)
    np.add.at(repeats, (sid, frame.w.to_numpy()), frame.r.to_numpy())
    first = np.argmax(counts > 0, axis=1).astype(np.intp)
    parts = np.zeros(len(keys))
    damaged = np.zeros(len(keys))
    if inventory is not None:
        inv = keys.merge(inventory.astype({"area": str, "category": str}),
                         on=["area", "category"], how="left")
        parts = inv["parts"].fillna(0).to_numpy(dtype=float)
        damaged = inv["damaged"].fillna(0).to_numpy(dtype=float)
    return Panel(keys, weeks, counts, first, repeats, parts, damaged)


def _trailing_mean(x: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """Mean of weeks t-window … t-1 for every t (columns), zeros padded before the start."""
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    t = np.arange(x.shape[1])
    lo = np.maximum(t - window, 0)
    return np.asarray((c[:, t] - c[:, lo]) / window, dtype=np.float64)


def _lag(x: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    out = np.zeros_like(x)
    out[:, k:] = x[:, :-k]
    return out


def feature_cube(panel: Panel) -> NDArray[np.float64]:
    """Features of every (series, week) from the weeks before it only: series × weeks × F."""
    c = panel.counts
    n, w = c.shape
    area_codes = pd.factorize(panel.keys["area"])[0]
    class_codes = pd.factorize(panel.keys["category"])[0]
    area_tot = np.zeros((area_codes.max() + 1, w))
    np.add.at(area_tot, area_codes, c)
    class_tot = np.zeros((class_codes.max() + 1, w))
    np.add.at(class_tot, class_codes, c)
    n_area = np.bincount(area_codes).astype(float)[area_codes, None]
    n_class = np.bincount(class_codes).astype(float)[class_codes, None]
    woy = panel.weeks.isocalendar().week.to_numpy(dtype=float)
    year_ago = (_lag(c, 51) + _lag(c, 52) + _lag(c, 53)) / 3.0
    age = np.arange(w)[None, :] - panel.first[:, None]
    cols = [_lag(c, 1), _lag(c, 2), _lag(c, 3), _lag(c, 4), _trailing_mean(c, 4),
            _trailing_mean(c, 13), _trailing_mean(c, 52), year_ago,
            _trailing_mean(area_tot, 4)[area_codes] / n_area,
            _trailing_mean(area_tot, 52)[area_codes] / n_area,
            _trailing_mean(class_tot, 4)[class_codes] / n_class,
            _trailing_mean(class_tot, 52)[class_codes] / n_class,
            np.maximum(age, 0).astype(float),
            np.broadcast_to(np.sin(2 * np.pi * woy / 52.18), (n, w)),
            np.broadcast_to(np.cos(2 * np.pi * woy / 52.18), (n, w)),
            _trailing_mean(panel.repeats, 13) * 13,
            np.broadcast_to(panel.parts[:, None], (n, w)),
            np.broadcast_to(panel.damaged[:, None], (n, w))]
    return np.stack(cols, axis=2)


class CaseForecaster:
    """Expected cases next week per area × class (未诉先办)."""

    def __init__(self, *, max_iter: int = 200, learning_rate: float = 0.05,
                 min_history_weeks: int = 8, random_state: int = 0,
                 threads: int | None = 1) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.min_history_weeks = min_history_weeks
        self.random_state = random_state
        # OpenMP threads of the gradient boosting. One by default: on a busy 2-core host its
        # spinning threads turned a 0.6 s fit into 13 s (benchmarks/README.md); None = all.
        self.threads = threads
        self._model: HistGradientBoostingRegressor | None = None

    def fit(self, panel: Panel, until: int | None = None,
            cube: NDArray[np.float64] | None = None) -> CaseForecaster:
        """Learn from the weeks before week index ``until`` (default: all weeks)."""
        end = panel.counts.shape[1] if until is None else until
        if end <= self.min_history_weeks:
            raise NotEnoughHistory(f"forecasting needs more than {self.min_history_weeks} "
                                   f"weeks of history, got {end}")
        x = feature_cube(panel) if cube is None else cube
        t = np.arange(end)
        live = (t[None, :] > panel.first[:, None]) & (t[None, :] >= 1)
        s, w = np.nonzero(live)
        if len(s) == 0 or panel.counts[s, w].sum() == 0:
            raise NotEnoughHistory("no weeks with cases to learn from")
        self._model = HistGradientBoostingRegressor(
            loss="poisson", max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0,
            random_state=self.random_state)
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            self._model.fit(x[s, w], panel.counts[s, w])
        return self

    def expected(self, panel: Panel, week: int,
                 cube: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """Expected count of every series in week index ``week`` (from the weeks before it);
        ``week`` may be one past the last column (next week)."""
        if self._model is None:
            raise NotFitted("the forecaster is not trained")
        if week >= panel.counts.shape[1]:
            more = week - panel.counts.shape[1] + 1
            weeks = pd.date_range(panel.weeks[0], periods=len(panel.weeks) + more, freq="7D")
            ext = Panel(panel.keys, weeks,
                np.pad(panel.counts, ((0, 0), (0, week - panel.counts.shape[1] + 1))),
                panel.first, np.pad(panel.repeats, ((0, 0),
                                                    (0, week - panel.counts.shape[1] + 1))),
                panel.parts, panel.damaged)
            return self.expected(ext, week)
        x = feature_cube(panel) if cube is None else cube
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            return np.asarray(self._model.predict(x[:, week]), dtype=np.float64)

    def forecast(self, panel: Panel) -> pd.DataFrame:
        """Next week's expectation for every series, highest first (the patrol list); ``week``
        is the city's Monday that begins it (naive midnight, as ``panel.weeks``)."""
        week = panel.counts.shape[1]
        mu = self.expected(panel, week)
        out = panel.keys.assign(week=panel.weeks[-1] + pd.Timedelta(days=7), expected=mu,
                                p90=poisson.ppf(0.9, np.maximum(mu, 1e-9)))
        return out.sort_values("expected", ascending=False).reset_index(drop=True)


@dataclass(frozen=True, slots=True)
class Warning_:
    """全域预警: an area × class running far above its expectation."""

    area: str
    category: str
    observed: int
    expected: float
    p_value: float

    @property
    def ratio(self) -> float:
        return self.observed / self.expected if self.expected > 0 else float("inf")


def warnings(keys: pd.DataFrame, observed: Sequence[float] | NDArray[np.float64],
             expected: Sequence[float] | NDArray[np.float64], *, alpha: float = 1e-3,
             min_count: int = 3) -> list[Warning_]:
    """Series whose observed count has a Poisson upper-tail probability below ``alpha`` under
    its expectation, and at least ``min_count`` cases; most surprising first.

    With many series some crossings are chance: ``alpha`` is per series (about one false
    warning per 1/alpha series-weeks)."""
    obs = np.asarray(observed, dtype=float)
    mu = np.maximum(np.asarray(expected, dtype=float), 1e-6)
    p = poisson.sf(obs - 1, mu)
    hit = np.nonzero((p < alpha) & (obs >= min_count))[0]
    out = [Warning_(str(keys["area"].iat[int(i)]), str(keys["category"].iat[int(i)]),
                    int(obs[i]), float(mu[i]), float(p[i])) for i in hit]
    return sorted(out, key=lambda w: w.p_value)


def poisson_deviance(y: NDArray[np.float64], mu: NDArray[np.float64]) -> float:
    """Mean Poisson deviance (mu must be > 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(np.mean(2 * (term - (y - mu))))
