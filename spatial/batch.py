"""Batch resolution for DataFrames (notebooks, files): ``resolve(gdf)`` adds the columns
``grid_code``, ``community_code``, ``street_code``, ``district_code``, ``department``, ``h3``
(plus ``inside``, ``snapped``, ``distance_m``).

Vectorised end to end: the locator answers all points of a frame in one call, the hierarchy comes
from the grid codes, departments are looked up once per distinct (category, grid) pair. A
**dask-geopandas** GeoDataFrame is resolved partition by partition (``map_partitions``); the
in-memory index travels to the workers with the task (it pickles). The department here comes
from the area rules only; linking city parts (and their owner override) is per point and lives
in ``layers.grids.resolver.Resolver.resolve_many``.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridcore.dispatch import AreaPath
from spatial import crs as crs_mod
from spatial import h3cells

COLUMNS = ("grid_code", "community_code", "street_code", "district_code", "department", "h3",
           "inside", "snapped", "distance_m")


def _snapshot(source: Any) -> Any:
    """A grid snapshot from a Resolver (``.index.current()``), a GridIndex or a snapshot.
    Without one, the default database's Resolver (``GRIDCORE_DATABASE_URL``) — imported lazily,
    spatial itself does no I/O."""
    if source is None:
        from layers.db.engine import make_engine
        from layers.grids.resolver import Resolver

        source = Resolver(make_engine())
    if hasattr(source, "index"):
        source = source.index
    if hasattr(source, "current"):
        source = source.current()
    return source


def resolve(gdf: Any, source: Any = None, category: str | None = None,
            h3_resolution: int = h3cells.DEFAULT_RESOLUTION, crs: str | None = None) -> Any:
    """Add the resolution columns to a (dask-)GeoDataFrame of points (other geometries use a
    point on their surface). ``category``: the name of a column of class keys (P0101…) used
    for the department. ``crs``: the datum of the coordinates when the frame's own CRS cannot
    say it (GCJ-02, BD-09)."""
    snap = _snapshot(source)
    if _is_dask(gdf):
        meta = resolve_frame(gdf._meta, snap, category, h3_resolution, crs)
        return gdf.map_partitions(resolve_frame, snap, category, h3_resolution, crs, meta=meta)
    return resolve_frame(gdf, snap, category, h3_resolution, crs)


def _is_dask(obj: Any) -> bool:
    return type(obj).__module__.startswith(("dask_geopandas", "dask"))


def resolve_frame(gdf: gpd.GeoDataFrame, snap: Any, category: str | None = None,
                  h3_resolution: int = h3cells.DEFAULT_RESOLUTION, crs: str | None = None
                  ) -> gpd.GeoDataFrame:
    out = gdf.copy()
    geoms = out.geometry
    if crs is None and geoms.crs is not None and not geoms.crs.equals("EPSG:4326"):
        geoms = geoms.to_crs("EPSG:4326")
    values = geoms.values
    points = np.where(shapely.get_type_id(values) == 0, values,
                      shapely.point_on_surface(values)) if len(values) else values
    x, y = shapely.get_x(points), shapely.get_y(points)
    lon, lat = crs_mod.to_wgs84_many(x, y, crs or "EPSG:4326") if len(x) else (x, y)
    found = snap.locator.locate_many(lon, lat)
    idx = found.index
    ok = idx >= 0
    grid = np.where(ok, snap.codes[np.maximum(idx, 0)] if len(snap.codes) else None, None)
    community = np.where(ok, snap.community[np.maximum(idx, 0)] if len(snap.codes) else None,
                         None)
    out["grid_code"] = pd.array(grid, dtype="string")
    out["community_code"] = pd.array(community, dtype="string")
    out["street_code"] = out["community_code"].str[:9]
    out["district_code"] = out["community_code"].str[:6]
    cats = (out[category].astype("string") if category else
            pd.Series(pd.NA, index=out.index, dtype="string"))
    out["department"] = _departments(snap, cats.to_numpy(object), grid, community)  # type: ignore[arg-type]  # noqa: E501  (numpy's stubs: np.where with None)
    out["h3"] = pd.array(h3cells.cells(lon, lat, h3_resolution), dtype="string")
    out["inside"] = ok
    out["snapped"] = found.snapped
    out["distance_m"] = found.distance_m
    return out


def _departments(snap: Any, cats: np.ndarray, grid: np.ndarray, community: np.ndarray
                 ) -> pd.arrays.StringArray:
    result = np.full(len(cats), None, dtype=object)
    if not len(cats):
        return pd.array(result, dtype="string")
    keys = pd.DataFrame({"c": cats, "g": grid, "m": community})
    for (c, g, m), rows in keys.groupby(["c", "g", "m"], dropna=False).indices.items():
        cat = None if pd.isna(c) else c
        where = AreaPath.of_grid(g, m) if isinstance(g, str) else AreaPath()
        result[rows] = snap.rules.propose(cat, where).department_code if cat else None
    return pd.array(result, dtype="string")
