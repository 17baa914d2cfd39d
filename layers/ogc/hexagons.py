"""H3 hexagons in a vector tile: which cells cover a tile, a cell's parent by bit arithmetic,
and the MVT layer of hexagons with their counts (the low zooms of the case and part tiles)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import h3  # only cell ids ↔ ints and cell outlines; spatial.h3cells keeps the lon/lat helpers
from sqlalchemy import Connection, text

from spatial.crs import Shift

EXTENT = 4096
BUFFER = 64
# PostGIS declares its functions costly so that big queries go parallel; for a tile's few
# hundred rows that turns an index scan into a parallel seq scan whose worker start-up alone
# costs many times the tile (benchmarks/README.md, "Design figures"). Sent in the
# same round trip, planned before the tile query, undone when the transaction ends.
SERIAL = "SET LOCAL max_parallel_workers_per_gather = 0; "


def h3_resolution_for(z: int) -> int:
    """Hexagons a few dozen pixels wide: res 10 (~65 m) at z14 down to res 4 at z8 and
    below."""
    return max(4, min(10, z - 4))


def h3_parent_masks(res: int) -> tuple[int, int]:
    """(and-mask, or-mask) that turn any finer H3 cell index into its parent at ``res``:
    the 4 resolution bits (52–55) are set to ``res`` and the digits below it to 7 (unused)."""
    unused = (1 << (3 * (15 - res))) - 1
    clear = ~(0xF << 52) & ((1 << 63) - 1)
    return clear, (res << 52) | unused


def covering_cells(z: int, x: int, y: int, res: int, shift: Shift = Shift()) -> list[str]:
    """The H3 cells of resolution ``res`` that overlap the tile and its buffer, in the data's
    frame (the tile moved back by ``shift``)."""
    n, m = 2 ** z, BUFFER / EXTENT

    def lat(v: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * v / n))))

    west, east = max(-180.0, (x - m) / n * 360 - 180), min(180.0, (x + 1 + m) / n * 360 - 180)
    south, north = lat(y + 1 + m), lat(y - m)
    west, east, south, north = (west - shift.dx, east - shift.dx, south - shift.dy,
                                north - shift.dy)
    poly = h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
    return list(h3.polygon_to_cells_experimental(poly, res, contain="overlap"))


def cells_box(cells: Sequence[str]) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the cells' outlines."""
    lons, lats = [], []
    for cell in cells:
        for la, lo in h3.cell_to_boundary(cell):
            lons.append(lo)
            lats.append(la)
    return min(lons), min(lats), max(lons), max(lats)


def hexagon_mvt(conn: Connection, layer: str, z: int, x: int, y: int, keys: Sequence[int],
                columns: dict[str, tuple[str, list]], shift: Shift) -> bytes:
    """The MVT layer of the hexagons ``keys`` (H3 integers) with properties ``columns``
    (name → (PostgreSQL array type, one value per key)), ``h3`` and ``aggregated``."""
    if not keys:
        return b""
    wkts, cells = [], []
    for key in keys:
        cell = h3.int_to_str(key)
        ring = [(lng + shift.dx, lat + shift.dy) for lat, lng in h3.cell_to_boundary(cell)]
        ring.append(ring[0])
        wkts.append("POLYGON((" + ",".join(f"{a:.7f} {b:.7f}" for a, b in ring) + "))")
        cells.append(cell)
    names = list(columns)
    args = "".join(f", CAST(:c{i} AS {columns[n][0]}[])" for i, n in enumerate(names))
    props = "".join(f", c{i} AS \"{n}\"" for i, n in enumerate(names))
    cols = "".join(f", c{i}" for i in range(len(names)))
    mvt = conn.execute(text(
        f"SELECT ST_AsMVT(m.*, :layer, {EXTENT}, 'geom') FROM (SELECT ST_AsMVTGeom("
        f"ST_Transform(ST_GeomFromText(w, 4326), 3857), ST_TileEnvelope(:z, :x, :y), "
        f"{EXTENT}, {BUFFER}, true) AS geom, h AS h3{props}, true AS aggregated "
        f"FROM unnest(CAST(:w AS text[]), CAST(:h AS text[]){args}) AS u(w, h{cols})) m "
        f"WHERE m.geom IS NOT NULL"),
        {"layer": layer, "z": z, "x": x, "y": y, "w": wkts, "h": cells,
         **{f"c{i}": columns[n][1] for i, n in enumerate(names)}}).scalar()
    return bytes(mvt or b"")
