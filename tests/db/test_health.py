"""City health aggregation on a planted history (tests/support/health_planting.py), hand-computed.

Working calendar: Asia/Shanghai, 08:30–12:00 + 13:30–17:30 (450 min/day), State Council days.
A  立案 30 Sep 16:30 → 结案 8 Oct 10:00: 60 min (30 Sep) + 0 (1–7 Oct holiday) + 90 = 150 min;
   limit E0102 = 30m + 1wd + 1h = 540 min → on time.
B  立案 22 Sep 09:00 → 结案 24 Sep 09:30: 420 + 450 + 60 = 930 min, parked 22 Sep 13:30 → 23 Sep
   13:30 = 240 + 210 = 450 min → 480 min handling → on time (930 would be late); one rework.
C  立案 24 Sep 09:00 → 结案 28 Sep 10:00: 420 + 0 (25 Sep Mid-Autumn, weekend) + 90 = 510 min;
   limit E0103 = 30m + 5wh + 1h = 390 min → late.
mean = (150 + 480 + 510) / 3 min = 6.333 h; p90 (linear) = 480 + 0.8·30 = 504 min = 8.4 h.
D dispatched 9 Oct, 1wd limit ends 10 Oct (make-up Saturday) → overdue at 12 Oct; E, G only
reported (30 min dispatch limit) → overdue; G repeats A (same class, same cell, 2 days later).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from gridcore.calendar import WorkingCalendar
from gridcore.errors import ValidationError
from gridcore.health import Window
from layers.health.scores import aggregate
from tests.support.health_planting import (
    C1,
    C2,
    G1,
    G2,
    G3,
    PREVIOUS,
    WINDOW,
    plant_city,
    plant_history,
)
from tests.support.snapshot import plant_once

CAL = WorkingCalendar.chinese()
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def planted(db: Engine) -> Engine:
    plant_once(db, "health", lambda: (plant_city(db), plant_history(db)))
    return db


def test_grid_aggregates_match_the_hand_computed_history(planted: Engine) -> None:
    with planted.connect() as conn:
        agg = aggregate(conn, Window.parse(WINDOW, NOW), "grid", CAL)
    assert agg.keys == [G1, G2, G3]
    g1 = agg.row(G1)
    expected = {"area_km2": 0.25, "cases": 6, "registered": 4, "closed": 3,
                "closed_on_time": 2, "reworked": 1, "open": 3, "overdue": 3, "repeat": 1,
                "cases_E01": 5, "cases_E04": 1, "parts": 4, "parts_intact": 2,
                "parts_damaged": 1, "parts_missing": 1, "parts_0101": 3, "parts_bad_0101": 1,
                "parts_bad_0105": 1, "entities": 2, "entities_security": 2}
    assert {k: g1[k] for k in expected} == pytest.approx(expected)
    assert g1["handling_mean_h"] == pytest.approx(19 / 3)
    assert g1["handling_p90_h"] == pytest.approx(8.4)


def test_grid_without_cases_and_window_without_data(planted: Engine) -> None:
    with planted.connect() as conn:
        agg = aggregate(conn, Window.parse(WINDOW, NOW), "grid", CAL)
        empty = aggregate(conn, Window.parse("2025-01-01/2025-02-01", NOW), "grid", CAL)
    g2 = agg.row(G2)
    assert g2["cases"] == 0 and g2["registered"] == 0 and g2["handling_p90_h"] is None
    assert g2["parts"] == 2 and g2["parts_intact"] == 2
    assert agg.row(G3)["parts"] == 0
    for code in (G1, G2, G3):
        row = empty.row(code)
        assert row["cases"] == 0 and row["closed"] == 0 and row["handling_mean_h"] is None


def test_previous_window_and_rollup(planted: Engine) -> None:
    with planted.connect() as conn:
        prev = aggregate(conn, Window.parse(PREVIOUS, NOW), "grid", CAL)
        comm = aggregate(conn, Window.parse(WINDOW, NOW), "community", CAL)
        street = aggregate(conn, Window.parse(WINDOW, NOW), "street", CAL)
    p = prev.row(G1)
    assert (p["cases"], p["closed"], p["closed_on_time"]) == (1, 1, 1)
    assert p["handling_mean_h"] == pytest.approx(2.0)  # 09:00 → 11:00 on a Monday
    assert comm.keys == [C1, C2]
    c1 = comm.row(C1)
    assert (c1["area_km2"], c1["cases"], c1["parts"], c1["entities"]) == (0.5, 6, 6, 3)
    assert street.row("320508001")["area_km2"] == pytest.approx(0.75)


def test_unknown_level_is_refused(planted: Engine) -> None:
    with planted.connect() as conn, pytest.raises(ValidationError) as err:
        aggregate(conn, Window.parse(WINDOW, NOW), "province", CAL)
    assert err.value.details["allowed"] == ["grid", "community", "street", "district"]


def test_sharded_level_equals_one_query(planted: Engine) -> None:
    window = Window.parse(WINDOW, NOW)
    with planted.connect() as conn:
        one = aggregate(conn, window, "grid", CAL, shards=1)
        two = aggregate(conn, window, "grid", CAL, shards=2)
        three = aggregate(conn, window, "community", CAL, shards=2)
        comm = aggregate(conn, window, "community", CAL, shards=1)
    for a, b in ((one, two), (comm, three)):
        assert a.keys == b.keys
        for key in a.keys:
            assert a.row(key) == pytest.approx(b.row(key), nan_ok=True)
    assert two.row(G1)["cases"] == 6
