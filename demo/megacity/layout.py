"""The megacity's ground: street-shaped unit grids and the area tree above them.

Synthetic, deterministic from a seed. ~60,000 street-shaped grids (``demo.street_grids``:
Voronoi cells with every edge densified every 25 m and jittered, neighbours sharing vertices)
over a ragged city outline; ~6,000 communities, ~215 streets and 16 districts grouped from
them bottom-up (each community is the grids nearest one community seed, each street the
communities nearest a street seed, each district the streets nearest a district seed), so
every level tiles the one below exactly, as the real tree does. Codes follow GB/T 2260 /
GB/T 10114 lengths (district 6, street 9, community 12, grid 15 digits) under the synthetic
province 99, city 02 (``9902xx``): no real code can be mistaken for them (the Helsinki demo
is ``990101``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from demo.street_grids import street_grids
from spatial.measure import areas_m2

CITY_PREFIX = "9902"  # synthetic province 99, city 02
X0, Y0 = 121.0, 30.9  # the south-west corner of the city's box (a plain in the Yangtze delta)
DISTRICT_NAMES = ["黄浦", "徐汇", "长宁", "静安", "普陀", "虹口", "杨浦", "闵行", "宝山", "嘉定",
                  "浦东", "金山", "松江", "青浦", "奉贤", "崇明"]


@dataclass
class Ground:
    """The grids (geometry, code, community) and the areas (code, level, name, parent,
    geometry) of the megacity, plus each grid's "heat" (how much happens there)."""

    grids: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    heat: np.ndarray  # per grid, relative case intensity (hot spots)

    @property
    def district_codes(self) -> list[str]:
        return sorted(self.areas.loc[self.areas["level"] == "district", "code"])

    @property
    def street_codes(self) -> list[str]:
        return sorted(self.areas.loc[self.areas["level"] == "street", "code"])


