"""Drawing unit grids from a line network on a small planted network (pure geometry, no DB)."""

from __future__ import annotations

import itertools

import geopandas as gpd
import pytest
import shapely
import shapely.affinity

from gridcore.errors import ValidationError
from spatial.drawing import GRID_SIZE, DrawingRules, draw_grids
from spatial.measure import areas_m2
from tests.support.drawing import COMMUNITIES, LAT0, LON0, NETWORK, rect


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    return draw_grids(COMMUNITIES, NETWORK)


def community(code: str):  # type: ignore[no-untyped-def]
    return COMMUNITIES.set_index("code").geometry[code]


def test_oversized_block_splits_and_sliver_merges(grids: gpd.GeoDataFrame) -> None:
    a = grids[grids.community_code == "990101001001"]
    # 60,000 m² at a 10,000 m² target: six grids, none below min nor above max
    assert len(a) == 6
    assert a.area_m2.min() >= 2_500
    assert a.area_m2.max() <= 20_000
    # the 2,000 m² strip east of the road is merged, not left as a grid of its own
    strip = rect(290, 0, 300, 200)
    holders = [g for g in a.geometry if g.intersection(strip).area > strip.area * 0.01]
    assert all(areas_m2([g])[0] > 2_500 for g in holders)


def test_community_boundary_cuts_block(grids: gpd.GeoDataFrame) -> None:
    b = grids[grids.community_code == "990101001002"]
    # the road through B splits it into two 10,000 m² halves, the dangle adds nothing
    assert len(b) == 2
    assert b.area_m2.tolist() == pytest.approx([10_000, 10_000], rel=0.02)
    assert b.area_m2.iloc[0] == pytest.approx(b.area_m2.iloc[1], rel=1e-3)
    for row in grids.itertuples():
        outside = shapely.difference(row.geometry, community(row.community_code),
                                     grid_size=GRID_SIZE)
        assert outside.area == 0, f"{row.code} crosses its community boundary"


def test_tiles_each_community_without_gap_or_overlap(grids: gpd.GeoDataFrame) -> None:
    assert grids.is_valid.all()
    assert (grids.geom_type == "MultiPolygon").all()
    for code, group in grids.groupby("community_code"):
        union = shapely.union_all(group.geometry.values, grid_size=GRID_SIZE)
        target = shapely.set_precision(community(code), GRID_SIZE)
        assert shapely.symmetric_difference(union, target, grid_size=GRID_SIZE).area == 0
        total = areas_m2(group.geometry.values).sum()
        # not bit-equal: the equal-area projection bends edges, and the grids carry more
        # vertices along the community outline than the outline itself (≈ 0.1 m² in 60,000)
        assert total == pytest.approx(areas_m2([target])[0], rel=1e-5)
    for a, b in itertools.combinations(grids.geometry, 2):
        assert shapely.intersection(a, b, grid_size=GRID_SIZE).area == 0


def test_topology_checker_finds_nothing(grids: gpd.GeoDataFrame) -> None:
    from spatial.topology import check_topology

    district = shapely.union_all(COMMUNITIES.geometry.values)
    report = check_topology(
        list(grids.code), list(grids.community_code), list(grids.geometry),
        ["990101", "990101001", *COMMUNITIES.code],
        ["district", "street", "community", "community"],
        [None, "990101", "990101001", "990101001"],
        [district, district, *COMMUNITIES.geometry])
    assert report.ok, report.to_text()
    # and it would have seen a planted overlap: the checker is not blind here
    shifted = [shapely.affinity.translate(grids.geometry.iloc[0], xoff=0.0002),
               *grids.geometry.iloc[1:]]
    bad = check_topology(list(grids.code), list(grids.community_code), shifted,
                         ["990101", "990101001", *COMMUNITIES.code],
                         ["district", "street", "community", "community"],
                         [None, "990101", "990101001", "990101001"],
                         [district, district, *COMMUNITIES.geometry])
    assert not bad.ok


def test_codes_are_stable_across_reruns(grids: gpd.GeoDataFrame) -> None:
    assert grids.code.str.len().eq(15).all()
    assert (grids.code.str[:12] == grids.community_code).all()
    assert grids.code.is_unique
    again = draw_grids(COMMUNITIES.iloc[::-1], NETWORK.iloc[::-1])
    assert list(again.code) == list(grids.code)
    for g1, g2 in zip(grids.geometry, again.geometry, strict=True):
        assert shapely.symmetric_difference(g1, g2, grid_size=GRID_SIZE).area == 0
    # reading order: serial 001 lies in the north-west of its community
    first = grids[grids.code == "990101001001001"].geometry.iloc[0].centroid
    last = grids[grids.code == "990101001001006"].geometry.iloc[0].centroid
    assert first.y > last.y or (first.y == pytest.approx(last.y) and first.x < last.x)


def test_projected_input_is_reprojected() -> None:
    projected = draw_grids(COMMUNITIES.to_crs(3067), NETWORK.to_crs(3067))
    assert len(projected) == 8
    assert projected.crs.to_epsg() == 4326


def test_network_files_are_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from layers.grids.network import read_network

    with pytest.raises(ValidationError, match="does not exist"):
        read_network(tmp_path / "absent.gpkg")
    points = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[shapely.Point(LON0, LAT0)], crs=4326).to_file(points)
    with pytest.raises(ValidationError, match="holds no lines"):
        read_network(points)
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(b"not a pbf")
    with pytest.raises(ValidationError, match="cannot read OSM lines"):
        read_network(broken)


def test_rules_are_validated() -> None:
    with pytest.raises(ValidationError, match="min ≤ target ≤ max"):
        draw_grids(COMMUNITIES, NETWORK, DrawingRules(target_area=10_000, max_area=5_000))
    with pytest.raises(ValidationError, match="no 'gid' column"):
        draw_grids(COMMUNITIES, NETWORK, code_field="gid")
    with pytest.raises(ValidationError, match="more than the 999"):
        draw_grids(COMMUNITIES.iloc[:1], NETWORK, DrawingRules(target_area=50, min_area=10))




def test_real_network_on_communities_off_the_grid() -> None:
    """Helsinki's real roads (the shared OSM extract) inside communities whose coordinates have
    been through a projection round trip (arbitrary floats, long straight edges): the topology
    checker finds nothing and a rerun gives the same codes and shapes."""
    from demo.areas import demo_areas
    from layers.grids.network import edges_of, read_network, read_osm_lines
    from spatial.topology import check_topology
    from tests.support.data import shared_file

    pbf = shared_file("helsinki/Helsinki.osm.pbf")
    lines = read_osm_lines(pbf)
    areas = demo_areas(lines).to_crs(3067).to_crs(4326)
    communities = areas[areas.level == "community"]
    network = read_network(pbf)  # what `grids draw --network x.osm.pbf` reads
    assert len(network) == len(edges_of(lines)) and network.crs.to_epsg() == 4326
    assert not network.highway.isin(["footway", "steps"]).any()
    assert network.highway.isin(["primary"]).any() and network.barrier.isin(["wall"]).any()
    grids = draw_grids(communities, network)
    report = check_topology(list(grids.code), list(grids.community_code), list(grids.geometry),
                            list(areas.code), list(areas.level), list(areas.parent_code),
                            list(areas.geometry))
    assert report.ok, report.to_text()
    assert len(grids) > 150 and 7_000 < grids.area_m2.median() < 13_000
    again = draw_grids(communities.iloc[::-1], network.iloc[::-1])
    assert list(again.code) == list(grids.code)
    assert all(a.equals(b) for a, b in zip(grids.geometry, again.geometry, strict=True))
