"""The forecast (未诉先办 / 全域预警) counts the city's weeks — Monday 00:00 in the city's time
zone — on a real PostGIS: the training panel, the full-weeks cut, the stored rows' ``week`` and
the warnings' observed counts (SQL) agree, in Shanghai and in a city of another zone. The
embedded cluster's sessions run in UTC, so a week counted in the session's zone shows here."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from gridcore.intelligence.forecast import city_weeks, weekly_panel
from gridcore.settings import CaseSettings, Settings
from layers.intelligence.history import read_history
from layers.intelligence.learning import learn
from tests.support.cases import GRID_001, plant
from tests.support.database import serving
from tests.support.intel_planting import import_history
from tests.support.security import admin_headers

SH, HEL = "Asia/Shanghai", "Europe/Helsinki"
# import_history's 60 weeks run from Monday 1 January 2024 to Sunday 23 February 2025 (their
# times are Shanghai's, read so by the import); the forecast week is the one after.
LAST_MONDAY = date(2025, 2, 17)
FORECAST_MONDAY = date(2025, 2, 24)


def _at(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))


def _move(db: Engine, ids: list[int], times: list[datetime]) -> None:
    """Cases reported at other times (the report time is the partition key: the case registry
    moves with it, its key checked at commit)."""
    with db.begin() as conn:
        for i, t in zip(ids, times, strict=True):
            for table in ("case_key", "case_record"):
                conn.execute(text(f"UPDATE {table} SET created_at = :t WHERE id = :i"),
                             {"t": t, "i": i})


def _ids(db: Engine, sql: str, n: int, **params: object) -> list[int]:
    with db.connect() as conn:
        ids = [int(r[0]) for r in conn.execute(text(sql), params)]
    assert len(ids) >= n
    return ids[:n]


def test_a_sunday_evening_counts_in_its_week_and_a_monday_morning_in_the_next(
        db: Engine, tmp_path: Path) -> None:
    plant(db)
    import_history(db, tmp_path, weeks=60)
    sunday, monday = _ids(db, "SELECT id FROM case_record ORDER BY created_at DESC", 2)
    _move(db, [sunday, monday], [_at(SH, 2025, 2, 23, 23, 30),   # 15:30 UTC
                                 _at(SH, 2025, 2, 24, 0, 30)])   # Sunday 16:30 UTC
    history = read_history(db)
    weeks = city_weeks(history.set_index("id")["at"], SH)
    assert weeks[sunday] == pd.Timestamp(LAST_MONDAY)
    assert weeks[monday] == pd.Timestamp(FORECAST_MONDAY)
    panel = weekly_panel(history, area="grid", timezone=SH)
    assert panel.weeks[-1] == pd.Timestamp(FORECAST_MONDAY)
    assert panel.counts[:, -1].sum() == 1  # Monday 00:30's case alone
    # trained at Monday 01:00 in Shanghai: the week that ended at midnight is full, the one
    # that began then (one case so far) is left out, and the forecast is for it
    [done] = learn(db, ["forecast"], timezone=SH, until=_at(SH, 2025, 2, 24, 1))
    assert done.trained is not None and done.activated, done.why
    assert done.trained.data_to == _at(SH, 2025, 2, 23, 23, 30)
    with db.connect() as conn:
        stored = conn.execute(text("SELECT DISTINCT week FROM case_forecast")).scalars().all()
    assert stored == [FORECAST_MONDAY]


@pytest.mark.parametrize("tz", [SH, HEL])
def test_the_warnings_count_the_forecast_week_as_the_panel_does(
        db: Engine, tmp_path: Path, tz: str) -> None:
    plant(db)
    import_history(db, tmp_path, weeks=60)
    [done] = learn(db, ["forecast"], timezone=tz, until=_at(tz, 2025, 2, 24, 1))
    assert done.activated, done.why
    # lamps of grid 001 from the first weeks moved into the forecast week and around it
    lamps = _ids(db, "SELECT id FROM case_record WHERE grid_code = :g AND category_key = "
                 "'P0120' ORDER BY created_at", 14, g=GRID_001)
    _move(db, lamps, [_at(tz, 2025, 2, 25, 10)] * 10       # Tuesday: in
          + [_at(tz, 2025, 2, 24, 0, 30)]                  # Monday 00:30: in
          + [_at(tz, 2025, 2, 23, 23, 30)]                 # the Sunday before: out
          + [_at(tz, 2025, 3, 3, 0, 30)] * 2)              # the next Monday 00:30: out
    panel = weekly_panel(read_history(db), area="grid", timezone=tz)
    row = panel.keys.index[(panel.keys.area == GRID_001) & (panel.keys.category == "P0120")][0]
    in_panel = panel.counts[row, list(panel.weeks).index(pd.Timestamp(FORECAST_MONDAY))]
    assert in_panel == 11
    settings = Settings(cases=CaseSettings(media_dir=tmp_path / "media", city_timezone=tz))
    with serving(db, settings) as client:
        h = admin_headers(client.app, db)
        r = client.get("/forecast/warnings", params={"level": "grid", "alpha": 0.49},
                       headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        [lamp] = [w for w in body["items"]
                  if (w["area_code"], w["category_key"]) == (GRID_001, "P0120")]
        assert lamp["observed"] == in_panel
        offset = "+08:00" if tz == SH else "+02:00"
        week = {"monday": "2025-02-24", "start": f"2025-02-24T00:00:00{offset}",
                "end": f"2025-03-03T00:00:00{offset}", "timezone": tz}
        assert body["week"] == week
        listed = client.get("/forecast", params={"level": "grid"}, headers=h).json()
        assert listed["week"] == week
        assert {i["week"] for i in listed["items"]} == {"2025-02-24"}