def _groups(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Each point's group: the nearest of ``k`` seeds picked among the points (compact,
    contiguous groups of uneven size, like communities drawn by hand)."""
    k = min(k, len(points))
    seeds = points[rng.choice(len(points), k, replace=False)]
    # two Lloyd steps even out the sizes a little (real communities are of similar population)
    for _ in range(2):
        _, label = cKDTree(seeds).query(points)
        sums = np.zeros((k, 2))
        np.add.at(sums, label, points)
        counts = np.bincount(label, minlength=k)[:, None]
        seeds = np.where(counts > 0, sums / np.maximum(counts, 1), seeds)
    _, label = cKDTree(seeds).query(points)
    return np.unique(label, return_inverse=True)[1]  # no empty group numbers


def _reading_order(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """North to south, then west to east, in bands of about a grid's height (map reading
    order, as grid codes are numbered)."""
    band = np.floor((y.max() - y) / 0.003).astype(np.int64)
    return np.lexsort((x, band))


def _codes(parent: np.ndarray, child_group: np.ndarray, x: np.ndarray, y: np.ndarray
           ) -> np.ndarray:
    """Serial numbers (1-based, reading order) of each group within its parent."""
    centre = pd.DataFrame({"g": child_group, "x": x, "y": y, "p": parent}).groupby("g").agg(
        x=("x", "mean"), y=("y", "mean"), p=("p", "first"))
    order = _reading_order(centre["x"].to_numpy(), centre["y"].to_numpy())
    ranked = centre.iloc[order]
    serial = ranked.groupby("p").cumcount().to_numpy() + 1
    out = np.empty(len(centre), dtype=np.int64)
    out[ranked.index.to_numpy()] = serial
    return out


def build_ground(grids: int = 60_000, communities: int = 6_000, streets: int = 215,
                 districts: int = 16, seed: int = 2026) -> Ground:
    """The grids and the area tree; about ``grids`` grids of ~0.1 km² (a city of about
    ``grids`` / 10 km²)."""
    rng = np.random.default_rng(seed)
    geoms = street_grids(grids, cell_km2=0.1, x0=X0, y0=Y0, share=0.7, seed=seed)
    centre = shapely.get_coordinates(shapely.centroid(geoms))
    comm = _groups(centre, communities, rng)
    n_comm = comm.max() + 1
    comm_xy = np.column_stack([np.bincount(comm, centre[:, i]) / np.bincount(comm)
                               for i in (0, 1)])
    street_of_comm = _groups(comm_xy, streets, rng)
    street_xy = np.column_stack([np.bincount(street_of_comm, comm_xy[:, i])
                                 / np.bincount(street_of_comm) for i in (0, 1)])
    district_of_street = _groups(street_xy, districts, rng)
    # codes, top down, each level numbered in reading order inside its parent
    d_serial = _codes(np.zeros(len(street_xy), dtype=np.int64), district_of_street,
                      street_xy[:, 0], street_xy[:, 1])
    d_code = np.array([f"{CITY_PREFIX}{s:02d}" for s in d_serial])
    s_serial = _codes(district_of_street[street_of_comm], street_of_comm, comm_xy[:, 0],
                      comm_xy[:, 1])
    s_code = np.array([f"{d_code[district_of_street[s]]}{s_serial[s]:03d}"
                       for s in range(len(street_xy))])
    c_serial = _codes(street_of_comm[comm], comm, centre[:, 0], centre[:, 1])
    c_code = np.array([f"{s_code[street_of_comm[c]]}{c_serial[c]:03d}" for c in range(n_comm)])
    g_order = _reading_order(centre[:, 0], centre[:, 1])
    g_serial = np.empty(len(geoms), dtype=np.int64)
    g_serial[g_order] = pd.Series(comm[g_order]).groupby(comm[g_order]).cumcount().to_numpy() + 1
    grid_frame = gpd.GeoDataFrame({
        "code": [f"{c_code[c]}{s:03d}" for c, s in zip(comm, g_serial, strict=True)],
        "community_code": c_code[comm],
        "name": [f"网格 {s:03d}" for s in g_serial],
    }, geometry=geoms, crs=4326)
    grid_frame["area_m2"] = areas_m2(grid_frame.geometry.values)
    grid_frame = grid_frame.sort_values("code", ignore_index=True)
    areas = _areas(grid_frame, c_code, s_code, d_code, street_of_comm, district_of_street)
    heat = _heat(grid_frame, rng)
    return Ground(grid_frame, areas, heat)


def _areas(grids: gpd.GeoDataFrame, c_code: np.ndarray, s_code: np.ndarray,
           d_code: np.ndarray, street_of_comm: np.ndarray,
           district_of_street: np.ndarray) -> gpd.GeoDataFrame:
    """Communities, streets and districts as the union of what they hold (coverage unions:
    the grids tile them without gaps or overlaps)."""
    rows: list[tuple[str, str, str, str | None, object]] = []
    by_comm = grids.groupby("community_code").indices
    comm_geom = {c: shapely.coverage_union_all(grids.geometry.values[i])
                 for c, i in by_comm.items()}
    street_geom = {}
    for s, code in enumerate(s_code):
        members = [comm_geom[c] for c in c_code[street_of_comm == s]]
        street_geom[code] = shapely.coverage_union_all(np.array(members, dtype=object))
    for d, code in enumerate(sorted(set(d_code))):
        members = [street_geom[s] for s in s_code if s.startswith(code)]
        name = DISTRICT_NAMES[d % len(DISTRICT_NAMES)]
        rows.append((code, "district", f"{name}演示区 (synthetic)", None,
                     shapely.coverage_union_all(np.array(members, dtype=object))))
    for code in sorted(street_geom):
        rows.append((code, "street", f"第{int(code[6:]):02d}街道 street {code[6:]}",
                     code[:6], street_geom[code]))
    for code in sorted(comm_geom):
        rows.append((code, "community", f"第{int(code[9:]):03d}社区 community {code[9:]}",
                     code[:9], comm_geom[code]))
    del district_of_street  # the codes carry it
    frame = gpd.GeoDataFrame({"code": [r[0] for r in rows], "level": [r[1] for r in rows],
                              "name": [r[2] for r in rows],
                              "parent_code": [r[3] for r in rows]},
                             geometry=[shapely.MultiPolygon(shapely.get_parts(r[4]))
                                       for r in rows], crs=4326)
    return frame


def _heat(grids: gpd.GeoDataFrame, rng: np.random.Generator) -> np.ndarray:
    """Relative case intensity per grid: denser towards the centre, log-normal spread between
    neighbours, and a few hundred hot spots (markets, stations, old quarters) ten times as
    busy as their surroundings."""
    xy = shapely.get_coordinates(shapely.centroid(grids.geometry.values))
    mid = xy.mean(axis=0)
    scale = np.ptp(xy, axis=0).max() / 2
    r = np.hypot(*(xy - mid).T) / scale
    heat = np.exp(-1.5 * r) * rng.lognormal(0.0, 0.6, len(xy))
    hot = rng.choice(len(xy), max(len(xy) // 200, 1), replace=False)
    heat[hot] *= 10.0
    return heat / heat.sum()


def km2(ground: Ground) -> float:
    return float(ground.grids["area_m2"].sum() / 1e6)


def describe(ground: Ground) -> str:
    levels = ground.areas["level"].value_counts()
    vertices = int(np.median(shapely.get_num_coordinates(ground.grids.geometry.values)))
    return (f"{len(ground.grids):,} grids (median {vertices} vertices), "
            f"{levels.get('community', 0):,} communities, {levels.get('street', 0)} streets, "
            f"{levels.get('district', 0)} districts, {km2(ground):,.0f} km² "
            f"(about {math.sqrt(km2(ground)):.0f} km across)")
