"""Feature queries for OGC API – Features: items with bbox, datetime, property filters and
keyset paging; single items; in CRS84 or another CRS (Part 2).

``bbox`` selects the features whose geometry intersects the box (``ST_Intersects``: its
bounding-box test uses the GiST index, then the exact test), never merely those whose
envelope does. A filter value a property cannot take (not a number, not one of its values,
not a code's digits) is refused, naming the property.

Keyset paging (``after`` / ``before`` the id of a row) instead of offsets: a page link stays
valid while rows are added or removed elsewhere, and it never vanishes while rows remain
(pygeoapi #1594, #1981). Features are serialised to GeoJSON inside PostGIS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text

from gridcore.errors import UnknownParameter, ValidationError
from gridcore.security.access import Scope
from layers.ogc.collections import Collection, Field
from layers.security.scoping import case_scope_sql

COUNT_CAP = 100_000  # numberMatched is left out above this: counting must stay cheap
PRECISION = 7  # decimals of a degree: ~1 cm
BBOX_SQL = "ST_Intersects(t.geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))"


@dataclass(frozen=True)
class Output:
    """The CRS geometries are written in: its SRID (stored lon/lat become it), whether its
    axis order is lat/lon, and the decimals kept. CGCS2000 (4490) is WGS 84 to a few
    centimetres, as ``spatial.crs`` holds: the coordinates are relabelled, not moved."""

    srid: int = 4326
    lat_lon: bool = False
    decimals: int = PRECISION

    def geometry_sql(self, column: str = "t.geom") -> str:
        geom = column
        if self.srid == 4490:
            geom = f"ST_SetSRID({geom}, 4490)"
        elif self.srid != 4326:
            geom = f"ST_Transform({geom}, {int(self.srid)})"
        return f"ST_FlipCoordinates({geom})" if self.lat_lon else geom


@dataclass(frozen=True)
class ItemsQuery:
    bbox: tuple[float, float, float, float] | None = None  # CRS84 lon/lat
    start: datetime | None = None
    end: datetime | None = None
    filters: tuple[tuple[str, str], ...] = ()
    limit: int = 100
    after: str | None = None
    before: str | None = None
    scope: Scope | None = None  # set for the case layer: who asks (gridcore.security.access)
    output: Output = Output()


@dataclass(frozen=True)
class ItemsPage:
    features: list[str]  # GeoJSON Feature texts
    ids: list[str]
    number_matched: int | None
    has_next: bool
    has_prev: bool


def feature_sql(c: Collection, output: Output = Output()) -> str:
    props = ", ".join(f"'{f.name}', {f.sql}" for f in c.fields)
    return (f"json_build_object('type', 'Feature', 'id', {c.id_sql}, "
            f"'geometry', ST_AsGeoJSON({output.geometry_sql()}, {int(output.decimals)})::json, "
            f"'properties', json_build_object({props}))::text")


def _checked(f: Field, values: list[str]) -> list[str]:
    """The filter's values, each one the property can take; ValidationError otherwise."""
    for value in values:
        reason = None
        if f.values and value not in f.values:
            reason = f"must be one of {', '.join(f.values)}"
        elif f.pattern and not re.fullmatch(f.pattern, value):
            reason = f"does not match {f.pattern}"
        elif f.kind in ("integer", "number", "boolean", "date", "date-time"):
            reason = _type_error(f.kind, value)
        if reason:
            raise ValidationError(f"{f.name}={value!r}: {reason}", field=f.name, value=value)
    return values


def _type_error(kind: str, value: str) -> str | None:
    try:
        if kind == "integer":
            int(value)
        elif kind == "number":
            float(value)
        elif kind == "boolean" and value not in ("true", "false"):
            return "must be true or false"
        elif kind == "date":
            date.fromisoformat(value)
        elif kind == "date-time":
            datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"is not {'an' if kind == 'integer' else 'a'} {kind}"
    return None


def where_clause(c: Collection, q: ItemsQuery) -> tuple[list[str], dict[str, Any]]:
    """Conditions and their bind parameters; identifiers come only from the collection."""
    conds: list[str] = [c.where]
    params: dict[str, Any] = {}
    if q.scope is not None:
        conds.append(case_scope_sql(q.scope, params, "t"))
    if q.bbox is not None:
        conds.append(BBOX_SQL)
        params.update(zip(("x0", "y0", "x1", "y1"), q.bbox, strict=True))
    if q.start is not None or q.end is not None:
        if c.datetime_sql is None:
            raise ValidationError(f"collection {c.id} has no time to filter on",
                                  field="datetime", collection=c.id)
        if q.start is not None:
            conds.append(f"{c.datetime_sql} >= :t0")
            params["t0"] = q.start
        if q.end is not None:
            conds.append(f"{c.datetime_sql} <= :t1")
            params["t1"] = q.end
    for i, (name, values) in enumerate(clean_filters(c, q.filters)):
        f = c.filterable[name]
        expr = f.sql if f.kind == "string" else f"({f.sql})::text"
        conds.append(f"{expr} = ANY(:f{i})")
        params[f"f{i}"] = values.split(",")
        if f.kind == "boolean" and values in ("true", "false"):
            # the same condition spelled out, so that a partial index on it (the open cases'
            # place, migration 0002) can serve: the planner cannot see through the cast
            conds.append(f"({f.sql})" if values == "true" else f"NOT ({f.sql})")
    return conds, params


