"""Export of cases and city parts as partitioned GeoParquet, for distributed analytics.

``gridcore export cases --format geoparquet -o DIR`` writes one file per month of report (in
the city's timezone) under ``DIR/month=YYYY-MM/``; ``parts`` one file per district under
``DIR/district=XXXXXX/`` — Hive-style partitions that ``dask_geopandas.read_parquet(DIR)``,
``geopandas.read_parquet`` (one file), pyarrow datasets, DuckDB and Spark read as they are,
the partition becoming a column. Every file is GeoParquet 1.0 (geometry as WKB with its
``geo`` metadata: EPSG:4326 points) written by geopandas.

Streamed partition by partition (a month's cases, a district's parts): memory stays that of
one partition however long the history. Each partition is read with ``COPY … TO STDOUT`` as
CSV and parsed by pyarrow (no Python object per row). Personal data stays out, as in the
analysts' read API: no reporter, no intake payload.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from sqlalchemy import Connection, Engine, text

from gridcore.errors import ValidationError

CASE_COLUMNS = {  # name → pyarrow type of the CSV column
    "id": pa.int64(), "public_no": pa.string(), "category_key": pa.string(),
    "state": pa.string(), "source": pa.string(), "grid_code": pa.string(),
    "community_code": pa.string(), "street_code": pa.string(), "district_code": pa.string(),
    "h3": pa.string(), "part_code": pa.string(), "department_code": pa.string(),
    "stage": pa.string(), "description": pa.string(), "supervised": pa.bool_(),
    "deadline_at": pa.timestamp("us", "UTC"), "created_at": pa.timestamp("us", "UTC"),
    "updated_at": pa.timestamp("us", "UTC"), "closed_at": pa.timestamp("us", "UTC"),
}
PART_COLUMNS = {
    "code": pa.string(), "class_code": pa.string(), "name": pa.string(), "state": pa.string(),
    "grid_code": pa.string(), "h3": pa.string(), "competent_dept": pa.string(),
    "owner_dept": pa.string(), "maintenance_dept": pa.string(), "source": pa.string(),
    "recorded_on": pa.date32(), "changed_on": pa.date32(),
}
LAYERS = ("cases", "parts")


@dataclass
class ExportSummary:
    layer: str
    directory: Path
    rows: int = 0
    partitions: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "directory": str(self.directory), "rows": self.rows,
                "partitions": len(self.partitions)}


def _copy_frame(conn: Connection, sql: str, params: dict[str, Any],
                columns: dict[str, pa.DataType]) -> gpd.GeoDataFrame:
    """Rows of ``sql`` (psycopg2 ``%(name)s`` parameters; its columns, then ``geom`` as hex
    WKB) through COPY and pyarrow."""
    buf = io.BytesIO()
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        query = cur.mogrify(sql, params).decode()  # COPY takes no parameters: quoted here
        cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", buf)
    buf.seek(0)
    names = [*columns, "geom"]
    if not buf.getbuffer().nbytes:
        table = pa.table({n: pa.array([], t) for n, t in {**columns,
                                                         "geom": pa.string()}.items()})
    else:
        table = pacsv.read_csv(buf, read_options=pacsv.ReadOptions(column_names=names),
                               convert_options=pacsv.ConvertOptions(
                                   column_types={**columns, "geom": pa.string()},
                                   strings_can_be_null=True, quoted_strings_can_be_null=False,
                                   true_values=["t"], false_values=["f"]))
    geoms = shapely.from_wkb(table.column("geom").to_numpy(zero_copy_only=False))
    frame = table.drop_columns(["geom"]).to_pandas(types_mapper=_types)
    return gpd.GeoDataFrame(frame, geometry=geoms, crs="EPSG:4326")


def _types(kind: pa.DataType) -> Any:
    import pandas as pd

    return pd.ArrowDtype(kind) if pa.types.is_string(kind) else None


def _months(conn: Connection, tz: ZoneInfo) -> Iterator[tuple[str, datetime, datetime]]:
    first, last = conn.execute(text(
        "SELECT min(created_at), max(created_at) FROM case_record")).one()
    if first is None:
        return
    month = date(first.astimezone(tz).year, first.astimezone(tz).month, 1)
    end = last.astimezone(tz).date()
    while month <= end:
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        yield (f"{month:%Y-%m}", datetime(month.year, month.month, 1, tzinfo=tz),
               datetime(following.year, following.month, 1, tzinfo=tz))
        month = following


def export_geoparquet(engine: Engine, layer: str, directory: str | Path,
                      timezone: str = "Asia/Shanghai", replace: bool = False) -> ExportSummary:
    """Write ``cases`` (by month of report) or ``parts`` (by district) under ``directory``."""
    if layer not in LAYERS:
        raise ValidationError(f"GeoParquet export of {layer!r}: one of {', '.join(LAYERS)}",
                              field="layer", value=layer)
    out = Path(directory)
    if out.exists() and any(out.iterdir()):
        if not replace:
            raise ValidationError(f"{out} is not empty: choose another directory or --replace "
                                  "(partitions of an earlier export would mix with the new)",
                                  field="output", value=str(out))
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary(layer, out)
    with engine.connect() as conn:
        conn.execute(text("SET LOCAL TIME ZONE 'UTC'"))  # timestamps as pyarrow reads them
        for key, frame in (_case_partitions(conn, ZoneInfo(timezone)) if layer == "cases"
                           else _part_partitions(conn)):
            if not len(frame):
                continue
            part = out / key
            part.mkdir()
            frame.to_parquet(part / "part-0.parquet", index=False, compression="zstd")
            summary.partitions[key] = len(frame)
            summary.rows += len(frame)
    return summary


def _case_partitions(conn: Connection, tz: ZoneInfo) -> Iterator[tuple[str, gpd.GeoDataFrame]]:
    select = ", ".join(CASE_COLUMNS)
    sql = (f"SELECT {select}, encode(ST_AsBinary(geom), 'hex') FROM case_record "
           "WHERE created_at >= %(start)s AND created_at < %(end)s ORDER BY created_at, id")
    for name, start, end in list(_months(conn, tz)):
        yield f"month={name}", _copy_frame(conn, sql, {"start": start, "end": end},
                                           CASE_COLUMNS)


def _part_partitions(conn: Connection) -> Iterator[tuple[str, gpd.GeoDataFrame]]:
    districts = [r[0] for r in conn.execute(text(
        "SELECT DISTINCT left(code, 6) FROM city_part ORDER BY 1"))]
    select = ", ".join(PART_COLUMNS)
    sql = (f"SELECT {select}, encode(ST_AsBinary(geom), 'hex') FROM city_part "
           "WHERE code >= %(start)s AND code < %(end)s ORDER BY code")
    for district in districts:
        # the code range of the district (codes start with it): the primary key's index
        yield f"district={district}", _copy_frame(
            conn, sql, {"start": district, "end": district + "~"}, PART_COLUMNS)
