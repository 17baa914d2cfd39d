"""9+X governance entities (综治, GB/T 31000) of the demo city — synthetic demo data, no real
person. Placed at deterministic points inside the drawn unit grids; every attribute says so.

Areas: A1 organisations, A2 actual population, A3 special groups, A4 at-risk youth,
A5 enterprises and social organisations, A6 public security, A7 disputes, A8 campus safety,
A9 road and line protection, X1 (local extra) elevators in old housing.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from demo.org import SYNTHETIC

# (area, type, name template, sensitivity, has restricted personal fields)
KINDS: list[tuple[str, str, str, str, bool]] = [
    ("A1", "社区居委会 community committee", "{community} 居委会", "public", False),
    ("A2", "出租房屋 rented housing", "出租屋 {n}", "internal", True),
    ("A3", "社区矫正对象 person under community correction", "矫正对象 {n}", "restricted", True),
    ("A4", "重点青少年 at-risk youth", "重点青少年 {n}", "restricted", True),
    ("A5", "个体工商户 small business", "商户 {n}", "public", False),
    ("A6", "治安重点部位 security focus site", "重点部位 {n}", "internal", False),
    ("A7", "矛盾纠纷 neighbourhood dispute", "纠纷 {n}", "internal", True),
    ("A8", "校园周边 campus surroundings", "校园周边 {n}", "internal", False),
    ("A9", "护路护线 rail and power line section", "护线段 {n}", "internal", False),
    ("X1", "老旧小区电梯 elevator in old housing", "电梯 {n}", "public", False),
]


def demo_entities(grids: gpd.GeoDataFrame, community_names: dict[str, str]
                  ) -> gpd.GeoDataFrame:
    """One entity of every kind per community, at a point inside one of its grids."""
    rng = np.random.default_rng(990101)
    rows = []
    serial = 0
    for community, group in grids.sort_values("code").groupby("community_code", sort=True):
        geoms = group.geometry.to_numpy()
        for area, kind, template, sensitivity, personal in KINDS:
            serial += 1
            grid = geoms[rng.integers(len(geoms))]
            x0, y0, x1, y1 = grid.bounds
            point = grid.point_on_surface()
            for _ in range(20):  # a random point inside the grid, else its surface point
                candidate = shapely.Point(rng.uniform(x0, x1), rng.uniform(y0, y1))
                if grid.contains(candidate):
                    point = candidate
                    break
            row = {"code": f"DEMO-{area}-{serial:05d}", "area": area, "type": kind,
                   "name": template.format(community=community_names.get(community, community),
                                           n=serial),
                   "sensitivity": sensitivity, "note": SYNTHETIC, "synthetic": True,
                   "geometry": point}
            if personal:
                row["contact_name"] = f"演示人员 {serial} ({SYNTHETIC})"
                row["contact_phone"] = f"000-{serial:04d}-0000"
            rows.append(row)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


RESTRICTED_FIELDS = ("contact_name", "contact_phone")
