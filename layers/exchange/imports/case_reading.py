"""Reading a legacy case file: columns as text, the location when there is one, times.

CSV (any columns; ``lon``/``lat`` found by name or given, absent = cases without a location),
GeoJSON or GeoPackage (points; a feature without geometry is a case without a location; another
geometry type is placed at a point on its surface, and the summary says how many). Every value
comes back as stripped text so that the mapping sees the file's own words. Row ``i`` (1-based)
is the ``i``-th record of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from layers.exchange.imports.reading import LAT_NAMES, LON_NAMES, VECTOR_SUFFIXES, to_storage_crs
from layers.exchange.imports.report import Problems, reject_file


@dataclass
class CaseFile:
    """The file's columns as text, and WGS 84 coordinates (NaN: no location)."""

    name: str
    frame: pd.DataFrame
    x: np.ndarray
    y: np.ndarray
    notes: list[str] = field(default_factory=list)
    _texts: dict[str | None, pd.Series] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.frame)

    def text(self, column: str | None) -> pd.Series:
        """:func:`text_values` of a column, made once per column."""
        if column not in self._texts:
            self._texts[column] = text_values(self.frame, column)
        return self._texts[column]


def text_values(frame: pd.DataFrame, column: str | None) -> pd.Series:
    """A column as stripped Python strings ('' for empty); all '' when ``column`` is None."""
    if column is None:
        return pd.Series(np.full(len(frame), "", dtype=object), dtype=object)
    series = frame[column]
    if isinstance(series.dtype, pd.ArrowDtype):
        values = pa.array(series.array)  # the Arrow data itself, no copy through Python
    else:
        values = pa.array(series.astype(object).to_numpy(), from_pandas=True)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    cleaned = pc.utf8_trim_whitespace(pc.fill_null(values, ""))
    return pd.Series(cleaned.to_numpy(zero_copy_only=False), dtype=object)


def read_case_file(path: str | Path, *, lon_field: str | None = None,
                   lat_field: str | None = None, crs: str | None = None,
                   layer: str | None = None, encoding: str | None = None) -> CaseFile:
    path = Path(path)
    what = f"cases file {path.name}"
    if not path.exists():
        raise reject_file(what, f"file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv(path, what, lon_field, lat_field, crs, encoding)
    if suffix in VECTOR_SUFFIXES:
        return _read_vector(path, what, crs, layer, encoding)
    raise reject_file(what, f"unsupported file type {suffix!r}: use .csv, .geojson or .gpkg")


def _read_csv(path: Path, what: str, lon_field: str | None, lat_field: str | None,
              crs: str | None, encoding: str | None) -> CaseFile:
    df = _csv_frame(path, what, encoding)
    lower = {c.lower(): c for c in df.columns}
    lon_col = lon_field or next((lower[n] for n in LON_NAMES if n in lower), None)
    lat_col = lat_field or next((lower[n] for n in LAT_NAMES if n in lower), None)
    for given, role in ((lon_field, "lon"), (lat_field, "lat")):
        if given and given not in df.columns:
            raise reject_file(what, f"missing column {given!r} (--{role}-field); the file has: "
                                    f"{', '.join(df.columns)}", given)
    n = len(df)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    notes = []
    if lon_col is None or lat_col is None:
        notes.append("no longitude/latitude columns: the cases have no location (no grid)")
        return CaseFile(path.name, df, x, y, notes)
    problems = Problems(what)
    raw_x, raw_y = text_values(df, lon_col), text_values(df, lat_col)
    x = pd.to_numeric(raw_x.replace("", None), errors="coerce").to_numpy(float)
    y = pd.to_numeric(raw_y.replace("", None), errors="coerce").to_numpy(float)
    given = (raw_x != "").to_numpy() | (raw_y != "").to_numpy()
    for column, raw, values in ((lon_col, raw_x, x), (lat_col, raw_y, y)):
        for i in np.flatnonzero(given & ~np.isfinite(values))[:1000]:
            problems.add(int(i) + 1, column, f"{raw.iat[int(i)]!r} is not a number"
                         if raw.iat[int(i)] else "empty while the other coordinate is given")
    problems.raise_if_any()
    if crs and crs.upper() not in ("EPSG:4326", "WGS84"):
        x, y = _reproject(x, y, crs, what)
    bad = np.isfinite(x) & ((np.abs(x) > 180) | (np.abs(y) > 90))
    for i in np.flatnonzero(bad)[:1000]:
        problems.add(int(i) + 1, lon_col, f"({x[i]}, {y[i]}) is not a longitude/latitude "
                                          "(give --crs for projected coordinates)")
    problems.raise_if_any()
    df = df.drop(columns=[lon_col, lat_col])
    missing = int((~np.isfinite(x)).sum())
    if missing:
        notes.append(f"{missing} cases without coordinates: no location, no grid")
    return CaseFile(path.name, df, x, y, notes)


def _csv_frame(path: Path, what: str, encoding: str | None) -> pd.DataFrame:
    """Every column as text ('' for empty), through pyarrow's multi-threaded CSV reader (half
    the time of pandas' on a million rows); the columns stay Arrow strings."""
    import csv

    import pyarrow.csv as pcsv

    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(encoding=encoding or "utf-8-sig", newline="") as f:
            header = next(csv.reader(f, delimiter=sep), [])
        table = pcsv.read_csv(
            path, read_options=pcsv.ReadOptions(encoding=encoding or "utf8"),
            parse_options=pcsv.ParseOptions(delimiter=sep, newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(  # text as written: no type guessing
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError, OSError,
            csv.Error) as exc:
        raise reject_file(what, f"cannot read {path.name}: {exc}") from None
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    frame.columns = [str(c).lstrip("\ufeff") for c in frame.columns]
    return frame


def _reproject(x: np.ndarray, y: np.ndarray, crs: str, what: str) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    try:
        source = CRS.from_user_input(crs)
    except CRSError as exc:
        raise reject_file(what, f"--crs {crs!r} is not a coordinate reference system: {exc}",
                          "crs") from None
    t = Transformer.from_crs(source, "EPSG:4326", always_xy=True)
    ok = np.isfinite(x) & np.isfinite(y)
    ox, oy = np.full(len(x), np.nan), np.full(len(y), np.nan)
    ox[ok], oy[ok] = t.transform(x[ok], y[ok])
    return ox, oy


def _read_vector(path: Path, what: str, crs: str | None, layer: str | None,
                 encoding: str | None) -> CaseFile:
    import pyogrio

    try:
        gdf = pyogrio.read_dataframe(path, layer=layer, encoding=encoding)
    except Exception as exc:  # pyogrio/GDAL raise several classes for "unreadable"
        raise reject_file(what, f"cannot read {path.name}: {exc}") from None
    gdf = to_storage_crs(gdf, what, crs)
    geoms = gdf.geometry.to_numpy()
    notes = []
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    areal = ~missing & (shapely.get_type_id(geoms) != 0)
    if areal.any():
        geoms = geoms.copy()
        geoms[areal] = shapely.point_on_surface(geoms[areal])
        notes.append(f"{int(areal.sum())} features are not points: each case is placed at a "
                     "point on its surface")
    x = np.where(missing, np.nan, shapely.get_x(geoms))
    y = np.where(missing, np.nan, shapely.get_y(geoms))
    if missing.any():
        notes.append(f"{int(missing.sum())} features without geometry: no location, no grid")
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S%z").fillna("")
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
        frame[column] = frame[column].map(str)
    return CaseFile(path.name, frame, x, y, notes)
