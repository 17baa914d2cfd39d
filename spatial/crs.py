"""Coordinate systems (坐标系): the ONE module that owns axis order and datums.

Everything else in gridcore speaks (lon, lat) in WGS 84 (EPSG:4326, the storage datum). This
module converts from and to:

- ``EPSG:4326`` WGS 84 (default) and ``EPSG:4490`` CGCS2000 (国家2000): the two realisations
  agree to a few centimetres, far below GPS error, so the conversion is the identity (this is
  also what PROJ does between them);
- ``GCJ-02`` (国测局坐标, "Mars coordinates" of AMap/Tencent/Google China) and ``BD-09``
  (百度坐标): the published obfuscation formulas forward; the inverse by fixed-point iteration
  until the round trip is below 1 mm (the requirement is 0.5 m). Outside China GCJ-02 is the
  identity, like every Chinese web map does;
- any other EPSG code, geographic or projected (e.g. a CGCS2000 Gauss-Krüger zone EPSG:4549)
  through pyproj with ``always_xy=True`` so axis order never depends on the EPSG definition.

Scalar functions raise :class:`gridcore.errors.ValidationError` with a hint; the ``*_many``
functions take and return numpy arrays and validate the whole batch at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from gridcore.errors import ValidationError

WGS84 = "EPSG:4326"
GCJ02 = "GCJ-02"
BD09 = "BD-09"
_IDENTITY = {"EPSG:4326", "EPSG:4490"}
_ALIASES = {
    "WGS84": WGS84, "WGS-84": WGS84, "4326": WGS84, "EPSG:4326": WGS84, "CRS84": WGS84,
    "OGC:CRS84": WGS84, "CGCS2000": "EPSG:4490", "4490": "EPSG:4490", "EPSG:4490": "EPSG:4490",
    "GCJ02": GCJ02, "GCJ-02": GCJ02, "GCJ": GCJ02, "MARS": GCJ02,
    "BD09": BD09, "BD-09": BD09, "BD09LL": BD09, "BAIDU": BD09,
}

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0


def normalise_crs(crs: str | int | None) -> str:
    """A canonical name: ``EPSG:4326``, ``EPSG:4490``, ``GCJ-02``, ``BD-09`` or ``EPSG:n``."""
    if crs is None or crs == "":
        return WGS84
    key = str(crs).strip().upper().replace("_", "-") if not isinstance(crs, int) else str(crs)
    if key in _ALIASES:
        return _ALIASES[key]
    key_nodash = key.replace("-", "")
    if key_nodash in _ALIASES:
        return _ALIASES[key_nodash]
    code = key.removeprefix("EPSG:")
    if code.isdigit():
        _pyproj_crs(int(code))  # validates
        return f"EPSG:{int(code)}"
    raise ValidationError(
        f"unknown coordinate system {crs!r}: use EPSG:4326 (WGS 84), EPSG:4490 (CGCS2000), "
        "GCJ-02, BD-09 or another EPSG code such as EPSG:4549", field="crs", value=str(crs))


@lru_cache(maxsize=64)
def _pyproj_crs(code: int) -> CRS:
    try:
        return CRS.from_epsg(code)
    except CRSError as exc:
        raise ValidationError(f"unknown coordinate system EPSG:{code}: {exc}",
                              field="crs", value=f"EPSG:{code}") from exc


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def is_geographic(crs: str) -> bool:
    crs = normalise_crs(crs)
    if crs in _IDENTITY or crs in (GCJ02, BD09):
        return True
    return bool(_pyproj_crs(int(crs.split(":")[1])).is_geographic)


# -- validation ----------------------------------------------------------------------------------
def check_lonlat(lon: float, lat: float, what: str = "point") -> None:
    """Refuse NaN/inf and latitudes beyond ±90° (hinting at swapped axes)."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValidationError(f"{what} has a non-finite coordinate (lon={lon}, lat={lat})",
                              field="lon/lat", lon=str(lon), lat=str(lat))
    if not -90.0 <= lat <= 90.0:
        hint = " — lon/lat swapped?" if -90.0 <= lon <= 90.0 else ""
        raise ValidationError(f"{what} latitude {lat} is outside ±90°{hint}",
                              field="lat", lon=lon, lat=lat, hint="lon/lat swapped?")
    if not -180.0 <= lon <= 180.0:
        raise ValidationError(f"{what} longitude {lon} is outside ±180°", field="lon",
                              lon=lon, lat=lat)


