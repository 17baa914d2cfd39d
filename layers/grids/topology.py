"""Topology check of the stored grid coverage: loads current grids and areas, then
``spatial.topology.check_topology`` (pure geometry) does the work."""

from __future__ import annotations

import shapely
from sqlalchemy import Engine, text

from spatial.topology import DEFAULT_MIN_AREA_M2, TopologyReport, check_topology


def check_stored_topology(engine: Engine, min_area_m2: float = DEFAULT_MIN_AREA_M2
                          ) -> TopologyReport:
    with engine.connect() as conn:
        grids = conn.execute(text(
            "SELECT code, community_code, ST_AsBinary(geom) FROM unit_grid "
            "WHERE gen_to IS NULL ORDER BY code")).all()
        areas = conn.execute(text(
            "SELECT code, level, parent_code, ST_AsBinary(geom) FROM admin_area "
            "ORDER BY code")).all()
    return check_topology(
        [r[0] for r in grids], [r[1] for r in grids],
        shapely.from_wkb([bytes(r[2]) for r in grids]) if grids else [],
        [r[0] for r in areas], [r[1] for r in areas], [r[2] for r in areas],
        shapely.from_wkb([bytes(r[3]) for r in areas]) if areas else [],
        min_area_m2=min_area_m2)
