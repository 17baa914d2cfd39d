"""``gridcore learn``: read the stored history, train each kind of model with its held-out
scores beside the baselines, store it, and activate it unless it is worse than the active one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from gridcore.intelligence.errors import NotEnoughHistory
from gridcore.intelligence.training import Trained, activation
from layers.intelligence import models
from layers.intelligence.forecasts import store_forecast
from layers.intelligence.history import (
    class_terms,
    department_names,
    read_history,
    read_inventory,
    read_sendbacks,
)

NEEDS_TIMEZONE = ("the forecast counts the city's weeks (Monday 00:00 in its time zone): pass "
                  "timezone, the settings' cases.city_timezone")


@dataclass
class Learned:
    kind: str
    trained: Trained | None
    stored: models.StoredModel | None
    activated: bool
    why: str  # why it was (not) activated, or why nothing was trained


def _train(kind: str, engine: Engine, since: datetime | None, until: datetime | None,
           timezone: str | None) -> Trained:
    """One model of ``kind``; :func:`learn` has refused a forecast without ``timezone``."""
    history = read_history(engine, since, until)
    if kind == "classify":
        from gridcore.intelligence.training import train_classifier
        return train_classifier(history, class_terms(engine))
    if kind == "dispatch":
        from gridcore.intelligence.training import train_dispatch
        return train_dispatch(history, read_sendbacks(engine, since, until),
                              departments=department_names(engine))
    from gridcore.intelligence.forecasting import train_forecast
    assert timezone is not None  # learn() refuses a forecast without one
    return train_forecast(history, timezone=timezone, inventory=read_inventory(engine),
                          now=until or datetime.now(UTC))


def _city_clock(t: datetime | None, timezone: str | None) -> datetime | None:
    """A naive bound is the city's wall clock (as naive case times are on import)."""
    if t is None or t.tzinfo is not None or timezone is None:
        return t
    return t.replace(tzinfo=ZoneInfo(timezone))


def learn(engine: Engine, kinds: Sequence[str] = models.KINDS, *, evaluate_only: bool = False,
          since: datetime | None = None, until: datetime | None = None,
          trained_by: str = "", force: bool = False,
          timezone: str | None = None) -> list[Learned]:
    """Train every kind in ``kinds``; store and activate each unless ``evaluate_only``, or it is
    worse than the active model of its kind (``force`` activates anyway, and says so).

    ``timezone``: the city's (``settings.cases.city_timezone``), required for the forecast,
    whose weeks begin on Monday 00:00 there; naive ``since`` / ``until`` are then the
    city's wall clock."""
    if "forecast" in kinds and timezone is None:
        raise ValueError(NEEDS_TIMEZONE)
    since, until = _city_clock(since, timezone), _city_clock(until, timezone)
    out = []
    for kind in kinds:
        if kind not in models.KINDS:
            raise ValueError(f"unknown model kind {kind!r}; one of {', '.join(models.KINDS)}")
        try:
            trained = _train(kind, engine, since, until, timezone)
        except NotEnoughHistory as exc:
            out.append(Learned(kind, None, None, False, str(exc)))
            continue
        with engine.connect() as conn:
            row = models.active_row(conn, kind)
            active = models.load(conn, row.id, kind) if row is not None else None
        ok, why = activation(trained, active, row.data_to if row else None,
                             row.metrics if row else None)
        if evaluate_only:
            out.append(Learned(kind, trained, None, False,
                               f"evaluated only (would {'' if ok else 'not '}activate: {why})"))
            continue
        if not ok and force:
            ok, why = True, f"activated by --force although worse: {why}"
        with engine.begin() as conn:
            stored = models.store(conn, trained, activate=ok, trained_by=trained_by,
                                  note=why)
            if trained.outputs is not None:
                store_forecast(conn, stored.id, trained.outputs)
        out.append(Learned(kind, trained, stored, ok, why))
    return out
