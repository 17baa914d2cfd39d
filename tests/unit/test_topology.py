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


