"""The bulk lane of the city-part import: deferred indexes come back exactly, a failure in the
middle of a bulk load leaves table, indexes and rows as they were."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from sqlalchemy import text

from gridcore.errors import ImportRejected
from layers.exchange.imports import load_parts
from tests.support.database import row_counts


def index_defs(engine) -> list[str]:  # noqa: ANN001
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(text(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'city_part'")))


def trigger_defs(engine) -> list[tuple[str, str]]:  # noqa: ANN001
    """city_part's own triggers (not the foreign keys' internal ones) and whether enabled."""
    with engine.connect() as conn:
        return sorted((r[0], r[1]) for r in conn.execute(text(
            "SELECT pg_get_triggerdef(oid), tgenabled FROM pg_trigger "
            "WHERE tgrelid = 'city_part'::regclass AND NOT tgisinternal")))


def points(n: int, names: list[str] | None = None) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(3)
    return gpd.GeoDataFrame(
        {"class_code": rng.choice(["0101", "0120", "0402"], n),
         "name": names or [f"part {i}" for i in range(n)]},
        geometry=shapely.points(rng.uniform(24.93, 24.95, n), rng.uniform(60.16, 60.17, n)),
        crs=4326)


def test_bulk_load_rebuilds_the_same_indexes(db) -> None:  # noqa: ANN001
    before, triggers = index_defs(db), trigger_defs(db)
    assert len(before) >= 6
    assert any("city_part_cells_ins" in d for d, _ in triggers)
    report = load_parts(db, points(2000), district="110101", bulk=True)
    assert report.inserted == 2000
    assert index_defs(db) == before
    # the part cells' insert trigger, dropped for the COPY (a disabled one would still have
    # its transition table filled), is back as it was, enabled
    assert trigger_defs(db) == triggers
    # the phases a big import shows (the CLI prints them), in the order they ran
    assert [p for p, _ in report.phases] == [
        "checked", "grids located", "codes and columns", "COPY", "keys and indexes",
        "cell counts", "committed"]
    assert "took checked" in report.phase_line() and "(total" in report.phase_line()
    with db.connect() as conn:
        plan = "\n".join(r[0] for r in conn.execute(text(
            "EXPLAIN SELECT code FROM city_part WHERE geom && "
            "ST_MakeEnvelope(24.94, 60.16, 24.941, 60.161, 4326)")))
        per_class = dict(conn.execute(text(
            "SELECT class_code, max(right(code, 6)::int) = count(*) FROM city_part "
            "GROUP BY 1")).all())
    assert "city_part_geom_idx" in plan or "Seq Scan" in plan  # planner's choice on 2k rows
    assert all(per_class.values()), "serials run 1…n per class without holes"


def test_failed_bulk_load_leaves_everything_as_it_was(db) -> None:  # noqa: ANN001
    load_parts(db, points(50), district="110101")
    before, defs, triggers = row_counts(db), index_defs(db), trigger_defs(db)
    names = [f"part {i}" for i in range(1000)]
    names[700] = "bad\x00name"  # PostgreSQL text cannot hold NUL: refused inside the COPY
    with pytest.raises(ImportRejected) as info:
        load_parts(db, points(1000, names), district="110101", bulk=True)
    assert "the database refused the rows" in str(info.value)
    assert "0x00" in str(info.value)
    assert row_counts(db) == before and index_defs(db) == defs
    assert trigger_defs(db) == triggers


def test_part_on_a_shared_edge_goes_to_the_lower_grid_code(db) -> None:  # noqa: ANN001
    from shapely.geometry import box

    from layers.exchange.imports import load_areas, load_grids

    load_areas(db, gpd.GeoDataFrame({"code": ["310101", "310101001", "310101001001"],
                                     "name": ["D", "S", "C"]},
                                    geometry=[box(0, 0, 0.002, 0.001)] * 3, crs=4326))
    load_grids(db, gpd.GeoDataFrame(
        {"code": ["310101001001002", "310101001001001"]},
        geometry=[box(0.001, 0, 0.002, 0.001), box(0, 0, 0.001, 0.001)], crs=4326),
        code_field="code")
    parts = gpd.GeoDataFrame({"class_code": ["0120"] * 3},
                             geometry=shapely.points([0.001, 0.0015, 0.003], [0.0005] * 3),
                             crs=4326)
    load_parts(db, parts, district="310101")
    with db.connect() as conn:
        grids = [r[0] for r in conn.execute(text(
            "SELECT grid_code FROM city_part ORDER BY ST_X(geom)"))]
    assert grids == ["310101001001001", "310101001001002", None]


def test_a_reimported_feature_cannot_change_class(db) -> None:  # noqa: ANN001
    from tests.support.database import row_counts

    frame = gpd.GeoDataFrame({"class_code": ["0120", "0402"], "source": ["osm", "osm"],
                              "source_id": ["node/1", "node/2"]},
                             geometry=shapely.points([24.94, 24.941], [60.17, 60.17]), crs=4326)
    assert load_parts(db, frame, district="110101").inserted == 2
    frame["class_code"] = ["0120", "0313"]
    before = row_counts(db)
    with pytest.raises(ImportRejected) as info:
        load_parts(db, frame, district="110101")
    assert info.value.problems == [{
        "row": 2, "field": "class_code",
        "reason": "osm node/2 is stored as part 1101010402000001 of class 0402, the file says "
                  "class 0313: a part cannot change class; remove the stored part first"}]
    assert row_counts(db) == before
    frame["class_code"] = ["0120", "0402"]
    frame["name"] = ["lamp", "linden"]
    assert load_parts(db, frame, district="110101").updated == 2
