"""Batch resolution for DataFrames (notebooks, files): ``resolve(gdf)`` adds the columns
``grid_code``, ``community_code``, ``street_code``, ``district_code``, ``department``,
``inside``, ``snapped`` and ``distance_m`` (plus ``h3`` when asked for with ``h3=True`` or an
``h3_resolution``, and ``nearest_grid_code`` with ``nearest=True``).

- ``inside``: a grid covers the point (``ST_Covers``; on a shared edge the lowest code wins).
- ``snapped``: outside every grid but within the snap distance (``GRIDCORE_RESOLVE_SNAP_M``,
  30 m) of one: ``inside`` is False, and ``grid_code`` and the hierarchy are that grid's (as
  ``/resolve`` and the imports answer).
- otherwise outside: no grid. ``distance_m`` is 0 inside, the distance of a snapped point, and
  NaN beyond the snap distance unless ``nearest=True`` asks for the nearest grid of every point
  (which costs a search per outside point, most of the time on points far from the city).
- The coordinates' datum is said in ``out.attrs["gridcore_resolve"]`` with the counts; a frame
  without a CRS is taken as WGS 84 with a warning.

Vectorised end to end, no Python per row: coordinates come out of the geometry array in one
call and are converted by pyproj or ``spatial.crs`` as arrays, the locator answers all points in
one call, hierarchy codes and H3 cells (h3ronpy) are Arrow arrays taken by index, departments
are proposed once per distinct (category, grid) pair. A **dask-geopandas** GeoDataFrame is
resolved partition by partition (``map_partitions``), locally or on a ``distributed`` cluster;
the in-memory index is one task of the graph, sent to each worker once (it pickles). The
department here comes from the area rules only; linking city
parts (and their owner override) is per point and lives in
``layers.grids.resolver.Resolver.resolve_many``.
"""

from __future__ import annotations

import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
import shapely.errors
from numpy.typing import NDArray
from pyproj import CRS, Transformer

from gridcore.dispatch import AreaPath
from gridcore.errors import ValidationError
from spatial import crs as crs_mod
from spatial import h3cells

COLUMNS = ("grid_code", "community_code", "street_code", "district_code", "department",
           "inside", "snapped", "distance_m")  # and "h3" after "department" when asked for
ATTRS_KEY = "gridcore_resolve"
_WGS84_LIKE = (4326, 4490)  # CGCS2000 = WGS 84 to a few centimetres (see spatial.crs)


def _snapshot(source: Any) -> Any:
    """A grid snapshot from a Resolver (``.index.current()``), a GridIndex or a snapshot.
    spatial does no I/O: the convenience that opens the environment's database is
    ``layers.grids.batch.resolve(gdf)``."""
    if source is None:
        raise TypeError("resolve(gdf, source): pass a Resolver (layers.grids.resolver."
                        "Resolver(engine)), its GridIndex or a snapshot; "
                        "layers.grids.batch.resolve(gdf) opens the environment's database")
    if hasattr(source, "index"):
        source = source.index
    if hasattr(source, "current"):
        source = source.current()
    return source


def resolve(gdf: Any, source: Any, category: str | None = None,
            h3_resolution: int | None = None, crs: str | None = None,
            nearest: bool = False, h3: bool | None = None) -> Any:
    """Add the resolution columns to a (dask-)GeoDataFrame of points (other geometries use a
    point on their surface). ``source``: a Resolver, GridIndex or snapshot. ``category``: the
    name of a column of class keys (P0101…) used for the department. ``h3``: add the ``h3``
    column (the H3 cell of each point) — asked for by ``h3=True`` or by giving
    ``h3_resolution``, the resolver's resolution (``GRIDCORE_H3_RESOLUTION``) otherwise; it is
    left out by default, being about a third of the whole call's time and no part of finding the
    grid. ``crs``: the datum of the coordinates when the frame's own CRS cannot say it (GCJ-02,
    BD-09; GCJ-02 data is routinely labelled WGS 84). ``nearest``: measure the distance to (and
    code of) the nearest grid for every point outside, not only within the snap distance."""
    if h3 is None:
        h3 = h3_resolution is not None
    if h3_resolution is None:  # the resolver's (GRIDCORE_H3_RESOLUTION), else the default
        h3_resolution = int(getattr(source, "h3_resolution", h3cells.DEFAULT_RESOLUTION))
    snap = _snapshot(source)
    res = h3_resolution if h3 else None
    if _is_dask(gdf):
        import dask

        meta = resolve_frame(gdf._meta, snap, category, res, crs, nearest)
        return gdf.map_partitions(resolve_frame, _shared(dask, snap), category, res, crs,
                                  nearest, meta=meta)
    return resolve_frame(gdf, snap, category, res, crs, nearest)


