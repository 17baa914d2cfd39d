"""Patrol coverage of grid workers (巡查覆盖率) from patrol tracks (巡查轨迹), when the city
records them: the share of a worker's grid area within ``buffer_m`` of the tracks of their
shifts that started in the window.

The tracks come from the grid workers' phone app (网格通: ``patrol_shift``, read through the
view ``patrol_worker_track`` that names each shift's worker of the register); the names are
data (``patrol`` in ``evaluation_indicators.json``). A database without that table or view
reports every worker's coverage as "no patrol data" — never as 0. So does a worker whom no
account of the app is linked to (``recorders``: ``app_user.worker_code``): they could not have
recorded a track, so a 0 would blame them for a phone they do not have. A linked worker with
no shift in the period covers 0.
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
    if not {worker, start, geom} <= _columns(conn, table):
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
    recording = _recorders(conn, spec.get("recorders"), keys)
    if recording is not None:
        missing = [pos[k] for k in keys if k not in recording]
        grid_m2[missing], covered[missing] = np.nan, np.nan
    return {"grid_m2": grid_m2, "patrol_covered_m2": covered}


def _recorders(conn: Connection, spec: dict[str, Any] | None, keys: list[str]
               ) -> set[str] | None:
    """The workers among ``keys`` an account of the app is linked to (None: not known, all
    count)."""
    if not spec:
        return None
    table, worker = _ident(spec.get("table", "")), _ident(spec.get("worker", ""))
    if worker not in _columns(conn, table):
        return None
    return {r[0] for r in conn.execute(text(
        f"SELECT DISTINCT {worker} FROM {table} WHERE {worker} = ANY(CAST(:keys AS text[]))"),
        {"keys": keys})}


def _columns(conn: Connection, table: str) -> set[str]:
    return {r[0] for r in conn.execute(text(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = :t"), {"t": table})}
