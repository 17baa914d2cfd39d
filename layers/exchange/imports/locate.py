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


def _locator(conn: Connection) -> GridLocator | None:
    rows = conn.execute(text("SELECT code, ST_AsBinary(geom) FROM unit_grid "
                             "WHERE gen_to IS NULL")).all()
    if not rows:
        return None
    return GridLocator(shapely.from_wkb([bytes(r[1]) for r in rows]), [r[0] for r in rows],
                       snap_m=0.0)


def grid_index_of_points(conn: Connection, x: np.ndarray, y: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(grid codes, index per point into them or -1): the bulk importer's form, no Python
    object per point."""
    locator = _locator(conn) if len(x) else None
    if locator is None:
        return np.empty(0, dtype=object), np.full(len(x), -1, dtype=np.int64)
    found = locator.locate_many(x, y, nearest=False).index.astype(np.int64)
    found[found == OUTSIDE] = -1
    return np.asarray(locator.codes, dtype=object), found


def grid_codes_of(conn: Connection, geoms: np.ndarray) -> np.ndarray:
    """The current grid code of each geometry, or None."""
    out = np.full(len(geoms), None, dtype=object)
    locator = _locator(conn) if len(geoms) else None
    if locator is None:
        return out
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
