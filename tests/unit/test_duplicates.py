"""Duplicate scoring (重复事件识别): distance, time, class relation, character n-grams."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pyproj import Geod

from gridcore.duplicates import CaseSketch, class_relation, rank, score, text_similarity
from spatial.measure import degree_box
from tests.support.cases import at

T0 = at(2025, 6, 16, 9, 0)


def test_chinese_text_similarity_without_segmentation() -> None:
    assert text_similarity("路面有大片油污", "路面油污很大一片") > 0.3
    assert text_similarity("路面有大片油污", "井盖丢失") == 0.0
    assert text_similarity("ＡＢＣ，路灯", "abc 路灯") == 1.0  # full-width and punctuation
    assert text_similarity("", "路灯") == 0.0


def test_class_relation() -> None:
    assert class_relation("P0101", "P0101") == 1.0
    assert class_relation("P0101", "P0102") == 0.5  # both manhole covers (major 01)
    assert class_relation("P0101", "E0101") == 0.0


def test_window_radius_and_ranking() -> None:
    new = CaseSketch("E0103", T0, "路面有油污")
    same = CaseSketch("E0103", T0 - timedelta(hours=1), "路面油污", case_id=1)
    far_old = CaseSketch("E0103", T0 - timedelta(hours=100), "路面油污", case_id=2)
    other = CaseSketch("E0201", T0, "路面有油污", case_id=3)
    related = CaseSketch("E0104", T0, "垃圾", case_id=4)
    assert score(new, same, 250, 200) is None  # beyond the radius
    assert score(new, far_old, 10, 200) is None  # beyond the window
    assert score(new, other, 10, 200) is None  # unrelated class
    ranked = rank(new, [(same, 80.0), (related, 10.0), (far_old, 5.0), (other, 1.0)], 200)
    assert [c.case_id for c in ranked][0] == 1
    assert all(c.case_id not in (2, 3) for c in ranked)


def test_same_city_part_is_a_strong_signal() -> None:
    new = CaseSketch("P0120", T0, "灯不亮", part_code="1101010120000001")
    a = CaseSketch("P0120", T0, "杆子歪了", part_code="1101010120000001", case_id=1)
    b = CaseSketch("P0120", T0, "杆子歪了", part_code="1101010120000002", case_id=2)
    sa, sb = score(new, a, 15, 20), score(new, b, 15, 20)
    assert sa and sb and sa.score - sb.score >= 0.4
    assert [c.case_id for c in rank(new, [(b, 15.0), (a, 15.0)], 20)] == [1]


@pytest.mark.parametrize("lat", [-75.0, -30.0, 0.0, 22.5, 39.9, 60.17, 80.0])
@pytest.mark.parametrize("radius", [20.0, 200.0, 2000.0])
def test_nearby_box_holds_the_whole_circle(lat: float, radius: float) -> None:
    """The index box of the nearby-case search holds every point of the circle (measured on
    the ellipsoid), and is no more than a few percent wider or taller than it."""
    box = degree_box(lat, radius)
    lons, lats, _ = Geod(ellps="WGS84").fwd([10.0] * 360, [lat] * 360, list(range(360)),
                                             [radius] * 360)
    assert max(abs(x - 10.0) for x in lons) <= box["dx"]
    assert max(abs(y - lat) for y in lats) <= box["dy"]
    assert box["dx"] <= 1.03 * max(abs(x - 10.0) for x in lons)
    assert box["dy"] <= 1.03 * max(abs(y - lat) for y in lats)
