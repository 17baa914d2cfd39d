"""What is stored (``GET /layers``): each layer with its feature count, extent and version."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import Engine, text

from layers.ogc.collections import layer_versions

# Layer → (table, geometry column, filter for the current rows).
SPATIAL_LAYERS: dict[str, tuple[str, str]] = {
    "areas": ("admin_area", "TRUE"),
    "grids": ("unit_grid", "gen_to IS NULL"),
    "parts": ("city_part", "TRUE"),
    "entities": ("governance_entity", "TRUE"),
}


@dataclass(frozen=True)
class LayerSummary:
    name: str
    table: str
    count: int
    extent: list[float] | None  # [minx, miny, maxx, maxy] in WGS 84
    version: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def layer_summaries(engine: Engine) -> list[LayerSummary]:
    out = []
    with engine.connect() as conn:
        versions, _ = layer_versions(conn)
        for name, (table, where) in SPATIAL_LAYERS.items():
            # Table names come from the constant above, never from a request.
            row = conn.execute(text(
                f"SELECT n, ST_XMin(ext) AS x0, ST_YMin(ext) AS y0, ST_XMax(ext) AS x1, "
                f"ST_YMax(ext) AS y1 FROM (SELECT count(*) AS n, ST_Extent(geom) AS ext "
                f"FROM {table} WHERE {where}) s")).first()
            count = int(row.n) if row else 0
            extent = [row.x0, row.y0, row.x1, row.y1] if row and row.x0 is not None else None
            out.append(LayerSummary(name, table, count, extent, versions.get(name, 0)))
    return out
