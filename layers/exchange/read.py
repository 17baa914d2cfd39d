"""The analysts' read API: any layer, case query or health table as a GeoDataFrame.

>>> from layers.exchange.read import read_layer, read_cases, read_health
>>> grids = read_layer(engine, "grids")                 # current unit grids
>>> cases = read_cases(engine, window="30d", grid="320508001001001")
>>> health = read_health(engine, window="2026-09-01/2026-10-01", level="community")

Every frame's geometry column is ``geometry``. Plain ``geopandas.read_postgis(sql, engine,
geom_col="geom")`` works on the same tables too (the tables call it ``geom``). Cases carry
every milestone an analyst needs to recompute the rates: reported, verified, registered,
dispatched, handled (first feedback), checked, closed, the current deadline and parked time.
Personal data stays out: 9+X records come without their restricted attributes, cases without
reporter and intake payload.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import Engine, text

from gridcore.calendar import WorkingCalendar
from gridcore.errors import ValidationError
from gridcore.health import HealthModel, Window, score_grids
from layers.health.scores import aggregate, check_level
from layers.health.shapes import shapes_sql
from layers.schema.cases import MILESTONES_LATERAL

# Every frame's geometry column is "geometry" (geopandas' own name), whatever the table
# calls it.
_LAYERS = {
    "areas": "SELECT code, level, name, parent_code, area_m2, attributes, geom AS geometry "
             "FROM admin_area",
    "grids": "SELECT id, code, name, community_code, area_m2, worker_codes, gen_from, gen_to, "
             "geom AS geometry FROM unit_grid WHERE gen_to IS NULL",
    "all_grids": "SELECT id, code, name, community_code, area_m2, gen_from, gen_to, "
                 "geom AS geometry FROM unit_grid",
    "parts": "SELECT code, class_code, name, state, grid_code, h3, maintenance_dept, "
             "owner_dept, recorded_on, changed_on, source, geom AS geometry FROM city_part",
    "entities": "SELECT code, area, type, name, grid_code, sensitivity, attributes, "
                "geom AS geometry FROM governance_entity",
    # every timestamp needed to recompute the rates (MILESTONE_COLUMNS), from the history
    "cases": "SELECT c.id, c.public_no, c.category_key, c.state, c.source, c.grid_code, "
             "c.community_code, c.street_code, c.district_code, c.h3, c.part_code, "
             "c.department_code, c.stage, c.created_at, c.created_at AS reported_at, "
             "m.verified_at, m.registered_at, m.dispatched_at, m.handled_at, m.checked_at, "
             "c.closed_at, c.deadline_at, c.parked_seconds, c.geom AS geometry "
             f"FROM case_record c {MILESTONES_LATERAL}",
}
# Rows in the order of each layer's key: without it a frame's order was the table's physical
# order, which changes as rows are deleted and their space reused (an analyst's two reads of
# the same data came in different orders; a CI run saw grids 002 before 001).
_ORDER = {"areas": "code", "grids": "code", "all_grids": "code, gen_from", "parts": "code",
          "entities": "code", "cases": "id"}
GEOMETRY = "geometry"


def read_sql(engine: Engine, sql: str, params: dict[str, Any] | None = None,
             geom_col: str = GEOMETRY) -> gpd.GeoDataFrame:
    """Any query with a geometry column into a GeoDataFrame (EPSG:4326) whose geometry
    column is named ``geometry`` (a query's ``geom_col`` is renamed)."""
    with engine.connect() as conn:
        frame = gpd.read_postgis(text(sql), conn, geom_col=geom_col, params=params or {},
                                 crs="EPSG:4326")
    return frame.rename_geometry(GEOMETRY) if geom_col != GEOMETRY else frame


def read_layer(engine: Engine, name: str, where: str | None = None,
               params: dict[str, Any] | None = None) -> gpd.GeoDataFrame:
    """A layer by name (areas, grids, all_grids, parts, entities, cases); ``where`` is an
    optional SQL condition with ``:named`` parameters."""
    if name not in _LAYERS:
        raise ValidationError(f"unknown layer {name!r}; layers are {', '.join(_LAYERS)}",
                              field="layer", value=name, allowed=list(_LAYERS))
    sql = f"SELECT * FROM ({_LAYERS[name]}) AS layer"
    if where:
        sql += f" WHERE {where}"
    return read_sql(engine, sql + f" ORDER BY {_ORDER[name]}", params)


def read_cases(engine: Engine, window: str | None = None, grid: str | None = None,
               community: str | None = None, street: str | None = None,
               district: str | None = None, state: str | None = None,
               category: str | None = None, now: datetime | None = None) -> gpd.GeoDataFrame:
    """Cases reported in ``window`` (``2026-09-01/2026-10-01`` or ``30d``), by area, state
    (comma list) or category key prefix (``E01`` or ``E0103``)."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if window:
        w = Window.parse(window, now or datetime.now(UTC))
        clauses.append("created_at >= :start AND created_at < :end")
        params.update(start=w.start, end=w.end)
    for col, value in (("grid_code", grid), ("community_code", community),
                       ("street_code", street), ("district_code", district)):
        if value:
            clauses.append(f"{col} = :{col}")
            params[col] = value
    if state:
        clauses.append("state = ANY(:states)")
        params["states"] = [s.strip() for s in state.split(",")]
    if category:
        clauses.append("category_key LIKE :category")
        params["category"] = category + "%"
    return read_layer(engine, "cases", " AND ".join(clauses) or None, params)


def read_health(engine: Engine, window: str, level: str = "grid",
                model: HealthModel | None = None, calendar: WorkingCalendar | None = None,
                now: datetime | None = None) -> gpd.GeoDataFrame:
    """Every key of ``level`` with its aggregates, indicator values, index scores and total,
    and its shape — the table behind the choropleths."""
    check_level(level)
    cal = calendar or WorkingCalendar.chinese()
    w = Window.parse(window, now or datetime.now(UTC), cal.timezone)
    model = model or HealthModel.default()
    with engine.connect() as conn:  # every aggregate family, not only those the model reads
        agg = aggregate(conn, w, level, cal, model.repeat_days, names=None)
    table = score_grids(model, agg.keys, agg.columns)
    frame = pd.DataFrame({"code": table.codes, **agg.columns,
                          **{f"value_{k}": v for k, v in table.values.items()},
                          **table.index_scores, "total": table.total})
    geo = read_sql(engine, shapes_sql(level, geojson=False), {"n": check_level(level),
                                                              "prefix": "%"},
                   geom_col="geometry").rename(columns={"key": "code"})
    return geo.merge(frame, on="code", how="right")
