"""Drawing unit grids (网格划分) inside communities from a line network — pure geometry, no DB.

The standard's practice: grids follow physical edges (roads, rivers, walls) and, in dense urban
areas, hold about 10,000 m² each (万米单元网格). Per community:

1. node the network lines clipped to the community together with its boundary and polygonize
   (shapely.polygonize): the faces are the city blocks the network cuts the community into;
2. merge slivers (below ``min_area``) into the neighbour that shares the longest edge;
3. split oversized blocks (above ``max_area``) into about ``area / target`` roughly equal parts
   by recursive cuts across the longer axis;
4. fit the pieces to the community exactly (``spatial.coverage``: fixed-precision overlay, each
   piece minus the ones before it, leftovers to the neighbour with the longest shared edge,
   shared edges given identical vertices) so the grids tile the community with no gap, no
   overlap and no crossing of its boundary;
5. number them: community code + serial in reading order (north → south rows, west → east).

Areas are measured in metres with ``spatial.measure``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from gridcore.codes import make_grid_code
from gridcore.errors import ValidationError
from spatial.coverage import (
    GRID_SIZE,
    LocalScale,
    fit_exactly,
    fit_outline,
    polygons,
    share_vertices,
    shared_length,
)
from spatial.measure import areas_m2

__all__ = ["GRID_SIZE", "DrawingRules", "blocks", "draw_community", "draw_grids",
           "merge_slivers", "network_geometries", "partition", "reading_order",
           "share_vertices", "split_oversized"]



@dataclass(frozen=True, slots=True)
class DrawingRules:
    """Size rules of unit grids, in m²."""

    target_area: float = 10_000.0
    min_area: float | None = None  # default: target / 4
    max_area: float | None = None  # default: target × 2

    @property
    def min_m2(self) -> float:
        return self.target_area / 4 if self.min_area is None else self.min_area

    @property
    def max_m2(self) -> float:
        return self.target_area * 2 if self.max_area is None else self.max_area

    def validate(self) -> DrawingRules:
        if not self.target_area > 0:
            raise ValidationError(f"target area must be positive, got {self.target_area}",
                                  field="target_area")
        if not 0 <= self.min_m2 <= self.target_area <= self.max_m2:
            raise ValidationError(
                f"grid areas must satisfy min ≤ target ≤ max, got min {self.min_m2}, "
                f"target {self.target_area}, max {self.max_m2}", field="min_area/max_area")
        return self


def blocks(community, lines) -> list[Polygon]:  # type: ignore[no-untyped-def]
    """Faces the network cuts one community into (the community itself when nothing cuts it)."""
    community = shapely.set_precision(community, GRID_SIZE)
    clipped = shapely.intersection(lines, community, grid_size=GRID_SIZE) if len(lines) else []
    linework = [g for g in clipped if not g.is_empty] + [community.boundary]
    noded = shapely.union_all(np.array(linework, dtype=object), grid_size=GRID_SIZE)
    faces = polygons(shapely.polygonize(shapely.get_parts(noded)))
    # polygonize also fills the community's holes; keep the faces inside the community
    inside = [f for f in faces if community.contains(f.point_on_surface())]
    return inside or polygons(community)


def merge_slivers(pieces: list, min_area: float,  # type: ignore[type-arg]
                  scale: LocalScale) -> list:  # type: ignore[type-arg]
    """Merge every piece below ``min_area`` into the neighbour sharing its longest edge.

    Smallest first; a sliver with no neighbour sharing an edge stays as it is.
    """
    pieces = list(pieces)
    areas = [scale.area(p) for p in pieces]
    stuck: set[int] = set()
    while True:
        small = [i for i, a in enumerate(areas) if a < min_area and i not in stuck]
        if not small or len(pieces) < 2:
            return pieces
        i = min(small, key=lambda k: areas[k])
        tree = shapely.STRtree(pieces)
        best, best_len = None, 0.0
        for j in tree.query(pieces[i], predicate="intersects"):
            if j != i:
                length = shared_length(pieces[i], pieces[j], scale)
                if length > best_len:
                    best, best_len = int(j), length
        if best is None:
            stuck.add(i)
            continue
        merged = shapely.union(pieces[best], pieces[i], grid_size=GRID_SIZE)
        pieces[best], areas[best] = merged, areas[best] + areas[i]
        del pieces[i], areas[i]
        stuck = {k - (k > i) for k in stuck}


def _cut(block: shapely.Geometry, parts: int, scale_x: float) -> list[shapely.Geometry]:
    """``parts`` roughly equal-area pieces of ``block`` by recursive cuts across its longer axis.

    The cut position is found by bisection on the area fraction; ``scale_x`` (cos latitude)
    makes "longer" mean longer on the ground.
    """
    if parts <= 1:
        return [block]
    x0, y0, x1, y1 = block.bounds
    vertical = (x1 - x0) * scale_x >= (y1 - y0)
    first = parts // 2
    share = first / parts
    total = block.area
    lo, hi = (x0, x1) if vertical else (y0, y1)
    left = None
    for _ in range(40):
        mid = (lo + hi) / 2
        half = box(x0 - 1, y0 - 1, mid, y1 + 1) if vertical else box(x0 - 1, y0 - 1, x1 + 1, mid)
        left = shapely.intersection(block, half, grid_size=GRID_SIZE)
        fraction = left.area / total
        if abs(fraction - share) < 1e-4:
            break
        lo, hi = (mid, hi) if fraction < share else (lo, mid)
    right = shapely.difference(block, left, grid_size=GRID_SIZE)
    return _cut(left, first, scale_x) + _cut(right, parts - first, scale_x)


def split_oversized(pieces: list, rules: DrawingRules,  # type: ignore[type-arg]
                    scale: LocalScale) -> list:  # type: ignore[type-arg]
    out = []
    for piece in pieces:
        area = scale.area(piece)
        if area <= rules.max_m2:
            out.append(piece)
            continue
        parts = max(2, round(area / rules.target_area))
        scale_x = math.cos(math.radians(piece.centroid.y))
        for part in _cut(piece, parts, scale_x):
            out.extend(polygons(part))
    return out


def _as_multi(geom) -> MultiPolygon:  # type: ignore[no-untyped-def]
    return MultiPolygon(polygons(geom))


def reading_order(geoms: list, row_height_m: float) -> list[int]:  # type: ignore[type-arg]
    """Indices in reading order: rows of ``row_height_m`` north → south, then west → east.

    Keyed on each grid's representative point rounded to ~1 m, so tiny numeric noise does not
    reorder grids and a rerun on the same input numbers them the same.
    """
    points = [g.point_on_surface() for g in geoms]
    top = max(p.y for p in points)
    row_deg = row_height_m / 111_320.0
    keys = [(math.floor(round((top - p.y) / row_deg, 6)), round(p.x, 5), round(-p.y, 5))
            for p in points]
    return sorted(range(len(geoms)), key=lambda i: keys[i])


def partition(area, lines, rules: DrawingRules) -> list[MultiPolygon]:  # type: ignore[no-untyped-def]
    """An exact tiling of ``area`` along ``lines`` by the size rules, in reading order.

    Used for unit grids in a community, and by the demo for streets in a district and
    communities in a street (the same rules of physical edges, at larger sizes).
    """
    scale = LocalScale(area)
    pieces = blocks(area, lines)
    pieces = merge_slivers(pieces, rules.min_m2, scale)
    pieces = split_oversized(pieces, rules, scale)
    pieces = merge_slivers(pieces, rules.min_m2, scale)
    pieces = fit_outline(fit_exactly(pieces, area, scale), area, scale)
    pieces = share_vertices([*pieces, area])[:-1]
    return [_as_multi(pieces[i]) for i in reading_order(pieces, math.sqrt(rules.target_area))]


def draw_community(community, lines, code: str,  # type: ignore[no-untyped-def]
                   rules: DrawingRules) -> gpd.GeoDataFrame:
    """The unit grids of one community (WGS 84), with 15-digit codes."""
    geoms = partition(community, lines, rules)
    if len(geoms) > 999:
        raise ValidationError(
            f"community {code} would get {len(geoms)} unit grids, more than the 999 a 3-digit "
            f"serial allows; raise --target-area", community=code, grids=len(geoms))
    frame = gpd.GeoDataFrame({
        "code": [make_grid_code(code, n) for n in range(1, len(geoms) + 1)],
        "community_code": code,
        "name": [f"{code} 第{n:03d}网格" for n in range(1, len(geoms) + 1)],
    }, geometry=geoms, crs=4326)
    frame["area_m2"] = areas_m2(frame.geometry.values)
    return frame


def network_geometries(lines) -> np.ndarray:  # type: ignore[no-untyped-def]
    """WGS 84 linear geometries of a network; polygons (a river bank, a walled yard) give
    their rings."""
    series = lines.geometry if isinstance(lines, gpd.GeoDataFrame) else lines
    if getattr(series, "crs", None) is not None:
        series = series.to_crs(4326)
    linear = np.array(list(series), dtype=object)
    if len(linear) == 0:
        return linear
    linear = linear[~shapely.is_missing(linear)]
    polygonal = np.isin(shapely.get_type_id(linear), (3, 6))
    linear[polygonal] = shapely.boundary(linear[polygonal])
    kept: np.ndarray = linear[~shapely.is_empty(linear)]
    return kept


def draw_grids(communities: gpd.GeoDataFrame, lines: gpd.GeoSeries | gpd.GeoDataFrame,
               rules: DrawingRules | None = None, code_field: str = "code") -> gpd.GeoDataFrame:
    """Unit grids for every community: columns code, community_code, name, area_m2, geometry.

    ``communities`` and ``lines`` in any CRS (reprojected to WGS 84); lines may be any linear
    or polygonal geometry (polygons contribute their rings, e.g. a river bank or a wall).
    """
    rules = (rules or DrawingRules()).validate()
    if code_field not in communities.columns:
        raise ValidationError(f"communities have no {code_field!r} column",
                              field=code_field, columns=list(communities.columns))
    communities = communities.to_crs(4326) if communities.crs else communities
    linear = network_geometries(lines)
    tree = shapely.STRtree(linear)
    frames = []
    for row in communities.sort_values(code_field).itertuples():
        code, geom = str(getattr(row, code_field)), row.geometry
        if geom is None or geom.is_empty:
            raise ValidationError(f"community {code} has an empty geometry", community=code)
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        nearby = linear[tree.query(geom, predicate="intersects")]
        frames.append(draw_community(geom, nearby, code, rules))
    if not frames:
        return gpd.GeoDataFrame({"code": [], "community_code": [], "name": [], "area_m2": []},
                                geometry=[], crs=4326)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
