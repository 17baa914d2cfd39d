"""Coordinate systems: datum round trips, known GCJ-02 offsets, axis and value errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridcore.errors import ValidationError
from spatial import crs, h3cells


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    kx = 111_320 * math.cos(math.radians(lat1))
    return math.hypot((lon2 - lon1) * kx, (lat2 - lat1) * 110_574)


def test_known_gcj02_offset_at_tiananmen() -> None:
    gx, gy = crs.from_wgs84(116.391, 39.907, "GCJ-02")
    assert abs(gx - 116.3972) < 2e-4 and abs(gy - 39.9085) < 2e-4
    assert 100 < _metres(116.391, 39.907, gx, gy) < 700
    bx, by = crs.from_wgs84(116.391, 39.907, "BD-09")
    assert 700 < _metres(116.391, 39.907, bx, by) < 1500  # BD-09 adds ~0.5–1 km more


@pytest.mark.parametrize("name", ["GCJ-02", "BD-09", "gcj02", "bd09", "EPSG:4549", "EPSG:3857",
                                  "EPSG:4490"])
def test_round_trips_within_half_a_metre(name: str) -> None:
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(73.5, 134.5, 20_000), rng.uniform(18.5, 53.0, 20_000)
    if name == "EPSG:4549":  # Gauss-Krüger zone at 120°E: only near its meridian
        lon = rng.uniform(118.5, 121.5, 20_000)
    x, y = crs.from_wgs84_many(lon, lat, name)
    back_lon, back_lat = crs.to_wgs84_many(x, y, name)
    err = np.hypot((back_lon - lon) * 111_320 * np.cos(np.radians(lat)),
                   (back_lat - lat) * 110_574)
    assert err.max() < 0.5
    if name.upper().replace("-", "") in ("GCJ02", "BD09"):
        moved = np.hypot((x - lon) * 111_320 * np.cos(np.radians(lat)), (y - lat) * 110_574)
        assert np.median(moved) > 100  # really offset inside China


def test_gcj02_is_identity_outside_china() -> None:
    for lon, lat in ((2.35, 48.85), (-122.42, 37.77), (139.7, 35.7)):
        assert crs.from_wgs84(lon, lat, "GCJ-02") == (lon, lat)
        assert crs.to_wgs84(lon, lat, "GCJ-02") == pytest.approx((lon, lat), abs=1e-12)


def test_scalar_and_batch_agree_and_projected_input() -> None:
    x, y = crs.from_wgs84(120.1, 30.2, "EPSG:4549")
    assert 400_000 < x < 600_000 and y > 3_000_000  # easting first (always_xy)
    assert crs.to_wgs84(x, y, "EPSG:4549") == pytest.approx((120.1, 30.2), abs=1e-9)
    assert crs.to_wgs84(120.1, 30.2, "CGCS2000") == (120.1, 30.2)


def test_errors() -> None:
    with pytest.raises(ValidationError, match="swapped"):
        crs.to_wgs84(39.9, 116.4)
    with pytest.raises(ValidationError, match="non-finite"):
        crs.to_wgs84(float("nan"), 39.9)
    with pytest.raises(ValidationError, match="non-finite"):
        crs.to_wgs84_many(np.array([116.4, np.inf]), np.array([39.9, 39.9]), "GCJ-02")
    with pytest.raises(ValidationError, match="swapped"):
        crs.to_wgs84_many(np.array([39.9]), np.array([116.4]), "BD-09")
    with pytest.raises(ValidationError, match="longitude"):
        crs.to_wgs84(190.0, 10.0)
    with pytest.raises(ValidationError, match="unknown coordinate system"):
        crs.normalise_crs("EPSG:999999")
    with pytest.raises(ValidationError, match="unknown coordinate system"):
        crs.normalise_crs("Mars-2")
    with pytest.raises(ValidationError, match="numbers"):
        crs.to_wgs84("abc", 1.0)  # type: ignore[arg-type]
    lon, lat = crs.to_wgs84_many(np.array([]), np.array([]), "GCJ-02")
    assert len(lon) == len(lat) == 0


def test_h3_cells_take_lon_lat() -> None:
    one = h3cells.cell(116.391, 39.907)
    many = h3cells.cells(np.array([116.391, 2.35]), np.array([39.907, 48.85]))
    assert many[0] == one and len(one) == 15
    lon, lat = h3cells.centre(one)
    assert abs(lon - 116.391) < 0.002 and abs(lat - 39.907) < 0.002
    assert len(h3cells.cells(np.array([]), np.array([]))) == 0
    with pytest.raises(ValidationError):
        h3cells.cell(116.4, 39.9, resolution=16)
