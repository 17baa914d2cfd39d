"""Street-shaped unit grids: the synthetic megacity (``demo.megacity``), the resolve tests and
``benchmarks/bench_resolve.py``.

Real grid layers are drawn along streets, walls and rivers: their edges carry a vertex every
few tens of metres, neighbours share those vertices exactly, and the city's outline is ragged,
so a box around it holds much open land. The few-vertex Voronoi cells of
``tests.support.grids.voronoi_grids`` have none of this. Here: Voronoi cells (about
``cell_km2`` each) whose seeds fall inside an irregular blob, every shared edge densified every
``step_m`` metres with vertices jittered sideways by up to ``jitter_m`` (once per edge, so both
neighbours keep identical vertices), polygonized back into a gap-free, overlap-free coverage.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
import shapely.affinity

_M_PER_DEG = 111_320.0


def _blob(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float,
          share: float) -> shapely.Polygon:
    """A ragged star-shaped outline (lon/lat) covering about ``share`` of its box."""
    angles = np.linspace(0.0, 2 * math.pi, 97)[:-1]
    wobble = np.ones_like(angles)
    for k in (2, 3, 5, 7):  # a few harmonics: lobes and bays, like a real city limit
        wobble += rng.uniform(0.04, 0.12) * np.cos(k * angles + rng.uniform(0, 2 * math.pi))
    wobble /= wobble.max()
    # A circle inscribed in the box covers π/4 of it; scale the radius to the wanted share.
    r = math.sqrt(share / (math.pi / 4)) * wobble
    ring = np.column_stack((cx + rx * r * np.cos(angles), cy + ry * r * np.sin(angles)))
    return shapely.Polygon(ring)


def _jittered(line: shapely.LineString, step: float, jitter: float,
              rng: np.random.Generator, kx: float, ky: float) -> np.ndarray:
    """The line's coordinates with a vertex every ``step`` metres, moved sideways by up to
    ``jitter`` metres; the end points stay put so junctions still meet."""
    xy = shapely.get_coordinates(line)
    metric = xy * (kx, ky)
    seg = np.diff(metric, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    out = [xy[:1]]
    for i, length in enumerate(lengths):
        k = max(math.ceil(length / step), 1)
        t = (np.arange(1, k + 1) / k)[:, None]
        pts = metric[i] + t * seg[i]
        if k > 1 and length > 0:
            normal = np.array([-seg[i, 1], seg[i, 0]]) / length
            # Sideways by a smooth random amount, never at the segment's own end points.
            pts[:-1] += normal * rng.uniform(-jitter, jitter, (k - 1, 1))
        out.append(pts / (kx, ky))
    coords = np.concatenate(out)
    coords[-1] = xy[-1]  # bit-identical end points: the neighbour's line ends there too
    return coords


def street_grids(n: int = 20_000, cell_km2: float = 0.055, x0: float = 116.2, y0: float = 39.7,
                 share: float = 0.65, step_m: float = 25.0, jitter_m: float = 4.0,
                 seed: int = 7) -> np.ndarray:
    """About ``n`` street-shaped grids of about ``cell_km2`` covering ``share`` of their box."""
    rng = np.random.default_rng(seed)
    kx, ky = _M_PER_DEG * math.cos(math.radians(y0)), _M_PER_DEG
    unit = _blob(rng, 0.5, 0.5, 0.5, 0.5, share)
    covered = unit.area  # of the unit box
    side_m = math.sqrt(n * cell_km2 * 1e6 / covered)
    w, h = side_m / kx, side_m / ky
    outline = shapely.affinity.affine_transform(unit, (w, 0, 0, h, x0, y0))
    box = shapely.box(x0, y0, x0 + w, y0 + h)
    count = int(round(n / covered))
    seeds = np.column_stack((rng.uniform(x0, x0 + w, count), rng.uniform(y0, y0 + h, count)))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds),
                                                        extend_to=box))
    cells = shapely.intersection(cells, box)
    keep = shapely.contains_xy(outline, *shapely.get_coordinates(
        shapely.point_on_surface(cells)).T)
    cells = cells[keep & ~shapely.is_empty(cells)]
    # Every edge once: noding the cells' boundaries splits them at the junctions, and merging
    # joins the pieces between two junctions into one street-like line.
    edges = shapely.get_parts(shapely.line_merge(shapely.union_all(shapely.boundary(cells))))
    lines = np.array([shapely.LineString(_jittered(e, step_m, jitter_m, rng, kx, ky))
                      for e in edges], dtype=object)
    # A jittered line may cross a neighbour where two streets meet at a very sharp angle: such
    # lines go back to straight (densified, unjittered) until nothing crosses.
    for _ in range(5):
        tree = shapely.STRtree(lines)
        a, b = tree.query(lines, predicate="crosses")
        bad = np.unique(np.concatenate([a, b]))
        if not len(bad):
            break
        lines[bad] = [shapely.LineString(_jittered(edges[i], step_m, 0.0, rng, kx, ky))
                      for i in bad]
    grids = shapely.get_parts(shapely.polygonize(lines))
    return np.asarray(shapely.normalize(grids), dtype=object)
