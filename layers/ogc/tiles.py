"""Mapbox Vector Tiles of the collections, built by PostGIS (``ST_AsMVT``).

The rows of a tile are found with ``geom && ST_Transform(<tile envelope>, 4326)``: the envelope
is transformed once, the column never, so the GiST index on ``geom`` does the work. Polygons are
simplified by zoom (a quarter pixel) before they are cut to the tile. At low zooms the cases are
aggregated into H3 hexagons with counts per clock colour (H3 cells stored per case; the parent
cell is bit arithmetic on the stored index, see :func:`h3_parent_masks`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import h3  # only cell ids ↔ ints and cell outlines; spatial.h3cells keeps the lon/lat helpers
from sqlalchemy import Connection, text

from gridcore.errors import ValidationError
from layers.ogc import case_cells, part_tiles
from layers.ogc.collections import Collection
from layers.ogc.features import ItemsQuery, clean_filters, where_clause
from layers.ogc.hexagons import (
    BUFFER,
    EXTENT,
    SERIAL,
    cells_box,
    covering_cells,
    h3_parent_masks,
    h3_resolution_for,
    hexagon_mvt,
)
from spatial.crs import Shift

MAX_ZOOM = 22
CLOCK_RANK = "CASE {c} WHEN 'red' THEN 3 WHEN 'yellow' THEN 2 WHEN 'green' THEN 1 ELSE 0 END"
# Below this zoom a tile spans too many hexagons to list them: its cases are grouped as found.
COVERING_MIN_ZOOM = 6


@dataclass(frozen=True)
class Tile:
    data: bytes
    expires: datetime | None  # the data changes by itself then (a clock colour), or never


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise ValidationError(f"tile {z}/{x}/{y} is outside WebMercatorQuad "
                              f"(0 ≤ z ≤ {MAX_ZOOM}, 0 ≤ x, y < 2^z)", field="tile")


def _base(c: Collection, q: ItemsQuery, shift: Shift) -> tuple[str, dict]:
    conds, params = where_clause(c, q)
    conds.append("t.geom && ST_Translate(ST_Transform(ST_TileEnvelope(:z, :x, :y, "
                 "margin => :margin), 4326), :ndx, :ndy)")
    params.update(margin=BUFFER / EXTENT, ndx=-shift.dx, ndy=-shift.dy)
    return f"FROM {c.table} t WHERE {' AND '.join(conds)}", params


def features_tile(conn: Connection, c: Collection, z: int, x: int, y: int, q: ItemsQuery,
                  shift: Shift = Shift()) -> Tile:
    base, params = _base(c, q, shift)
    geom = "t.geom"
    if c.geometry_type != "Point" and z < 16:
        geom = "ST_Simplify(t.geom, :tol, true)"
        params["tol"] = 90.0 / (2 ** z * EXTENT)  # a quarter pixel, in degrees of longitude
    if shift.dx or shift.dy:
        geom = f"ST_Translate({geom}, :dx, :dy)"
        params.update(dx=shift.dx, dy=shift.dy)
    fields = [f for f in c.fields if f.in_tiles]
    props = ", ".join(f"({f.sql}){'::text' if 'date' in f.kind else ''} AS \"{f.name}\""
                      for f in fields)
    names = ", ".join(f'"{f.name}"' for f in fields)
    expires = f"{c.expires_sql}" if c.expires_sql else "NULL::timestamptz"
    row = conn.execute(text(
        f"{SERIAL}WITH rows AS (SELECT ST_AsMVTGeom(ST_Transform({geom}, 3857), "
        f"ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS geom, {props}, "
        f"{expires} AS expires {base}) "
        f"SELECT (SELECT ST_AsMVT(m.*, :layer, {EXTENT}, 'geom') FROM "
        f"(SELECT geom, {names} FROM rows WHERE geom IS NOT NULL) m) AS mvt, "
        f"(SELECT min(expires) FROM rows) AS expires"),
        {**params, "z": z, "x": x, "y": y, "layer": c.id}).one()
    return Tile(bytes(row.mvt or b""), row.expires)


def h3_tile(conn: Connection, c: Collection, z: int, x: int, y: int, q: ItemsQuery,
            shift: Shift = Shift()) -> Tile:
    """Cases as H3 hexagons: ``count``, counts per clock colour and the worst colour. From
    zoom 6 on, a hexagon counts every case inside it (the same count in each tile it
    touches); without a filter its settled cases come from the per-cell counts
    (``layers.ogc.case_cells``) and only the open ones are read."""
    res = h3_resolution_for(z)
    if z < COVERING_MIN_ZOOM:
        return _hexagons(conn, c, z, x, y, _live(conn, c, z, x, y, q, shift, res, None), {},
                         shift)
    cells = covering_cells(z, x, y, res, shift)
    if not cells:
        return Tile(b"", None)
    stored = None
    if case_cells.serves(q.filters, q.start, q.end, q.bbox, q.scope):
        stored = case_cells.settled(conn, [h3.str_to_int(cell) for cell in cells], res)
    live = _live(conn, c, z, x, y, q, shift, res, cells, open_only=stored is not None)
    return _hexagons(conn, c, z, x, y, live, stored or {}, shift)


def _live(conn: Connection, c: Collection, z: int, x: int, y: int, q: ItemsQuery,
          shift: Shift, res: int, cells: list[str] | None, open_only: bool = False
          ) -> dict[int, Any]:
    """Cases counted case by case per hexagon: in ``cells``, or, without cells, in the tile
    and its buffer. Open cases only (the settled ones are stored, or a filter asks for open
    cases) are read as ranges of their level-10 cells from the index of open cases: a 40 km
    tile's thousands of open cases are a few index pages, not a table page each (migration
    0025); other filters count the cases over the cells' box."""
    clock = c.field("clock")
    clock_sql = clock.sql if clock else "'green'"
    clear, setbits = h3_parent_masks(res)
    # each case's colour (as a rank) and expiry worked out once, then counted
    per_case = (f"{CLOCK_RANK.format(c=f'({clock_sql})')} AS k, "
                f"{c.expires_sql or 'NULL::timestamptz'} AS e")
    counts = ("count(*) AS n, count(*) FILTER (WHERE k = 3) AS red, "
              "count(*) FILTER (WHERE k = 2) AS yellow, count(*) FILTER (WHERE k = 1) AS green, "
              "max(k) AS worst, min(e) AS expires")
    filters = dict(clean_filters(c, q.filters))
    if cells is not None and (open_only or filters.get("open") == "true"):
        # open=true is what the range's index holds: left out of the conditions, whose
        # cast the planner cannot estimate (it then expects one row and scans every open
        # case for each hexagon); LATERAL keeps one index range read per hexagon
        conds, params = where_clause(c, replace(q, filters=tuple(
            (k, v) for k, v in filters.items() if k != "open")))
        parents = [h3.str_to_int(cell) for cell in cells]
        ranges = case_cells.coarse_ranges(parents, res, case_cells.OPEN_LEVEL)
        params.update(lo=[r[0] for r in ranges], hi=[r[1] for r in ranges], clear=clear,
                      setbits=setbits)
        rows = conn.execute(text(
            f"{SERIAL}SELECT (o.cell & :clear) | :setbits AS cell, {counts} "
            f"FROM unnest(CAST(:lo AS bigint[]), CAST(:hi AS bigint[])) AS p(lo, hi) "
            f"CROSS JOIN LATERAL (SELECT {case_cells.OPEN_CELL_SQL} AS cell, {per_case} "
            f"FROM {c.table} t WHERE {case_cells.OPEN_CELL_SQL} BETWEEN p.lo AND p.hi AND "
            f"{' AND '.join([*conds, case_cells.OPEN_SQL])}) o GROUP BY 1"), params).all()
        shown = set(parents)
        return {int(r.cell): r for r in rows if int(r.cell) in shown}
    if cells is None:
        base, params = _base(c, q, shift)
    else:
        conds, params = where_clause(c, q)
        conds.append("t.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)")
        params.update(zip(("w", "s", "e", "n"), cells_box(cells), strict=True))
        base = f"FROM {c.table} t WHERE {' AND '.join(conds)}"
    rows = conn.execute(text(
        f"{SERIAL}SELECT cell, {counts} FROM (SELECT (('x' || lpad(t.h3, 16, '0'))::bit(64)"
        f"::bigint & :clear) | :setbits AS cell, {per_case} {base} "
        f"AND t.h3 ~* '{case_cells.H3_TEXT}') r GROUP BY 1"),
        {**params, "z": z, "x": x, "y": y, "clear": clear, "setbits": setbits}).all()
    keep = None if cells is None else {h3.str_to_int(cell) for cell in cells}
    return {int(r.cell): r for r in rows if keep is None or int(r.cell) in keep}


