"""Draw unit grids (网格划分) from a line network and store them as a new grid generation.

The geometry is ``spatial.drawing``; storing goes through the grid import
(``layers.exchange.imports.load_grids``), so a redraw closes the previous grids of those communities
(``gen_to``) instead of rewriting them — cases keep the grid they were filed in — and a grid
that comes out exactly as before stays the same row.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
from sqlalchemy import Engine, text

from gridcore.errors import ValidationError
from layers.exchange.imports import ImportReport, load_grids, read_file
from spatial.drawing import DrawingRules, draw_grids


def stored_communities(engine: Engine, prefix: str = "") -> gpd.GeoDataFrame:
    """Communities of the database (all, or those whose code starts with ``prefix``)."""
    with engine.connect() as conn:
        frame = gpd.read_postgis(
            text("SELECT code, name, geom FROM admin_area WHERE level = 'community' "
                 "AND code LIKE :prefix ORDER BY code"),
            conn, geom_col="geom", params={"prefix": f"{prefix}%"})
    if frame.empty:
        raise ValidationError(
            "no communities to draw grids in" + (f" under {prefix}" if prefix else "")
            + ": import them first (gridcore import areas) or give --communities FILE",
            prefix=prefix)
    return frame.rename_geometry("geometry")


def file_communities(path: str | Path, code_field: str = "code",
                     crs: str | None = None) -> gpd.GeoDataFrame:
    frame = read_file(path, "areas", crs)
    if code_field not in frame.columns:
        raise ValidationError(f"communities file {Path(path).name} has no column "
                              f"{code_field!r} (use --code-field)", field=code_field,
                              columns=list(frame.columns))
    return frame.rename(columns={code_field: "code"})[["code", "geometry"]]


def draw_and_store(engine: Engine, communities: gpd.GeoDataFrame, network: gpd.GeoDataFrame,
                   rules: DrawingRules | None = None, note: str = "drawn from network"
                   ) -> tuple[gpd.GeoDataFrame, ImportReport]:
    grids = draw_grids(communities, network, rules)
    report = load_grids(engine, grids, code_field="code", community_field="community_code",
                        note=note)
    return grids, report
