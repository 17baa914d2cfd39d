"""Shapes for health choropleths: the current unit grids, or the administrative areas of a
level (falling back to the union of their grids where an area has no stored boundary)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from layers.health.scores import check_level

_GRIDS = """
SELECT code AS key, name, {geom} AS geometry
FROM unit_grid WHERE gen_to IS NULL AND code LIKE :prefix ORDER BY code
"""
_AREAS = """
WITH keys AS (SELECT DISTINCT left(code, :n) AS key FROM unit_grid
              WHERE gen_to IS NULL AND code LIKE :prefix)
SELECT k.key, coalesce(a.name, k.key) AS name,
       {geom} AS geometry
FROM keys k LEFT JOIN admin_area a ON a.code = k.key
ORDER BY k.key
"""


_AREA_GEOM = ("coalesce(a.geom, (SELECT ST_Union(g.geom) FROM unit_grid g "
              "WHERE g.gen_to IS NULL AND left(g.code, :n) = k.key))")


def shapes_sql(level: str, geojson: bool = True) -> str:
    """SQL (parameters ``:n`` and ``:prefix``, a LIKE pattern of grid codes) of the shapes of
    ``level``: GeoJSON text or the geometry."""
    check_level(level)
    raw = "geom" if level == "grid" else _AREA_GEOM
    geom = f"ST_AsGeoJSON({raw}, 6)" if geojson else raw
    return (_GRIDS if level == "grid" else _AREAS).format(geom=geom)


def shapes(conn: Connection, level: str, area: str = "") -> list[dict[str, Any]]:
    """[{key, name, geometry (GeoJSON text)}] of every current key of ``level`` (inside the
    area whose code starts the grid codes, when given)."""
    return [dict(r) for r in conn.execute(text(shapes_sql(level)), {
        "n": check_level(level), "prefix": like_prefix(area)}).mappings()]


def like_prefix(area: str) -> str:
    """A LIKE pattern for the codes starting with ``area`` (codes are digits; escaped anyway)."""
    return area.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def names(conn: Connection, level: str, codes: list[str] | None = None) -> dict[str, str]:
    """Code → name of every current key of ``level`` (grid names, or area names), or of the
    given ``codes`` only (a ranking names its few rows, not 60,000 grids)."""
    n = check_level(level)
    sql = ("SELECT code, name FROM unit_grid WHERE gen_to IS NULL" if level == "grid" else
           "SELECT code, name FROM admin_area WHERE length(code) = :n")
    if codes is not None:
        sql += " AND code = ANY(:codes)"
    return {r[0]: r[1] for r in conn.execute(text(sql), {"n": n, "codes": codes})}
