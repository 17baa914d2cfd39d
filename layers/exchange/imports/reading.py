"""Reading import files into GeoDataFrames in EPSG:4326 (storage CRS).

GeoPackage, GeoJSON, Shapefile (pyogrio), CSV with lon/lat columns or a WKT column, and OSM PBF
for city parts (``layers.exchange.imports.osm``). Which CRS the coordinates are in follows
``spatial.crs_choice`` (the file's declared CRS; ``crs`` when it declares none; ``crs`` against
another declaration only with ``override_crs``; a CSV's coordinates are WGS 84 unless ``crs``
says otherwise); the datums of ``spatial.crs`` (GCJ-02, BD-09, CGCS2000, any EPSG code) are
converted vertex by vertex. Coordinates that cannot be in that CRS (metres under degrees, far
outside its area of use) refuse the file, naming the row. What was assumed is kept in
``gdf.attrs[CRS_NOTE]`` for the import's summary.
The rows keep the file's order, so row ``i`` (1-based) of the frame is record ``i`` of the file.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridcore.errors import ValidationError
from layers.exchange.imports.report import Problems, reject_file, rejected
from spatial import crs as crs_mod
from spatial import crs_choice

CRS_NOTE = "gridcore_crs"  # gdf.attrs key: what was assumed about the coordinates, in words
CRS_SOURCE = "gridcore_crs_source"  # gdf.attrs key (convert=False): the coordinates' CRS
UNTYPED = "gridcore_untyped"  # gdf.attrs key: every column is text (a CSV)
VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".zip", ".fgb"}
LON_NAMES = ("lon", "lng", "long", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")


def read_file(path: str | Path, layer_kind: str, crs: str | None = None, *,
              override_crs: bool = False, layer: str | None = None,
              lon_field: str | None = None, lat_field: str | None = None,
              encoding: str | None = None, what: str | None = None,
              convert: bool = True) -> gpd.GeoDataFrame:
    """Read one file of ``layer_kind`` (areas/grids/parts/entities) into EPSG:4326.
    ``what`` names the file in refusals (default: "<layer_kind> file <name>").
    ``convert=False``: the CRS is chosen and checked the same way, but the coordinates stay as
    the file has them (``gdf.attrs[CRS_SOURCE]`` names their CRS; the frame's own CRS is it,
    or None for GCJ-02 / BD-09, which have no EPSG code)."""
    path = Path(path)
    what = what or f"{layer_kind} file {path.name}"
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
        return to_storage_crs(gdf, what, crs, override_crs, default="EPSG:4326",
                              convert=convert)
    elif suffix in VECTOR_SUFFIXES:
        try:
            gdf = pyogrio.read_dataframe(path, layer=layer, encoding=encoding)
        except Exception as exc:  # pyogrio/GDAL raise several classes for the same "unreadable"
            raise reject_file(what, f"cannot read {path.name} (truncated or not a "
                                    f"{suffix[1:]} file?): {exc}") from None
        gdf = _dates_as_dates(gdf, path, layer)
    else:
        raise reject_file(what, f"unsupported file type {suffix!r}: use .gpkg, .geojson, .shp, "
                                ".csv (lon/lat columns) or .osm.pbf")
    return to_storage_crs(gdf, what, crs, override_crs, convert=convert)


def to_storage_crs(gdf: gpd.GeoDataFrame, what: str, crs: str | None = None,
                   override_crs: bool = False, default: str | None = None,
                   convert: bool = True) -> gpd.GeoDataFrame:
    """``gdf`` in EPSG:4326, by the rule of ``spatial.crs_choice``; refused (naming the row)
    when its coordinates cannot be in its CRS. A frame already read by :func:`read_file`
    keeps the note of what was assumed then."""
    try:
        choice = crs_choice.choose_crs(gdf.crs, crs_choice.parse_given(crs), override_crs,
                                       default)
    except ValidationError as exc:
        raise reject_file(what, exc.message + ("" if crs is not None or gdf.crs is not None
                                               else " (a GeoDataFrame: set_crs first)"),
                          "crs") from None
    note = gdf.attrs.get(CRS_NOTE) if choice.is_wgs84 else None
    geoms = np.asarray(gdf.geometry.array, dtype=object)
    coords, rows = crs_choice.vertex_rows(geoms)
    try:
        crs_choice.check_area_of_use(coords[:, 0], coords[:, 1], choice.source)
    except ValidationError as exc:
        row = int(rows[exc.details["index"]]) + 1 if "index" in exc.details else None
        raise rejected(what, [{"row": row, "field": "geometry", "reason": exc.message}]
                       ) from None
    if not convert:
        gdf = gdf.set_crs(None if choice.source in (crs_mod.GCJ02, crs_mod.BD09)
                          else choice.source, allow_override=True)
        gdf.attrs[CRS_NOTE], gdf.attrs[CRS_SOURCE] = note or choice.note, choice.name
        return gdf
    if not choice.is_wgs84:
        gdf = gdf.set_geometry(crs_choice.geometries_to_wgs84(geoms, choice.source), crs=None)
    if gdf.crs is None or not choice.is_wgs84 or gdf.crs.to_epsg() != 4326:
        gdf = gdf.set_crs(4326, allow_override=True)
    gdf.attrs[CRS_NOTE] = note or choice.note
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
    wkt = next((c for c in columns if c.lower() == "wkt"), None)  # GDAL writes "WKT"
    if wkt is not None and lon_field is None:  # polygons, as ``gridcore export`` writes them
        raw = df.pop(wkt).astype(str).str.strip().to_numpy(dtype=object)
        text = np.where(raw == "", None, raw)
        geoms = shapely.from_wkt(text, on_invalid="ignore")
        problems = Problems(what)
        for i in np.flatnonzero(pd.notna(text) & shapely.is_missing(geoms)):
            problems.add(int(i) + 1, wkt, f"{text[i][:60]!r} is not WKT")
        problems.raise_if_any()
        return untyped(gpd.GeoDataFrame(df, geometry=geoms, crs=None))
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
    return untyped(gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs=None))


def untyped(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Mark a frame whose columns are all text because the file has no types (a CSV): its free
    attributes are stored as numbers where a whole column reads as numbers
    (``common.attributes_json``)."""
    gdf.attrs[UNTYPED] = True
    return gdf


def _dates_as_dates(gdf: gpd.GeoDataFrame, path: Path, layer: str | None) -> gpd.GeoDataFrame:
    """Date fields (a GeoPackage's DATE) as dates: pyogrio reads them as midnight
    timestamps, which would be stored as date-times."""
    try:
        info = pyogrio.read_info(path, layer=layer)
    except Exception:  # noqa: BLE001 - the file was just read; no types, no conversion
        return gdf
    for name, kind in zip(info["fields"], info.get("ogr_types") or [], strict=False):
        if kind == "OFTDate" and name in gdf.columns:
            column = pd.to_datetime(gdf[name], errors="coerce")
            gdf[name] = np.where(column.isna(), None, column.dt.date.astype(object))
    return gdf


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


def crs_note(gdf: gpd.GeoDataFrame) -> str | None:
    """What was assumed about ``gdf``'s coordinates (:func:`to_storage_crs`), in words."""
    note = gdf.attrs.get(CRS_NOTE)
    return str(note) if note else None