def _shared(dask: Any, snap: Any) -> Any:
    """The snapshot as one object of the graph. On a ``distributed`` cluster it is scattered
    to the workers first (once per snapshot: the same object is found again by its hash), so
    neither the graph nor the scheduler carries it — hundreds of MB for a megacity's 60,000
    street-shaped grids; each worker receives it once, not with every partition's task."""
    try:
        from distributed import get_client

        client: Any = get_client()  # distributed's Client is not annotated
    except (ImportError, ValueError):  # no distributed, or no client: the local schedulers
        return dask.delayed(snap, pure=True, traverse=False)
    future = client.scatter(snap, broadcast=True, hash=True)
    return dask.delayed(_same, pure=True)(future)


def _same(value: Any) -> Any:
    return value


def _is_dask(obj: Any) -> bool:
    return type(obj).__module__.startswith(("dask_geopandas", "dask"))


def resolve_frame(gdf: gpd.GeoDataFrame, snap: Any, category: str | None = None,
                  h3_resolution: int | None = None, crs: str | None = None,
                  nearest: bool = False) -> gpd.GeoDataFrame:
    """:func:`resolve` of one frame; ``h3_resolution`` None: no ``h3`` column."""
    if category is not None and category not in gdf.columns:
        raise ValidationError(f"no column {category!r} of class keys in the frame "
                              f"(columns: {', '.join(map(str, gdf.columns))})",
                              field="category", value=category)
    lon, lat, datum = wgs84_points(gdf, crs)
    h3_check = h3cells.check_resolution(h3_resolution) if h3_resolution is not None else None
    out = _columns(gdf, snap, lon, lat, category, nearest, datum)
    if h3_check is None:
        return out
    out["h3"] = pd.arrays.ArrowStringArray(h3cells.cells_arrow(lon, lat, h3_check))
    # the documented order: h3 after department
    order = [c for c in out.columns if c != "h3"]
    order.insert(order.index("department") + 1, "h3")
    return out[order]


def _columns(gdf: gpd.GeoDataFrame, snap: Any, lon: NDArray[np.float64],
             lat: NDArray[np.float64], category: str | None, nearest: bool, datum: str
             ) -> gpd.GeoDataFrame:
    locator = snap.locator
    found = locator.locate_many(lon, lat, nearest=nearest)
    idx = found.index
    codes = pa.array(np.asarray(snap.codes, dtype=object), pa.string())
    community = pa.array(np.asarray(snap.community, dtype=object), pa.string())
    out = gdf.copy(deep=False)
    where = pa.array(idx, type=pa.int32(), mask=idx < 0)  # missing outside
    out["grid_code"] = _take(codes, where)
    out["community_code"] = _take(community, where)
    out["street_code"] = _take(pc.utf8_slice_codeunits(community, 0, 9), where)
    out["district_code"] = _take(pc.utf8_slice_codeunits(community, 0, 6), where)
    out["department"] = _departments(snap, gdf[category] if category else None, idx)
    inside = (idx >= 0) & ~found.snapped  # covered; a snapped point has a grid, not inside
    out["inside"] = inside
    out["snapped"] = found.snapped
    out["distance_m"] = found.distance_m
    if nearest:
        out["nearest_grid_code"] = _take(
            codes, pa.array(found.nearest, type=pa.int32(), mask=found.nearest < 0))
    out.attrs[ATTRS_KEY] = {
        "crs": datum, "snap_m": locator.snap_m, "points": len(idx),
        "covered": int(inside.sum()),
        "snapped": int(found.snapped.sum()), "outside": int((idx < 0).sum()),
        "nearest_measured": bool(nearest),
        "grid_version": getattr(snap, "grid_version", None)}
    return out


def _take(values: pa.StringArray, where: pa.Int32Array) -> pd.arrays.ArrowStringArray:
    """``values[where]`` as a pandas string array (missing where ``where`` is)."""
    if not len(values):
        return _missing(len(where))
    return pd.arrays.ArrowStringArray(values.take(where))


def _missing(n: int) -> pd.arrays.ArrowStringArray:
    return pd.arrays.ArrowStringArray(pa.nulls(n, pa.string()))