MAX_FILTER_VALUES, MAX_FILTER_CHARS = 50, 200


def clean_filters(c: Collection, filters: tuple[tuple[str, str], ...]
                  ) -> tuple[tuple[str, str], ...]:
    """Property filters checked against the collection's filterable properties (an unknown
    one is a 400) and normalised — each property once, its values de-duplicated and sorted,
    each within reason — so that equal filters are one cache key, and junk no key at all."""
    merged: dict[str, set[str]] = {}
    for name, value in filters:
        if name not in c.filterable:
            raise UnknownParameter(
                f"{name[:60]!r} is not a filterable property of {c.id}; use one of "
                f"{', '.join(sorted(c.filterable))}", field=name[:60], collection=c.id)
        values = merged.setdefault(name, set())
        values.update(value.split(","))
        if len(values) > MAX_FILTER_VALUES or any(len(v) > MAX_FILTER_CHARS for v in values):
            raise ValidationError(f"filter {name}: at most {MAX_FILTER_VALUES} values of at "
                                  f"most {MAX_FILTER_CHARS} characters", field=name)
    return tuple((name, ",".join(_checked(c.filterable[name], sorted(values))))
                 for name, values in sorted(merged.items()))


def items(conn: Connection, c: Collection, q: ItemsQuery) -> ItemsPage:
    conds, params = where_clause(c, q)
    base = f"FROM {c.table} t WHERE " + " AND ".join(conds)
    backwards = q.before is not None and q.after is None
    page_conds, order = "", "ASC"
    key_raw = q.after if q.after is not None else q.before
    if key_raw is not None:
        key = c.id_value(key_raw)
        if key is None:
            raise ValidationError(f"{key_raw!r} is not a feature id of {c.id}",
                                  field="after" if q.after is not None else "before")
        params["key"] = key
        page_conds = f" AND {c.id_sql} {'<' if backwards else '>'} :key"
        order = "DESC" if backwards else "ASC"
    rows = list(conn.execute(text(
        f"SELECT {c.id_sql} AS fid, {feature_sql(c, q.output)} AS doc {base}{page_conds} "
        f"ORDER BY {c.id_sql} {order} LIMIT :lim"), {**params, "lim": q.limit + 1}).all())
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    if backwards:
        rows.reverse()
    if q.after is None and q.before is None:
        has_next, has_prev = more, False
    else:
        # Whether rows lie on the other side of the key we came from.
        op = "<=" if not backwards else ">="
        other = conn.execute(text(
            f"SELECT EXISTS (SELECT 1 {base} AND {c.id_sql} {op} :key)"), params).scalar()
        has_next, has_prev = (bool(other), more) if backwards else (more, bool(other))
    return ItemsPage([r.doc for r in rows], [str(r.fid) for r in rows],
                     count(conn, c, q), has_next, has_prev)


def count(conn: Connection, c: Collection, q: ItemsQuery) -> int | None:
    conds, params = where_clause(c, q)
    n = conn.execute(text(
        f"SELECT count(*) FROM (SELECT 1 FROM {c.table} t WHERE {' AND '.join(conds)} "
        f"LIMIT {COUNT_CAP + 1}) s"), params).scalar_one()
    return None if n > COUNT_CAP else int(n)


def item(conn: Connection, c: Collection, feature_id: str,
         scope: Scope | None = None, output: Output = Output()) -> str | None:
    key = c.id_value(feature_id)
    if key is None:
        return None
    params: dict[str, Any] = {"fid": key}
    scoped = f" AND {case_scope_sql(scope, params, 't')}" if scope is not None else ""
    return conn.execute(text(
        f"SELECT {feature_sql(c, output)} FROM {c.table} t WHERE {c.where} "
        f"AND {c.id_sql} = :fid"
        f"{scoped}"), params).scalar()


def extent(conn: Connection, c: Collection) -> list[float] | None:
    row = conn.execute(text(
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        f"(SELECT ST_Extent(t.geom) AS e FROM {c.table} t WHERE {c.where}) s")).first()
    return [float(v) for v in row] if row and row[0] is not None else None
