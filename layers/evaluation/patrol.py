"""Patrol coverage of grid workers (巡查覆盖率) from patrol tracks (巡查轨迹), when the city
records them: the share of a worker's grid area within ``buffer_m`` of the tracks of their
shifts that started in the window.

The track table belongs to the grid workers' phone app (another part of gridcore, being
built); its name and columns are data (``patrol`` in ``evaluation_indicators.json``). Until a
database has that table, every worker's coverage is reported as "no patrol data" — never as 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Connection, text

_IDENT = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def _ident(name: str) -> str:
    if not name or set(name) - _IDENT:
        raise ValueError(f"not a plain SQL name: {name!r}")
    return name


def patrol_columns(conn: Connection, spec: dict[str, Any], keys: list[str], window: Any
                   ) -> dict[str, np.ndarray] | None:
    """grid_m2 and patrol_covered_m2 per worker (in ``keys`` order), or None without data."""
    table, worker = _ident(spec.get("table", "")), _ident(spec.get("worker", ""))
    start, geom = _ident(spec.get("start", "")), _ident(spec.get("geom", ""))
    found = {r[0] for r in conn.execute(text(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = :t"), {"t": table})}
    if not {worker, start, geom} <= found:
        return None
    rows = conn.execute(text(f"""
        WITH w AS (SELECT unnest(CAST(:keys AS text[])) AS code),
        g AS (SELECT w.code, ST_Union(u.geom) AS geom, sum(u.area_m2) AS m2
              FROM w JOIN unit_grid u ON u.gen_to IS NULL AND w.code = ANY(u.worker_codes)
              GROUP BY w.code),
        t AS (SELECT p.{worker} AS code,
                     ST_Union(ST_Buffer(CAST(p.{geom} AS geography), :buffer)::geometry)
                         AS geom
              FROM {table} p
              WHERE p.{start} >= :start AND p.{start} < :end
                AND p.{worker} = ANY(CAST(:keys AS text[]))
              GROUP BY p.{worker})
        SELECT g.code, g.m2,
               coalesce(ST_Area(CAST(ST_Intersection(g.geom, t.geom) AS geography)), 0)
        FROM g LEFT JOIN t ON t.code = g.code"""),
        {"keys": keys, "buffer": float(spec.get("buffer_m", 25)), "start": window.start,
         "end": window.end}).all()
    pos = {k: i for i, k in enumerate(keys)}
    grid_m2, covered = np.zeros(len(keys)), np.zeros(len(keys))
    for code, m2, area in rows:
        grid_m2[pos[code]], covered[pos[code]] = float(m2 or 0), float(area or 0)
    return {"grid_m2": grid_m2, "patrol_covered_m2": covered}
