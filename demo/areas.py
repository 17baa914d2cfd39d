"""The demo city's administrative tree, derived from the extract's street network.

The OSM extract's administrative boundaries are clipped at its edge and do not form polygons,
so the tree is derived (and the README says so, under "The demo city"):

- district (区): the extract's bounding box as its PBF header states it (about
  24.935,60.164 – 24.953,60.179), code ``990101`` — synthetic (GB/T 2260 has no province 99,
  so it cannot be taken for a real district);
- streets (街道): the district cut along its primary and secondary roads into blocks of about
  0.5 km² (the drawing rules of ``spatial.drawing`` at street size);
- communities (社区): each street cut along primary, secondary and tertiary roads into blocks of
  about 0.15 km²;
- each area is named after the longest named major road along it.

Unit grids are then drawn inside the communities from every road, watercourse and wall.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import box

from layers.grids.network import MAJOR_ROADS, edges_of
from spatial.drawing import GRID_SIZE, DrawingRules, network_geometries, partition

DISTRICT_CODE = "990101"
DISTRICT_NAME = "赫尔辛基中心演示区 Helsinki Centre (demo)"
BBOX = (24.935, 60.164, 24.953, 60.179)  # used when the file states no bounding box
STREET_RULES = DrawingRules(target_area=500_000, min_area=300_000, max_area=900_000)
COMMUNITY_RULES = DrawingRules(target_area=150_000, min_area=90_000, max_area=300_000)
COMMUNITY_ROADS = MAJOR_ROADS | {"tertiary", "tertiary_link"}


def _namer(lines: gpd.GeoDataFrame):  # type: ignore[no-untyped-def]
    named = lines[lines["name"].notna() & lines["highway"].isin(COMMUNITY_ROADS)]
    geoms = named.geometry.to_numpy()
    names = named["name"].to_numpy()
    tree = shapely.STRtree(geoms)

    def name_of(area, used: set[str]) -> str | None:  # type: ignore[no-untyped-def]
        zone = area.buffer(0.0002)  # ≈ 15 m: the road on the area's edge counts
        lengths: dict[str, float] = {}
        for i in tree.query(zone, predicate="intersects"):
            lengths[names[i]] = lengths.get(names[i], 0.0) + geoms[i].intersection(zone).length
        ranked = sorted(lengths, key=lambda n: (-round(lengths[n], 9), n))
        return next((n for n in ranked if n not in used), None)

    return name_of


def _level(parents: list[tuple[str, object]], lines: np.ndarray, rules: DrawingRules,
           name_of, suffix: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    rows: list[dict] = []  # type: ignore[type-arg]
    used: set[str] = set()
    for parent_code, parent_geom in parents:
        tree = shapely.STRtree(lines)
        nearby = lines[tree.query(parent_geom, predicate="intersects")]
        for n, geom in enumerate(partition(parent_geom, nearby, rules), start=1):
            road = name_of(geom, used)
            if road:
                used.add(road)
            rows.append({"code": f"{parent_code}{n:03d}", "parent_code": parent_code,
                         "name": f"{road}{suffix}" if road else f"第{n}{suffix}",
                         "geometry": geom})
    return rows


def extract_bbox(pbf: str | Path) -> tuple[float, float, float, float]:
    """The bounding box an OSM PBF's header states (the area it was cut to)."""
    import osmium

    reader = osmium.io.Reader(str(pbf), osmium.osm.osm_entity_bits.NOTHING)
    try:
        box_ = reader.header().box()
    finally:
        reader.close()
    if not box_.valid():
        return BBOX
    return (box_.bottom_left.lon, box_.bottom_left.lat, box_.top_right.lon, box_.top_right.lat)


def demo_areas(lines: gpd.GeoDataFrame, bbox: tuple[float, float, float, float] = BBOX
               ) -> gpd.GeoDataFrame:
    """District, streets and communities (columns code, level, name, parent_code, geometry)."""
    district = shapely.set_precision(box(*bbox), GRID_SIZE)
    name_of = _namer(lines)
    major = network_geometries(edges_of(lines))
    streets = _level([(DISTRICT_CODE, district)], major, STREET_RULES, name_of, "街道")
    community_lines = major
    communities = _level([(s["code"], s["geometry"]) for s in streets], community_lines,
                         COMMUNITY_RULES, name_of, "社区")
    rows = [{"code": DISTRICT_CODE, "parent_code": None, "name": DISTRICT_NAME,
             "geometry": shapely.MultiPolygon([district])}]
    frame = gpd.GeoDataFrame(rows + streets + communities, geometry="geometry", crs=4326)
    frame["level"] = frame["code"].str.len().map({6: "district", 9: "street", 12: "community"})
    return frame