def check_lonlat_many(lon: np.ndarray, lat: np.ndarray) -> None:
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationError(f"{int(bad.sum())} point(s) have non-finite coordinates "
                              f"(first at index {i}: lon={lon[i]}, lat={lat[i]})",
                              field="lon/lat", index=i, count=int(bad.sum()))
    bad = np.abs(lat) > 90.0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationError(f"{int(bad.sum())} point(s) have a latitude outside ±90° "
                              f"(first at index {i}: lat={lat[i]}) — lon/lat swapped?",
                              field="lat", index=i, count=int(bad.sum()),
                              hint="lon/lat swapped?")
    bad = np.abs(lon) > 180.0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationError(f"{int(bad.sum())} point(s) have a longitude outside ±180° "
                              f"(first at index {i}: lon={lon[i]})", field="lon", index=i)


# -- GCJ-02 / BD-09 (vectorised; scalars go through the same code) --------------------------------
def in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The rectangle inside which GCJ-02 applies its offset (the usual published bounds)."""
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    sq = np.sqrt(np.abs(x))
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sq
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sq
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


@dataclass(frozen=True)
class Shift:
    """A translation in degrees that puts WGS 84 data onto another datum near one place: the
    vector tiles of GCJ-02 basemaps are moved by the offset at their centre
    (``basemaps.datum``)."""

    dx: float = 0.0
    dy: float = 0.0


def wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dlon, dlat = _gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Fixed-point iteration on the forward formula: the offset varies slowly (a few hundred
    # metres over degrees), so each step gains ~4 orders of magnitude; 1e-9° ≈ 0.1 mm.
    wlon, wlat = lon - _gcj_delta(lon, lat)[0], lat - _gcj_delta(lon, lat)[1]
    for _ in range(10):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = glon - lon, glat - lat
        wlon, wlat = wlon - elon, wlat - elat
        if np.all(np.abs(elon) < 1e-10) and np.all(np.abs(elat) < 1e-10):
            break
    return wlon, wlat


def gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # The published closed-form inverse is only approximate (~1e-6°); refine by iteration.
    x, y = lon - 0.0065, lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    glon, glat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(10):
        blon, blat = gcj02_to_bd09(glon, glat)
        elon, elat = blon - lon, blat - lat
        glon, glat = glon - elon, glat - elat
        if np.all(np.abs(elon) < 1e-10) and np.all(np.abs(elat) < 1e-10):
            break
    return glon, glat


# -- public conversions --------------------------------------------------------------------------
def to_wgs84_many(x: np.ndarray, y: np.ndarray, crs: str | int | None = WGS84,
                  validate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) in ``crs`` (lon/lat or easting/northing, always x first) → WGS 84 lon, lat."""
    crs = normalise_crs(crs)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValidationError("x and y arrays differ in length", field="lon/lat")
    if crs in _IDENTITY or crs in (GCJ02, BD09):
        if validate:
            check_lonlat_many(x, y)
        if crs in _IDENTITY:
            return x, y
        if crs == BD09:
            x, y = bd09_to_gcj02(x, y)
        return gcj02_to_wgs84(x, y)
    if validate:
        bad = ~(np.isfinite(x) & np.isfinite(y))
        if bad.any():
            check_lonlat_many(x, y)  # raises the non-finite message
        if is_geographic(crs):
            check_lonlat_many(x, y)
    lon, lat = _transformer(crs, WGS84).transform(x, y)
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    if validate:
        bad = ~(np.isfinite(lon) & np.isfinite(lat))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValidationError(f"point {i} ({x[i]}, {y[i]}) cannot be converted from {crs} "
                                  "to WGS 84 — outside the CRS's area, or x/y swapped?",
                                  field="lon/lat", index=i, crs=crs)
        check_lonlat_many(lon, lat)
    return lon, lat


def from_wgs84_many(lon: np.ndarray, lat: np.ndarray, crs: str | int | None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """WGS 84 lon, lat → (x, y) in ``crs``."""
    crs = normalise_crs(crs)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    check_lonlat_many(lon, lat)
    if crs in _IDENTITY:
        return lon, lat
    if crs == GCJ02:
        return wgs84_to_gcj02(lon, lat)
    if crs == BD09:
        return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))
    x, y = _transformer(WGS84, crs).transform(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def to_wgs84(x: float, y: float, crs: str | int | None = WGS84) -> tuple[float, float]:
    """One point (x first: lon or easting) in ``crs`` → (lon, lat) in WGS 84."""
    crs = normalise_crs(crs)
    try:
        x, y = float(x), float(y)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"coordinates must be numbers, got ({x!r}, {y!r})",
                              field="lon/lat") from exc
    if crs in _IDENTITY:  # the hot path of intake: no numpy round trip
        check_lonlat(x, y)
        return x, y
    lon, lat = to_wgs84_many(np.array([x]), np.array([y]), crs)
    return float(lon[0]), float(lat[0])


def from_wgs84(lon: float, lat: float, crs: str | int | None) -> tuple[float, float]:
    x, y = from_wgs84_many(np.array([float(lon)]), np.array([float(lat)]), crs)
    return float(x[0]), float(y[0])
