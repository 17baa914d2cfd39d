"""Export of a layer to GeoPackage, GeoJSON or CSV (导出), optionally inside a bbox.

Only current unit grids (``gen_to IS NULL``) are exported. 9+X entities never export
``restricted_attributes``: the column is simply not selected, so no option can leak it.
JSONB attributes become one JSON text column. Dates are dates (a GeoPackage's DATE fields,
``YYYY-MM-DD`` in GeoJSON and CSV). CSV writes points as ``lon``/``lat`` columns (the import
reads them back) and other geometries as a ``wkt`` column. A bbox selects what intersects the
box (not merely its envelope), as OGC API Features' ``bbox`` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import shapely
from sqlalchemy import Engine, text

from gridcore.errors import ValidationError
from gridcore.security.spreadsheet import neutralise

LAYER_SQL = {
    "areas": "SELECT code, level, name, parent_code, area_m2, attributes, geom FROM admin_area",
    "grids": "SELECT code, name, community_code, area_m2, worker_codes, gen_from, attributes, "
             "geom FROM unit_grid WHERE gen_to IS NULL",
    "parts": "SELECT code, class_code, name, state, competent_dept, owner_dept, "
             "maintenance_dept, grid_code, h3, recorded_on, changed_on, source, source_id, "
             "photo_url, attributes, geom FROM city_part",
    "entities": "SELECT code, area, type, name, grid_code, sensitivity, attributes, source, "
                "geom FROM governance_entity",
}
FORMATS = {"gpkg": "GPKG", "geojson": "GeoJSON", "csv": "CSV"}


def parse_bbox(text_bbox: str) -> tuple[float, float, float, float]:
    try:
        minx, miny, maxx, maxy = (float(v) for v in text_bbox.split(","))
    except ValueError:
        raise ValidationError(f"bbox {text_bbox!r} must be minx,miny,maxx,maxy (lon/lat)",
                              field="bbox") from None
    if not (minx < maxx and miny < maxy):
        raise ValidationError(f"bbox {text_bbox!r}: min must be below max", field="bbox")
    return minx, miny, maxx, maxy


def read_layer(engine: Engine, layer: str,
               bbox: tuple[float, float, float, float] | None = None) -> gpd.GeoDataFrame:
    if layer not in LAYER_SQL:
        raise ValidationError(f"unknown layer {layer!r}: one of {', '.join(LAYER_SQL)}",
                              field="layer")
    sql = LAYER_SQL[layer].replace(", geom FROM", ", ST_AsBinary(geom) AS geom FROM")
    params: dict[str, float] = {}
    if bbox is not None:
        # Filter in the column's SRID so the GiST index is used (tipg).
        joiner = " AND " if " WHERE " in sql else " WHERE "
        sql += (joiner + "geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326) "
                "AND ST_Intersects(geom, ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326))")
        params = dict(zip(("minx", "miny", "maxx", "maxy"), bbox, strict=True))
    with engine.connect() as conn:
        df = pd.read_sql_query(text(sql + " ORDER BY code"), conn, params=params)
    geoms = shapely.from_wkb([bytes(g) for g in df.pop("geom")]) if len(df) else []
    df["attributes"] = [json.dumps(a, ensure_ascii=False, sort_keys=True)
                        for a in df["attributes"]]
    if "worker_codes" in df.columns:
        df["worker_codes"] = [",".join(w or []) for w in df["worker_codes"]]
    for col in ("recorded_on", "changed_on"):
        if col in df.columns:  # dates, written as DATE fields (Arrow's date32)
            df[col] = pd.array(pd.to_datetime(df[col]).dt.date, dtype=pd.ArrowDtype(pa.date32()))
    return gpd.GeoDataFrame(df, geometry=list(geoms), crs=4326)


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The frame with its text cells made safe to open in a spreadsheet
    (``gridcore.security.spreadsheet``)."""
    out = df.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column].dtype):
            out[column] = out[column].map(neutralise)
    return out


def export_layer(engine: Engine, layer: str, path: str | Path, fmt: str | None = None,
                 bbox: tuple[float, float, float, float] | None = None) -> int:
    """Write ``layer`` to ``path``; returns the number of features written."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValidationError(f"format {fmt!r}: one of {', '.join(FORMATS)}", field="format")
    gdf = read_layer(engine, layer, bbox)
    if path.exists():
        path.unlink()  # GDAL would append to an existing GeoPackage
    if fmt == "csv":
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        if len(gdf) and (gdf.geom_type == "Point").all():
            df["lon"], df["lat"] = gdf.geometry.x, gdf.geometry.y
        else:
            df["wkt"] = shapely.to_wkt(gdf.geometry.to_numpy(), rounding_precision=-1)
        neutralise_frame(df).to_csv(path, index=False)
    else:  # through Arrow: its date32 columns become DATE fields
        gdf.to_file(path, driver=FORMATS[fmt], layer=layer if fmt == "gpkg" else None,
                    use_arrow=True)
    return len(gdf)
