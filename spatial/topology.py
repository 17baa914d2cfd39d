"""Topology check of a unit-grid coverage (网格拓扑检查) — pure shapely, no database.

Unit grids must tile each community with no gaps and no overlaps. This finds:

- ``overlap``: two grids sharing area (pair of codes, area in m², a point inside the overlap);
- ``gap``: area of a community covered by no grid, or of a street (district) covered by none
  of its communities (streets) — for the areas that have any (area, a point inside the gap);
- ``outside_community``: a grid reaching beyond its own community (area outside, a point there);
- ``invalid_geometry`` / ``empty_geometry``: geometries that cannot be used as they are;
- ``code_prefix``: a code that does not start with its parent's (grid vs community, community
  vs street, street vs district); ``missing_parent``: the parent does not exist.

Float noise: two neighbours digitised from the same edge still differ in the last bits, and
their overlaps/gaps come out as slivers of a few mm². Pieces smaller than ``min_area_m2``
(default 0.01 m², a 10 × 10 cm square) are ignored: far below any real mapping error, far above
double-precision noise at city scale. Reprojection leaves longer slivers: a straight edge drawn
in a projected CRS (a state plane, a Gauss-Krüger zone) is no longer straight in lon/lat, so a
neighbour that has an extra vertex on it parts from it by up to ~6 cm over 2 km and ~40 cm over
5 km — pieces of area in the metres² that are only lenses along an edge. A piece is ignored
too when it is nowhere wider than ``SLIVER_RATIO`` of its length (perimeter / 2); a real gap
or overlap, even 1 m wide, is far wider for its length. Areas and
lengths are measured on an equal-area projection (``spatial.measure``), never in degrees.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from spatial.measure import to_local_metres

DEFAULT_MIN_AREA_M2 = 0.01
SLIVER_RATIO = 1e-4  # mean width ÷ length below which a piece is a reprojection sliver
AREA_PREFIX = {"community": 9, "street": 6}
CHILD_LEVEL = {"street": "community", "district": "street"}


@dataclass(frozen=True)
class TopologyProblem:
    kind: str
    codes: tuple[str, ...]
    detail: str
    area_m2: float | None = None
    location: tuple[float, float] | None = None  # lon, lat

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "codes": list(self.codes), "detail": self.detail,
                "area_m2": None if self.area_m2 is None else round(self.area_m2, 3),
                "location": None if self.location is None else
                [round(self.location[0], 7), round(self.location[1], 7)]}


@dataclass
class TopologyReport:
    grids: int
    communities: int
    min_area_m2: float
    problems: list[TopologyProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "grids": self.grids, "communities": self.communities,
                "min_area_m2": self.min_area_m2, "counts": self.counts(),
                "problems": [p.as_dict() for p in self.problems]}

    def to_text(self) -> str:
        head = (f"checked {self.grids} unit grids in {self.communities} communities "
                f"(slivers under {self.min_area_m2} m², or thinner than 1/"
                f"{1 / SLIVER_RATIO:,.0f} of their length, ignored): ")
        if self.ok:
            return head + "no problems"
        lines = [head + ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items()))]
        for p in self.problems:
            where = ""
            if p.location is not None:
                where = f" at {p.location[0]:.6f}, {p.location[1]:.6f}"
            size = f" {p.area_m2:,.2f} m²" if p.area_m2 is not None else ""
            lines.append(f"  {p.kind:<18} {' / '.join(p.codes)}:{size}{where} — {p.detail}")
        return "\n".join(lines)


def _inside_point(geom: shapely.Geometry) -> tuple[float, float] | None:
    """A point inside the largest polygonal piece (lon, lat)."""
    polys = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polys:
        return None
    biggest = max(polys, key=lambda g: g.area)
    pt = shapely.point_on_surface(biggest)
    return (pt.x, pt.y)


def _polygonal_pieces(geom: shapely.Geometry) -> np.ndarray:
    parts: np.ndarray = shapely.get_parts(shapely.get_parts(geom))
    return parts[shapely.get_type_id(parts) == 3] if len(parts) else parts


def _usable(kind: str, codes: Sequence[str], geoms: np.ndarray,
            problems: list[TopologyProblem]) -> np.ndarray:
    ok = np.ones(len(geoms), dtype=bool)
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            problems.append(TopologyProblem("empty_geometry", (codes[i],), f"{kind} has no "
                                            "geometry"))
            ok[i] = False
        elif not g.is_valid:
            c = shapely.centroid(g)
            problems.append(TopologyProblem("invalid_geometry", (codes[i],),
                                            f"{kind}: {shapely.is_valid_reason(g)}",
                                            location=(c.x, c.y)))
            ok[i] = False
    return ok


def check_topology(grid_codes: Sequence[str], grid_communities: Sequence[str],
                   grid_geoms: Sequence[Any], area_codes: Sequence[str],
                   area_levels: Sequence[str], area_parents: Sequence[str | None],
                   area_geoms: Sequence[Any], *, min_area_m2: float = DEFAULT_MIN_AREA_M2
                   ) -> TopologyReport:
    """Check current grids against each other and against their communities."""
    ggeo = np.asarray(grid_geoms, dtype=object)
    ageo = np.asarray(area_geoms, dtype=object)
    problems: list[TopologyProblem] = []
    levels = dict(zip(area_codes, area_levels, strict=True))
    g_ok = _usable("unit grid", grid_codes, ggeo, problems)
    a_ok = _usable("area", area_codes, ageo, problems)
    _check_codes(grid_codes, grid_communities, area_codes, area_levels, area_parents, levels,
                 problems)
    communities = {c: ageo[i] for i, c in enumerate(area_codes)
                   if area_levels[i] == "community" and a_ok[i]}
    report = TopologyReport(len(grid_codes), len(communities), min_area_m2)
    valid = np.flatnonzero(g_ok)
    tree = shapely.STRtree(ggeo[valid])
    pieces: list[tuple[str, tuple[str, ...], str, shapely.Geometry]] = []
    src, hit = tree.query(ggeo[valid], predicate="intersects")
    a_idx, b_idx = valid[src], valid[hit]
    pairs = a_idx < b_idx
    a_idx, b_idx = a_idx[pairs], b_idx[pairs]
    # Neighbours of a tiling touch along edges; only pairs whose interiors share area (DE-9IM
    # "2********") need the costly intersection.
    shared = shapely.relate_pattern(ggeo[a_idx], ggeo[b_idx], "2********")
    for a, b in zip(a_idx[shared].tolist(), b_idx[shared].tolist(), strict=True):
        inter = shapely.intersection(ggeo[a], ggeo[b])
        pieces.append(("overlap", (grid_codes[a], grid_codes[b]), "grids overlap", inter))
    for i in valid.tolist():
        own = communities.get(grid_communities[i])
        if own is not None:
            pieces.append(("outside_community", (grid_codes[i], grid_communities[i]),
                           "grid reaches beyond its community",
                           shapely.difference(ggeo[i], own)))
    for code, geom in communities.items():
        near = valid[tree.query(geom, predicate="intersects")]
        covered = shapely.union_all(ggeo[near]) if len(near) else None
        gap = geom if covered is None else shapely.difference(geom, covered)
        detail = "no unit grid covers this part of the community" if len(near) else \
            "the community has no unit grid at all"
        pieces.append(("gap", (code,), detail, gap))
    _area_gaps(area_codes, area_levels, area_parents, ageo, a_ok, pieces)
    _measure(pieces, min_area_m2, problems)
    report.problems = problems
    return report


def _area_gaps(codes: Sequence[str], levels: Sequence[str], parents: Sequence[str | None],
               geoms: np.ndarray, ok: np.ndarray,
               pieces: list[tuple[str, tuple[str, ...], str, shapely.Geometry]]) -> None:
    """Gaps between the communities of a street and between the streets of a district: the
    parent's area that none of its children covers (parents with no child are not checked:
    a tree imported only down to districts is not a tree full of gaps)."""
    children: dict[str, list[int]] = {}
    for i, (level, parent) in enumerate(zip(levels, parents, strict=True)):
        if ok[i] and parent and level in CHILD_LEVEL.values():
            children.setdefault(parent, []).append(i)
    for i, (code, level) in enumerate(zip(codes, levels, strict=True)):
        below = [j for j in children.get(code, []) if levels[j] == CHILD_LEVEL.get(level)]
        if not ok[i] or not below:
            continue
        gap = shapely.difference(geoms[i], shapely.union_all(geoms[below]))
        pieces.append(("gap", (code,), f"no {CHILD_LEVEL[level]} of this {level} covers this "
                                       f"part of it", gap))


def _measure(pieces: list[tuple[str, tuple[str, ...], str, shapely.Geometry]],
             min_area_m2: float, problems: list[TopologyProblem]) -> None:
    """Split every candidate into polygons, measure them all at once, keep the real ones:
    neither smaller than ``min_area_m2`` nor a sliver along an edge (``SLIVER_RATIO``)."""
    owners: list[int] = []
    polys: list[shapely.Geometry] = []
    for k, (_, _, _, geom) in enumerate(pieces):
        if geom is None or geom.is_empty:
            continue
        for poly in _polygonal_pieces(geom):
            owners.append(k)
            polys.append(poly)
    if not polys:
        return
    local = to_local_metres(np.asarray(polys, dtype=object))
    sizes, perimeters = shapely.area(local), shapely.length(local)
    real = sizes >= min_area_m2
    # thin on average (mean width 2A/P under the ratio of the length P/2): a sliver unless
    # some part of it is wider than that (a real gap joined to slivers along other edges)
    thin = np.flatnonzero(real & (4.0 * sizes < SLIVER_RATIO * perimeters ** 2))
    if len(thin):
        half_width = SLIVER_RATIO * perimeters[thin] / 4.0
        real[thin] = ~shapely.is_empty(shapely.buffer(local[thin], -half_width))
    for k, poly, size, keep in zip(owners, polys, sizes, real, strict=True):
        if keep:
            kind, codes, detail, _ = pieces[k]
            problems.append(TopologyProblem(kind, codes, detail, float(size),
                                            _inside_point(poly)))


def _check_codes(grid_codes: Sequence[str], grid_communities: Sequence[str],
                 area_codes: Sequence[str], area_levels: Sequence[str],
                 area_parents: Sequence[str | None], levels: dict[str, str],
                 problems: list[TopologyProblem]) -> None:
    for code, community in zip(grid_codes, grid_communities, strict=True):
        if code[:12] != community:
            problems.append(TopologyProblem("code_prefix", (code, community),
                                            f"grid code does not start with its community "
                                            f"code {community}"))
        if levels.get(community) != "community":
            problems.append(TopologyProblem("missing_parent", (code, community),
                                            f"community {community} does not exist"))
    for code, level, parent in zip(area_codes, area_levels, area_parents, strict=True):
        if level not in AREA_PREFIX:
            continue
        if not parent or parent not in levels:
            problems.append(TopologyProblem("missing_parent", (code, parent or ""),
                                            f"{level} has no existing parent area"))
        elif code[:AREA_PREFIX[level]] != parent:
            problems.append(TopologyProblem("code_prefix", (code, parent),
                                            f"{level} code does not start with its parent "
                                            f"code {parent}"))
