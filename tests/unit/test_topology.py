"""Topology check: planted overlap and gap found (pure and through ``gridcore check``);
a clean coverage passes."""

from __future__ import annotations

import pytest
from shapely.geometry import Polygon, box

from spatial.topology import check_topology
from tests.support.coverage import CLEAN, COMMUNITY, OVERLAPPING, SHORT


def check(grids: list[Polygon], codes=("310101001001001", "310101001001002")):  # noqa: ANN001, ANN201
    return check_topology(list(codes), ["310101001001"] * len(grids), grids,
                          ["310101", "310101001", "310101001001"],
                          ["district", "street", "community"], [None, "310101", "310101001"],
                          [COMMUNITY] * 3)


def test_clean_coverage_passes() -> None:
    report = check(CLEAN)
    assert report.ok and report.problems == []
    assert "no problems" in report.to_text()


def test_planted_overlap_and_gap_are_found() -> None:
    report = check([OVERLAPPING, SHORT])
    kinds = report.counts()
    assert kinds == {"overlap": 1, "gap": 1}
    overlap = next(p for p in report.problems if p.kind == "overlap")
    assert overlap.codes == ("310101001001001", "310101001001002")
    assert overlap.area_m2 == pytest.approx(0.0001 * 0.0009 * 111_320 * 110_574, rel=0.01)
    assert 0.001 < overlap.location[0] < 0.0011 and overlap.location[1] < 0.0009
    gap = next(p for p in report.problems if p.kind == "gap")
    # the part of the gap under the overlapping grid is covered: 0.0009° × 0.0001° remains
    assert gap.area_m2 == pytest.approx(0.0009 * 0.0001 * 111_320 * 110_574, rel=0.01)
    assert gap.location[1] > 0.0009 and gap.location[0] > 0.0011


def test_outside_invalid_and_prefix_problems() -> None:
    bowtie = Polygon([(0, 0), (0.001, 0.001), (0.001, 0), (0, 0.001)])
    report = check([box(0, 0, 0.001, 0.0011), bowtie, CLEAN[1]],
                   codes=("310101001001001", "310101001002002", "310101001001003"))
    kinds = report.counts()
    assert kinds["outside_community"] == 1 and kinds["invalid_geometry"] == 1
    assert kinds["code_prefix"] == 1
    outside = next(p for p in report.problems if p.kind == "outside_community")
    assert outside.area_m2 == pytest.approx(0.001 * 0.0001 * 111_320 * 110_574, rel=0.01)


def test_float_noise_below_the_sliver_limit_is_ignored() -> None:
    eps = 1e-12  # ≈ 0.1 µm: the last bits of two digitisations of the same edge
    report = check([box(0, 0, 0.001 + eps, 0.001), CLEAN[1]])
    assert report.ok




def _to_lonlat(geom, epsg: int = 2227):  # noqa: ANN001, ANN202
    import numpy as np
    import shapely
    from pyproj import Transformer

    move = Transformer.from_crs(epsg, 4326, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(move.transform(xy[:, 0],
                                                                             xy[:, 1])))


def _densified_box(x0: float, y0: float, x1: float, y1: float, step: float) -> Polygon:
    import shapely

    return shapely.segmentize(box(x0, y0, x1, y1), step)


def test_slivers_of_projected_straight_edges_are_not_gaps_but_real_gaps_are() -> None:
    """A community drawn in a state plane (feet) with only its corners, and two grids that
    split it with a vertex every 100 ft along the same straight edges: after reprojection to
    lon/lat the edges part by centimetres over the 3 km sides — lens-shaped pieces of m²
    that are no gap. A real gap 1 m wide is still found."""
    x0, y0, side = 6_000_000.0, 2_100_000.0, 10_000.0  # 10,000 ft ≈ 3 km
    community = _to_lonlat(box(x0, y0, x0 + side, y0 + side))
    west = _to_lonlat(_densified_box(x0, y0, x0 + side / 2, y0 + side, 100.0))
    east = _to_lonlat(_densified_box(x0 + side / 2, y0, x0 + side, y0 + side, 100.0))
    codes = ["310101001001001", "310101001001002"]

    def run(grids):  # noqa: ANN001, ANN202
        return check_topology(codes, ["310101001001"] * 2, grids,
                              ["310101", "310101001", "310101001001"],
                              ["district", "street", "community"], [None, "310101", "310101001"],
                              [community] * 3)

    clean = run([west, east])
    assert clean.ok, clean.to_text()
    narrow = _to_lonlat(_densified_box(x0 + side / 2 + 3.3, y0, x0 + side, y0 + side, 100.0))
    found = run([west, narrow])  # 3.3 ft ≈ 1 m between the two grids, all along
    assert found.counts() == {"gap": 1}
    assert found.problems[0].area_m2 == pytest.approx(3.3 * 0.3048 * side * 0.3048, rel=0.02)


def test_gaps_between_communities_inside_a_street() -> None:
    west, east = box(0, 0, 0.001, 0.002), box(0.0012, 0, 0.002, 0.002)  # 0.0002° apart
    street = box(0, 0, 0.002, 0.002)
    report = check_topology(
        ["310101001001001", "310101001002001"], ["310101001001", "310101001002"], [west, east],
        ["310101", "310101001", "310101001001", "310101001002"],
        ["district", "street", "community", "community"],
        [None, "310101", "310101001", "310101001"], [street, street, west, east])
    assert report.counts() == {"gap": 1}
    gap = report.problems[0]
    assert gap.codes == ("310101001",) and "no community" in gap.detail
    assert gap.area_m2 == pytest.approx(0.0002 * 0.002 * 111_320 * 110_574, rel=0.01)
    assert 0.001 < gap.location[0] < 0.0012
