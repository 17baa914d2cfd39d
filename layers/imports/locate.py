"""Which current unit grid holds each geometry (point-in-polygon on an STRtree).

A stop-gap until the resolve engineer's in-memory locator exists: it loads the current grids of
the import's own transaction (so grids imported a moment ago count) and queries them in one
vectorised STRtree call. A point on a shared edge belongs to the grid with the smaller code, so
the answer is deterministic.
"""

from __future__ import annotations

import numpy as np
import shapely
from sqlalchemy import Connection, text


def grid_codes_of(conn: Connection, geoms: np.ndarray) -> np.ndarray:
    """The current grid code of each geometry (polygons by a representative point), or None."""
    out = np.full(len(geoms), None, dtype=object)
    rows = conn.execute(text("SELECT code, ST_AsBinary(geom) FROM unit_grid "
                             "WHERE gen_to IS NULL ORDER BY code")).all()
    if not rows or len(geoms) == 0:
        return out
    codes = np.array([r[0] for r in rows], dtype=object)
    tree = shapely.STRtree(shapely.from_wkb([bytes(r[1]) for r in rows]))
    geoms = np.asarray(geoms, dtype=object)
    points = geoms.copy()
    areal = shapely.get_type_id(geoms) != 0
    if areal.any():
        points[areal] = shapely.point_on_surface(geoms[areal])
    src, hit = tree.query(points, predicate="intersects")
    # Tree items are ordered by code, so the first hit per input is the smallest code.
    order = np.lexsort((hit, src))
    src, hit = src[order], hit[order]
    first = np.ones(len(src), dtype=bool)
    first[1:] = src[1:] != src[:-1]
    out[src[first]] = codes[hit[first]]
    return out
