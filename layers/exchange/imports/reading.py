"""Reading import files into GeoDataFrames in EPSG:4326 (storage CRS).

GeoPackage, GeoJSON, Shapefile (pyogrio), CSV with lon/lat columns, and OSM PBF for city parts
(``layers.exchange.imports.osm``). Any CRS comes in and is reprojected; a file that declares none (a
Shapefile without ``.prj``) is refused unless ``crs`` is given — guessing a CRS silently would
put every feature in the wrong place. When the file declares a CRS, that one is used.
The rows keep the file's order, so row ``i`` (1-based) of the frame is record ``i`` of the file.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from layers.exchange.imports.report import Problems, reject_file

STORAGE_CRS = CRS.from_epsg(4326)
VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".zip", ".fgb"}
LON_NAMES = ("lon", "lng", "long", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")


def _parse_crs(crs: object, what: str) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise reject_file(what, f"--crs {crs!r} is not a coordinate reference system: {exc}",
                          "crs") from None


def read_file(path: str | Path, layer_kind: str, crs: object = None, *, layer: str | None = None,
              lon_field: str | None = None, lat_field: str | None = None,
              encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read one file of ``layer_kind`` (areas/grids/parts/entities) into EPSG:4326."""
    path = Path(path)
    what = f"{layer_kind} file {path.name}"
    if not path.exists():
        raise reject_file(what, f"file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".pbf":
        if layer_kind != "parts":
            raise reject_file(what, "OSM PBF files can only be imported as city parts")
        from layers.exchange.imports.osm import read_osm_parts

        return read_osm_parts(path)
    if suffix in (".csv", ".txt", ".tsv"):
        gdf = _read_csv(path, what, lon_field, lat_field, encoding)
        return to_storage_crs(gdf, what, crs or "EPSG:4326")
    elif suffix in VECTOR_SUFFIXES:
        try:
            gdf = pyogrio.read_dataframe(path, layer=layer, encoding=encoding)
        except Exception as exc:  # pyogrio/GDAL raise several classes for the same "unreadable"
            raise reject_file(what, f"cannot read {path.name} (truncated or not a "
                                    f"{suffix[1:]} file?): {exc}") from None
    else:
        raise reject_file(what, f"unsupported file type {suffix!r}: use .gpkg, .geojson, .shp, "
                                ".csv (lon/lat columns) or .osm.pbf")
    return to_storage_crs(gdf, what, crs)


def to_storage_crs(gdf: gpd.GeoDataFrame, what: str, crs: object = None) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        if crs is None:
            raise reject_file(what, "the file declares no coordinate reference system (a "
                                    "Shapefile without .prj?); give it with --crs, e.g. "
                                    "--crs EPSG:4326 (a GeoDataFrame: set_crs first)", "crs")
        gdf = gdf.set_crs(_parse_crs(crs, what))
    if not CRS(gdf.crs).equals(STORAGE_CRS, ignore_axis_order=True):
        gdf = gdf.to_crs(STORAGE_CRS)
    if isinstance(gdf.index, pd.RangeIndex) and gdf.index.start == 0 and gdf.index.step == 1:
        return gdf
    return gdf.reset_index(drop=True)


def _pick(columns: list[str], given: str | None, names: tuple[str, ...], what: str,
          role: str) -> str:
    if given:
        if given not in columns:
            raise reject_file(what, f"missing column {given!r} ({role}); the file has: "
                                    f"{', '.join(columns)}", given)
        return given
    lowered = {c.lower(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    raise reject_file(what, f"no {role} column: name it with --{role}-field (looked for "
                            f"{', '.join(names)}); the file has: {', '.join(columns)}", role)


def _read_csv(path: Path, what: str, lon_field: str | None, lat_field: str | None,
              encoding: str | None) -> gpd.GeoDataFrame:
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False,
                         encoding=encoding or "utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise reject_file(what, f"cannot read {path.name}: {exc}") from None
    columns = list(df.columns)
    if "wkt" in columns and lon_field is None:  # polygons exported by ``gridcore export``
        geoms = shapely.from_wkt(df.pop("wkt").replace("", None).to_numpy(), on_invalid="warn")
        return gpd.GeoDataFrame(df, geometry=geoms, crs=None)
    lon_col = _pick(columns, lon_field, LON_NAMES, what, "lon")
    lat_col = _pick(columns, lat_field, LAT_NAMES, what, "lat")
    lon = pd.to_numeric(df[lon_col].str.strip(), errors="coerce").to_numpy(float)
    lat = pd.to_numeric(df[lat_col].str.strip(), errors="coerce").to_numpy(float)
    problems = Problems(what)
    for i in np.flatnonzero(np.isnan(lon) | np.isnan(lat)):
        bad = lon_col if np.isnan(lon[i]) else lat_col
        problems.add(int(i) + 1, bad, f"{df[bad].iat[i]!r} is not a number")
    problems.raise_if_any()
    df = df.drop(columns=[lon_col, lat_col])
    # A CSV names no CRS; lon/lat columns are WGS 84 unless --crs says otherwise.
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs=None)


def read_csv_table(path: str | Path, what: str, required: tuple[str, ...]) -> pd.DataFrame:
    """A plain CSV without geometry (departments), all columns as text."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise reject_file(what, f"cannot read {path.name}: {exc}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise reject_file(what, f"missing column(s) {', '.join(missing)}; the file has: "
                                f"{', '.join(df.columns)}", missing[0])
    return df
