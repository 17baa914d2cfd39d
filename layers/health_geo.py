"""Shapes for health choropleths: the current unit grids, or the administrative areas of a
level (falling back to the union of their grids where an area has no stored boundary)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from layers.health import check_level

_GRIDS = """
SELECT code AS key, name, ST_AsGeoJSON(geom, 6) AS geometry
FROM unit_grid WHERE gen_to IS NULL ORDER BY code
"""
_AREAS = """
WITH keys AS (SELECT DISTINCT left(code, :n) AS key FROM unit_grid WHERE gen_to IS NULL)
SELECT k.key, coalesce(a.name, k.key) AS name,
       ST_AsGeoJSON(coalesce(a.geom, (SELECT ST_Union(g.geom) FROM unit_grid g
                                      WHERE g.gen_to IS NULL AND left(g.code, :n) = k.key)),
                    6) AS geometry
FROM keys k LEFT JOIN admin_area a ON a.code = k.key
ORDER BY k.key
"""


def shapes(conn: Connection, level: str) -> list[dict[str, Any]]:
    """[{key, name, geometry (GeoJSON text)}] of every current key of ``level``."""
    n = check_level(level)
    sql = _GRIDS if level == "grid" else _AREAS
    return [dict(r) for r in conn.execute(text(sql), {"n": n}).mappings()]
