"""Which current unit grid holds each imported geometry — the resolve engineer's in-memory
``spatial.locator.GridLocator`` (exact ``ST_Covers`` semantics, lowest code on shared edges),
built from the current grids as the import's own transaction sees them.

No snapping here (``snap_m=0``): an imported coordinate is taken as surveyed, so a part outside
every grid stays outside (and needs ``--district`` for its code) rather than being pulled into
the nearest grid as a phone's GPS fix would be. Polygons are located by a point on their surface.
"""

from __future__ import annotations

import numpy as np
import shapely
from sqlalchemy import Connection, text

from spatial.locator import OUTSIDE, GridLocator


def grid_codes_of(conn: Connection, geoms: np.ndarray) -> np.ndarray:
    """The current grid code of each geometry, or None."""
    out = np.full(len(geoms), None, dtype=object)
    rows = conn.execute(text("SELECT code, ST_AsBinary(geom) FROM unit_grid "
                             "WHERE gen_to IS NULL")).all()
    if not rows or len(geoms) == 0:
        return out
    locator = GridLocator(shapely.from_wkb([bytes(r[1]) for r in rows]),
                          [r[0] for r in rows], snap_m=0.0)
    geoms = np.asarray(geoms, dtype=object)
    points = geoms.copy()
    areal = shapely.get_type_id(geoms) != 0
    if areal.any():
        points[areal] = shapely.point_on_surface(geoms[areal])
    found = locator.locate_many(shapely.get_x(points), shapely.get_y(points),
                                nearest=False).index
    inside = found != OUTSIDE
    out[inside] = locator.codes[found[inside]]
    return out
