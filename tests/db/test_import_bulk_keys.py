"""Bulk mode drops city_part's keys during the COPY and re-adds them in the same transaction:
the keys come back exactly, and a row that breaks one (whoever wrote it inside the window)
fails the whole load and leaves everything as it was."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from gridcore.errors import ImportRejected
from layers.db import migrate as migrations
from layers.db.bulk import deferred_indexes
from layers.exchange.imports import load_departments, load_parts
from tests.support.database import row_counts


def constraint_defs(engine) -> list[tuple[str, str]]:  # noqa: ANN001
    with engine.connect() as conn:
        return sorted((r[0], r[1]) for r in conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'city_part'::regclass")))


def parts(n: int, dept: str | None = None) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({"class_code": ["0120"] * n},
                             geometry=shapely.points([24.94 + i * 1e-5 for i in range(n)],
                                                     [60.17] * n), crs=4326)
    if dept:
        frame["competent_dept"] = dept
    return frame


def test_bulk_load_restores_keys_and_they_still_refuse(db) -> None:  # noqa: ANN001
    load_departments(db, pd.DataFrame({"code": ["roads"], "name": ["Roads"]}))
    before = constraint_defs(db)
    assert sum(d.startswith("FOREIGN KEY") for _, d in before) == 3
    assert load_parts(db, parts(300, "roads"), district="110101", bulk=True).inserted == 300
    assert constraint_defs(db) == before
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM city_part WHERE competent_dept = "
                                 "'roads'")).scalar_one() == 300
    with pytest.raises(IntegrityError, match="city_part_competent_dept_fkey"), db.begin() as c:
        c.execute(text("UPDATE city_part SET competent_dept = 'nobody' WHERE code = "
                       "(SELECT min(code) FROM city_part)"))
    with pytest.raises(IntegrityError, match="city_part_pkey"), db.begin() as c:
        c.execute(text("INSERT INTO city_part (code, class_code, geom) SELECT code, class_code, "
                       "geom FROM city_part LIMIT 1"))


def referencing(engine) -> list[tuple[str, str]]:  # noqa: ANN001
    with engine.connect() as conn:
        return sorted((r[0], r[1]) for r in conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE confrelid = 'city_part'::regclass AND conrelid <> confrelid")))


def test_the_primary_key_goes_too_when_referenced_and_comes_back(db) -> None:  # noqa: ANN001
    """A device points at a stored part: the bulk load drops city_part's primary key all the
    same (with the device's key to it) and brings both back; they still refuse; a load that
    fails restores them as they were."""
    load_parts(db, parts(5), district="110101")
    with db.begin() as conn:
        code = conn.execute(text("SELECT min(code) FROM city_part")).scalar_one()
        conn.execute(text("INSERT INTO device (code, source, part_code, geom) VALUES ('cam-1', "
                          "'video', :c, ST_SetSRID(ST_MakePoint(24.94, 60.17), 4326))"),
                     {"c": code})
    own, refs = constraint_defs(db), referencing(db)
    assert [name for name, _ in refs] == ["device_part_code_fkey"]
    with db.begin() as conn, deferred_indexes(conn, "city_part", enabled=True):
        assert conn.execute(text("SELECT count(*) FROM pg_constraint WHERE confrelid = "
                                 "'city_part'::regclass OR (conrelid = 'city_part'::regclass "
                                 "AND contype IN ('p', 'f'))")).scalar_one() == 0
    assert constraint_defs(db) == own and referencing(db) == refs
    assert load_parts(db, parts(300), district="110101", bulk=True).inserted == 300
    assert constraint_defs(db) == own and referencing(db) == refs
    with pytest.raises(IntegrityError, match="device_part_code_fkey"), db.begin() as c:
        c.execute(text("UPDATE device SET part_code = '1101010120999999'"))
    before = row_counts(db)
    with (pytest.raises(IntegrityError, match="device_part_code_fkey"), db.begin() as conn,
          deferred_indexes(conn, "city_part", enabled=True)):
        conn.execute(text("DELETE FROM city_part WHERE code = :c"), {"c": code})
    assert row_counts(db) == before
    assert constraint_defs(db) == own and referencing(db) == refs


@pytest.mark.parametrize(("planted", "refused_by"), [
    ("UPDATE city_part SET owner_dept = 'nobody' WHERE code = (SELECT max(code) FROM city_part)",
     "city_part_owner_dept_fkey"),
    ("INSERT INTO city_part (code, class_code, geom) SELECT code, class_code, geom "
     "FROM city_part LIMIT 1", "city_part_pkey"),
])
def test_a_row_breaking_a_deferred_key_fails_the_load(db, planted, refused_by) -> None:  # noqa: ANN001
    load_parts(db, parts(20), district="110101")
    before, defs = row_counts(db), constraint_defs(db)
    with (pytest.raises(IntegrityError, match=refused_by), db.begin() as conn,
          deferred_indexes(conn, "city_part", enabled=True)):
        assert not any(d.startswith("FOREIGN KEY") for d in (r[0] for r in conn.execute(
            text("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                 "WHERE conrelid = 'city_part'::regclass"))))
        conn.execute(text(planted))  # what a buggy or racing writer could leave behind
    assert row_counts(db) == before and constraint_defs(db) == defs


def test_part_code_collation_and_check_up_down_up(empty_db: Engine) -> None:
    engine = empty_db
    query = text("SELECT attname, coalesce(collname, '') FROM pg_attribute a "
                 "LEFT JOIN pg_collation c ON c.oid = a.attcollation "
                 "WHERE attrelid = 'city_part'::regclass AND attname IN "
                 "('code', 'class_code', 'grid_code', 'h3', 'name')")
    check = text("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                 "WHERE conname = 'city_part_code_check'")
    migrations.upgrade(engine)
    with engine.connect() as conn:
        assert dict(conn.execute(query).all()) == {
            "code": "C", "class_code": "C", "grid_code": "C", "h3": "C", "name": "default"}
        assert "ltrim" in conn.execute(check).scalar_one()
        for bad in ("123456789012345", "123456789012345a",
                    "12345678901234 5", "+123456789012345"):
            with pytest.raises(IntegrityError, match="city_part_code_check"), \
                    conn.begin_nested():
                conn.execute(text("INSERT INTO city_part (code, class_code, geom) VALUES "
                                  "(:c, substr(:c, 7, 4), 'SRID=4326;POINT(0 0)')"),
                             {"c": bad})
    migrations.downgrade(engine, "0004_audit_seal")
    with engine.connect() as conn:
        assert set(dict(conn.execute(query).all()).values()) == {"default"}
        assert "~" in conn.execute(check).scalar_one()
    migrations.upgrade(engine)
    with engine.connect() as conn:
        assert dict(conn.execute(query).all())["code"] == "C"




@pytest.mark.parametrize("bulk", [False, True])
def test_a_failure_while_streaming_raises_the_domain_error_and_writes_nothing(
        db, bulk: bool) -> None:  # noqa: ANN001
    from gridcore.errors import ValidationError

    load_parts(db, parts(5), district="110101")
    before, defs = row_counts(db), constraint_defs(db)
    # H3 cells are computed chunk by chunk while the COPY streams: the error surfaces mid-COPY
    with pytest.raises(ValidationError, match="H3 resolution"):
        load_parts(db, parts(50), district="110101", h3_resolution=99, bulk=bulk)
    assert row_counts(db) == before and constraint_defs(db) == defs


def test_bulk_rows_are_written_in_grid_then_code_order(db) -> None:  # noqa: ANN001
    from shapely.geometry import box

    from layers.exchange.imports import load_areas, load_grids

    load_areas(db, gpd.GeoDataFrame({"code": ["310101", "310101001", "310101001001"],
                                     "name": ["D", "S", "C"]},
                                    geometry=[box(0, 0, 0.004, 0.001)] * 3, crs=4326))
    load_grids(db, gpd.GeoDataFrame({"community_code": ["310101001001"] * 4},
                                    geometry=[box(i * 0.001, 0, (i + 1) * 0.001, 0.001)
                                              for i in range(4)], crs=4326))
    # The physical order is read back by ctid: the table needs storage of its own, not
    # pages an earlier test's rows were deleted from (the harness empties small tables with
    # DELETE; a TRUNCATE gives the table a new file).
    with db.begin() as conn:
        conn.execute(text("TRUNCATE city_part CASCADE"))  # empty: nothing else goes
    n = 400
    frame = gpd.GeoDataFrame({"class_code": ["0120", "0402"] * (n // 2)},
                             geometry=shapely.points([(i * 7919 % n) / n * 0.005 for i in range(n)],
                                                     [0.0005] * n), crs=4326)
    assert load_parts(db, frame, district="310101", bulk=True).inserted == n
    with db.connect() as conn:
        stored = [tuple(r) for r in conn.execute(text(
            "SELECT grid_code, code FROM city_part ORDER BY ctid"))]
    assert any(g is None for g, _ in stored)  # x > 0.004 lies in no grid: written last
    key = [(g is None, g or "", c) for g, c in stored]
    assert key == sorted(key)


def test_unknown_departments_are_named_by_row_and_empty_ones_stored_as_null(db) -> None:  # noqa: ANN001
    """The department columns are checked in Arrow before anything is written: every row
    naming a department that does not exist is listed (1-based), nothing is stored; an empty
    cell is no department (NULL), not ''."""
    load_departments(db, pd.DataFrame({"code": ["roads"], "name": ["Roads"]}))
    frame = parts(6, "roads")
    frame["owner_dept"] = ["roads", " ", "parks", "roads", None, "zoo "]
    with pytest.raises(ImportRejected) as info:
        load_parts(db, frame, district="110101", bulk=True)
    problems = {(p["row"], p["field"]): p["reason"] for p in info.value.problems}
    assert problems == {(3, "owner_dept"): "department 'parks' does not exist",
                        (6, "owner_dept"): "department 'zoo' does not exist"}
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM city_part")).scalar_one() == 0
    frame["owner_dept"] = ["roads", " ", "", "roads", None, "roads"]
    assert load_parts(db, frame, district="110101", bulk=True).inserted == 6
    with db.connect() as conn:
        owners = conn.execute(text("SELECT owner_dept, count(*) FROM city_part GROUP BY 1 "
                                   "ORDER BY 1")).all()
    assert [tuple(r) for r in owners] == [("roads", 3), (None, 3)]


def partition_indexes(engine: Engine) -> list[tuple[str, bool, str]]:
    """Each index of each case partition: its partition, validity and definition (after
    USING: the names of indexes built anew differ; before WHERE: PostgreSQL deparses a
    rebuilt predicate's casts in another, equivalent form) and whether it is partial."""
    with engine.connect() as conn:
        return sorted((r[0], r[1], r[2]) for r in conn.execute(text(
            "SELECT c.relname, x.indisvalid, "
            "regexp_replace(regexp_replace(pg_get_indexdef(x.indexrelid), '^.* USING ', "
            "'USING '), ' WHERE .*$', ' WHERE …') "
            "FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid "
            "JOIN pg_index x ON x.indrelid = c.oid "
            "WHERE h.inhparent = 'case_record'::regclass")))


def test_a_partitioned_tables_indexes_come_back_on_every_partition(db) -> None:  # noqa: ANN001
    """Cases are partitioned by time: after a bulk load the case table's indexes are on every
    partition again, not an invalid parent index alone (pg_get_indexdef says "ON ONLY" of a
    partitioned table's index; recreated as such, a megacity build left its partitions with
    their primary key only)."""
    before = partition_indexes(db)
    partitions = {name for name, _, _ in before}
    assert len(partitions) > 1 and len(before) > 2 * len(partitions)
    with db.begin() as conn, deferred_indexes(conn, "case_record", enabled=True):
        pass
    assert partition_indexes(db) == before
    with db.connect() as conn:
        assert conn.execute(text(
            "SELECT count(*) FROM pg_index x WHERE NOT x.indisvalid AND x.indrelid IN "
            "(SELECT 'case_record'::regclass UNION SELECT inhrelid FROM pg_inherits "
            "WHERE inhparent = 'case_record'::regclass)")).scalar_one() == 0


def test_a_database_loaded_before_the_fix_is_mended_by_its_next_migration(
        db, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    """A bulk load before the fix left the case table's indexes "ON ONLY" the parent (invalid,
    on no partition): the next ``migrate`` (every ``gridcore serve`` start) rebuilds them on
    every partition and says so."""
    before = partition_indexes(db)
    with db.begin() as conn:  # what the old bulk lane did to one index
        definition = conn.execute(text(
            "SELECT pg_get_indexdef('case_record_queue_idx'::regclass)")).scalar_one()
        assert " ON ONLY " in definition
        conn.execute(text("DROP INDEX case_record_queue_idx"))
        conn.execute(text(definition))
    damaged = partition_indexes(db)
    assert len(damaged) < len(before)  # no partition has it any more
    with caplog.at_level("WARNING", logger="layers.db.migrate"):
        migrations.migrate(db)
    assert partition_indexes(db) == before
    assert any("case_record_queue_idx" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="layers.db.migrate"):
        migrations.migrate(db)  # nothing left to mend: nothing said
    assert not [r for r in caplog.records if "rebuilt" in r.getMessage()]
