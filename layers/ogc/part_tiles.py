"""City parts (部件) as H3 hexagons below zoom 14: ``count``, ``per_km2`` (the same colour
scale at every zoom) and the count per part state
(``intact``, ``damaged``, ``missing``, ``occupied``) of the parts inside each hexagon — the same
count in every tile the hexagon touches. Filtered by class, major class or state (what the /map
asks), the counts come from ``part_cell`` (:mod:`layers.ogc.part_cells`); any other filter
counts the parts live."""

from __future__ import annotations

import h3
from sqlalchemy import Connection, text

from layers.ogc import part_cells
from layers.ogc.case_cells import H3_TEXT, level_for
from layers.ogc.collections import Collection
from layers.ogc.features import ItemsQuery, clean_filters, where_clause
from layers.ogc.hexagons import (
    SERIAL,
    cells_box,
    covering_cells,
    h3_parent_masks,
    h3_resolution_for,
    hexagon_mvt,
)
from spatial.crs import Shift

TABLE = "city_part"


def hexagons(conn: Connection, c: Collection, z: int, x: int, y: int, q: ItemsQuery,
             shift: Shift = Shift()) -> bytes:
    res = h3_resolution_for(z)
    cells = covering_cells(z, x, y, res, shift)
    if not cells:
        return b""
    filters = clean_filters(c, q.filters)
    parents = [h3.str_to_int(cell) for cell in cells]
    if part_cells.serves(filters, q.start, q.end, q.bbox):
        found = part_cells.counts(conn, parents, res, filters)
    else:
        found = _live(conn, c, q, res, cells)
    keys = sorted(k for k in found if sum(found[k].values()))
    columns = {"count": ("int", [sum(found[k].values()) for k in keys])}
    columns["per_km2"] = ("int", [round(sum(found[k].values()) / h3.cell_area(
        h3.int_to_str(k), "km^2")) for k in keys])
    for state in part_cells.STATES:
        columns[state] = ("int", [found[k].get(state, 0) for k in keys])
    return hexagon_mvt(conn, c.id, z, x, y, keys, columns, shift)


def _live(conn: Connection, c: Collection, q: ItemsQuery, res: int, cells: list[str]
          ) -> dict[int, dict[str, int]]:
    """Parts counted one by one per hexagon of ``cells`` and state."""
    conds, params = where_clause(c, q)
    conds.append("t.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)")
    params.update(zip(("w", "s", "e", "n"), cells_box(cells), strict=True))
    clear, setbits = h3_parent_masks(res)
    rows = conn.execute(text(
        f"{SERIAL}SELECT (('x' || lpad(t.h3, 16, '0'))::bit(64)::bigint & :clear) | :setbits "
        f"AS cell, t.state, count(*) AS n FROM {c.table} t WHERE {' AND '.join(conds)} "
        f"AND t.h3 ~* '{H3_TEXT}' AND ((('x' || lpad(t.h3, 16, '0'))::bit(64)::bigint >> 52) "
        f"& 15) >= :level GROUP BY 1, 2"),  # counted as part_cell counts them
        {**params, "clear": clear, "setbits": setbits,
         "level": level_for(res, part_cells.LEVELS)}).all()
    wanted = {h3.str_to_int(cell) for cell in cells}
    found: dict[int, dict[str, int]] = {}
    for r in rows:
        if int(r.cell) in wanted:
            found.setdefault(int(r.cell), {})[r.state] = int(r.n)
    return found