def wgs84_points(gdf: gpd.GeoDataFrame, crs: str | None = None
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
    """WGS 84 lon/lat arrays of the frame's points (a point on the surface of other
    geometries) and what was assumed about their datum, in words. Raises ValidationError for
    empty geometries, coordinates out of range, or a ``crs`` the frame's CRS contradicts."""
    values = np.asarray(gdf.geometry.array, dtype=object)
    x, y = _xy(values)
    declared = gdf.crs
    epsg = declared.to_epsg() if declared is not None else None
    if crs is not None:
        name = crs_mod.normalise_crs(crs)
        if declared is not None and epsg not in _WGS84_LIKE and epsg != _epsg_of(name):
            raise ValidationError(
                f"the frame declares {declared.to_string()} but crs={crs!r} was given: drop "
                "crs= to use the frame's CRS, or set the frame's CRS right first "
                "(gdf.set_crs(..., allow_override=True))", field="crs", value=str(crs))
        lon, lat = crs_mod.to_wgs84_many(x, y, name)
        if declared is None or epsg == _epsg_of(name):
            return lon, lat, name
        return lon, lat, f"{name} (given; the frame says {declared.to_string()})"
    if declared is None:
        if len(values):
            warnings.warn("the frame has no CRS: its coordinates are taken as WGS 84 "
                          "lon/lat (EPSG:4326); pass crs=… or set the frame's CRS if not",
                          UserWarning, stacklevel=3)
        lon, lat = crs_mod.to_wgs84_many(x, y, crs_mod.WGS84)
        return lon, lat, "EPSG:4326 (assumed: the frame has no CRS)"
    if epsg is not None:
        lon, lat = crs_mod.to_wgs84_many(x, y, f"EPSG:{epsg}")
        return lon, lat, f"EPSG:{epsg}"
    return (*_transform(declared, x, y), declared.to_string())


def _epsg_of(name: str) -> int | None:
    return int(name.split(":")[1]) if name.startswith("EPSG:") else None


def _transform(declared: CRS, x: NDArray[np.float64], y: NDArray[np.float64]
               ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        crs_mod.check_lonlat_many(x, y)  # says which point is not finite
    lon, lat = Transformer.from_crs(declared, "EPSG:4326", always_xy=True).transform(x, y)
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    crs_mod.check_lonlat_many(lon, lat)
    return lon, lat


def _xy(values: NDArray[np.object_]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """x and y of point geometries; a point on the surface of the others (NaN when empty)."""
    try:
        x, y = shapely.get_x(values), shapely.get_y(values)  # NaN for all but points
    except shapely.errors.GEOSException:  # an empty point: GEOS refuses its x
        x, y = np.full(len(values), np.nan), np.full(len(values), np.nan)
        some = ~shapely.is_empty(values) & ~shapely.is_missing(values)
        x[some], y[some] = shapely.get_x(values[some]), shapely.get_y(values[some])
    odd = np.flatnonzero(np.isnan(x) | np.isnan(y))
    if len(odd):
        other = odd[(shapely.get_type_id(values[odd]) > 0) & ~shapely.is_empty(values[odd])]
        surface = shapely.point_on_surface(values[other])
        x[other], y[other] = shapely.get_x(surface), shapely.get_y(surface)
    return x, y


def _departments(snap: Any, cats: pd.Series | None, idx: NDArray[np.int32]
                 ) -> pd.arrays.ArrowStringArray:
    """The area rules' department per point, proposed once per distinct (class, grid)."""
    n = len(idx)
    if cats is None or not n:
        return pd.arrays.ArrowStringArray(pa.nulls(n, pa.string()))
    cat_code, cat_keys = pd.factorize(cats.astype("string"), use_na_sentinel=True)
    grids = len(snap.codes) + 1
    pair, pairs = pd.factorize((cat_code.astype(np.int64) + 1) * grids + (idx + 1))
    depts = np.full(len(pairs), None, dtype=object)
    for j, key in enumerate(pairs.tolist()):
        c, g = divmod(int(key), grids)
        if c == 0:
            continue  # no class: no department
        where = (AreaPath.of_grid(str(snap.codes[g - 1]), snap.community[g - 1]) if g
                 else AreaPath())
        depts[j] = snap.rules.propose(str(cat_keys[c - 1]), where).department_code
    taken = pa.array(depts, pa.string()).take(np.asarray(pair, dtype=np.int64))
    return pd.arrays.ArrowStringArray(taken)
