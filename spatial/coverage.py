"""Exact tiling (无缝无叠) of an area by drawn pieces: the geometry behind the guarantee that
unit grids cover their community with no gap, no overlap and nothing across its boundary.

All overlay runs on a fixed precision grid of ``GRID_SIZE`` degrees (≈ 0.1 mm): GEOS'
snap-rounding overlay is exact on that grid, which is what makes "union = community" hold
exactly rather than up to floating-point dust. ``fit_outline`` then restores an input outline
that is not on the grid, and ``share_vertices`` removes the T-junctions that floating-point
checks (PostGIS, the topology checker) would otherwise see as sub-millimetre slivers.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import Polygon

from spatial.measure import areas_m2

GRID_SIZE = 1e-9  # degrees; ≈ 0.1 mm, far below survey accuracy, far above double rounding


class LocalScale:
    """Degrees → metres near one community, for the many small measurements of drawing.

    Reprojecting every candidate piece with pyproj is slow, a call per piece
    (benchmarks/README.md); a local linear scale calibrated once per community on the exact
    equal-area measure (``spatial.measure``) is exact to well under 0.1 % over a community's
    extent, which is all thresholds need.
    """

    def __init__(self, community) -> None:  # type: ignore[no-untyped-def]
        lat = community.centroid.y
        self.kx = 111_320.0 * math.cos(math.radians(lat))
        self.ky = 110_574.0
        exact = float(areas_m2(np.array([community], dtype=object))[0])
        self.area_factor = exact / community.area if community.area > 0 else self.kx * self.ky

    def area(self, geom) -> float:  # type: ignore[no-untyped-def]
        return float(geom.area) * self.area_factor

    def length(self, geom) -> float:  # type: ignore[no-untyped-def]
        return float(shapely.length(shapely.transform(
            geom, lambda xy: xy * np.array([self.kx, self.ky]))))


def shared_length(a, b, scale: LocalScale) -> float:  # type: ignore[no-untyped-def]
    """Length (in metres) of the boundary two polygons share; 0 when they only touch."""
    common = shapely.intersection(a.boundary, b.boundary, grid_size=GRID_SIZE)
    return 0.0 if common.is_empty else scale.length(common)


def polygons(geom) -> list[Polygon]:  # type: ignore[no-untyped-def]
    parts = shapely.get_parts(geom)
    return [p for p in parts if isinstance(p, Polygon) and not p.is_empty and p.area > 0]


def fit_exactly(pieces: list, community,  # type: ignore[no-untyped-def,type-arg]
                scale: LocalScale) -> list:  # type: ignore[type-arg]
    """Pieces clipped to the community, made disjoint, and leftovers given to a neighbour."""
    community = shapely.set_precision(community, GRID_SIZE)
    out, taken = [], Polygon()
    for piece in pieces:
        part = shapely.difference(shapely.intersection(piece, community, grid_size=GRID_SIZE),
                                  taken, grid_size=GRID_SIZE)
        if polygons(part):
            out.append(part)
            taken = shapely.union(taken, part, grid_size=GRID_SIZE)
    rest = shapely.difference(community, taken, grid_size=GRID_SIZE)
    for leftover in polygons(rest):
        if not out:
            out.append(leftover)
            continue
        lengths = [shared_length(leftover, p, scale) for p in out]
        best = int(np.argmax(lengths)) if max(lengths) > 0 else int(
            np.argmin([leftover.distance(p) for p in out]))
        out[best] = shapely.union(out[best], leftover, grid_size=GRID_SIZE)
    return out


def fit_outline(pieces: list, area, scale: LocalScale) -> list:  # type: ignore[no-untyped-def,type-arg]
    """Pieces fitted to the area's own outline when that is not on the precision grid.

    ``fit_exactly`` tiles the area snapped to ``GRID_SIZE``; an input community with finer
    coordinates differs from that by slivers up to half a grid cell wide (≈ 0.05 mm), which a
    topology check would report as gaps or crossings. Here each piece is clipped to the true
    outline and what the snapped area missed goes to the neighbour sharing the longest edge, in
    plain floating point: the outline's own vertices are kept as they are.
    """
    xy = shapely.get_coordinates(area)
    per_unit = round(1 / GRID_SIZE)
    if np.array_equal(xy, np.round(xy * per_unit) / per_unit):
        return pieces  # already on the grid: the exact tiling is the area's own
    fitted = [shapely.intersection(p, area) for p in pieces]
    rest = shapely.difference(area, shapely.union_all(np.array(fitted, dtype=object)))
    for leftover in polygons(rest):
        lengths = [scale.length(shapely.intersection(leftover.boundary, p.boundary))
                   for p in fitted]
        best = int(np.argmax(lengths)) if max(lengths) > 0 else int(
            np.argmin([leftover.distance(p) for p in fitted]))
        fitted[best] = shapely.union(fitted[best], leftover)
    return [f for f in fitted if polygons(f)]


def share_vertices(geoms: list) -> list:  # type: ignore[type-arg]
    """Give both sides of every shared edge the same vertices.

    After fixed-precision overlay a vertex of one polygon may lie on (within the grid size of)
    an edge of its neighbour — or of the community outline — that lacks it: a T-junction. Exact
    on the grid, but a floating-point check (PostGIS ``ST_Union`` / ``ST_Intersection``) sees
    0.1 mm slivers there. Snapping each polygon to the vertices of the polygons it touches
    inserts the missing vertices, so shared edges become identical vertex chains. A snap that
    would break a polygon or move it by more than the grid size is not taken.
    """
    if len(geoms) < 2:
        return list(geoms)
    tree = shapely.STRtree(geoms)
    out = []
    for i, geom in enumerate(geoms):
        near = [j for j in tree.query(geom, predicate="intersects") if j != i]
        if not near:
            out.append(geom)
            continue
        coords = np.unique(np.vstack([shapely.get_coordinates(geoms[j]) for j in near]), axis=0)
        snapped = shapely.snap(geom, shapely.multipoints(coords), tolerance=GRID_SIZE * 2)
        ok = snapped.is_valid and abs(snapped.area - geom.area) <= geom.length * GRID_SIZE * 2
        out.append(snapped if ok else geom)
    return out