def _hexagons(conn: Connection, c: Collection, z: int, x: int, y: int, live: dict[int, Any],
              settled: dict[int, int], shift: Shift) -> Tile:
    """The tile of hexagons from the live counts per cell and the settled ones (clock
    "none")."""
    found = sorted(set(live) | set(settled))
    if not found:
        return Tile(b"", None)
    colours = {3: "red", 2: "yellow", 1: "green", 0: "none"}
    rows = [live.get(key) for key in found]
    mvt = hexagon_mvt(conn, c.id, z, x, y, found, {
        "count": ("int", [(r.n if r else 0) + settled.get(k, 0) for k, r in zip(
            found, rows, strict=True)]),
        "red": ("int", [r.red if r else 0 for r in rows]),
        "yellow": ("int", [r.yellow if r else 0 for r in rows]),
        "green": ("int", [r.green if r else 0 for r in rows]),
        "clock": ("text", [colours[r.worst if r else 0] for r in rows])}, shift)
    expiry = [r.expires for r in live.values() if r.expires is not None]
    return Tile(mvt, min(expiry) if expiry else None)


def tile(conn: Connection, c: Collection, z: int, x: int, y: int, q: ItemsQuery,
         shift: Shift = Shift()) -> Tile:
    check_tile(z, x, y)
    if z < c.tile_min_zoom:
        return Tile(b"", None)
    if c.h3_aggregate_below is not None and z < c.h3_aggregate_below:
        if c.table == part_tiles.TABLE:
            return Tile(part_tiles.hexagons(conn, c, z, x, y, q, shift), None)
        return h3_tile(conn, c, z, x, y, q, shift)
    return features_tile(conn, c, z, x, y, q, shift)
