"""Migration ``*_case_partitions``: cases partitioned by year of report, keyed through the case
registry (``case_key``). Down to the flat table and up again on a populated database of its own
without losing a row or changing an id; the write paths keep their guarantees; a recent window
reads recent partitions only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from gridcore.intake import Filing, Report
from layers.cases.intake import Intake, IntakeResult
from layers.cases.transitions import transition
from layers.db.migrate import alembic_config, downgrade, migrate, upgrade
from layers.grids.resolver import Resolver
from tests.support.cases import GRID_001, INSIDE_001, key, plant, settings

CHILDREN = ("case_history", "case_photo", "appeal", "part_state_history", "case_task",
            "case_whistle", "case_message", "device_case")


@pytest.fixture
def own_db(empty_db: Engine) -> Engine:
    migrate(empty_db)
    return empty_db


def _before(engine: Engine) -> str:
    script = ScriptDirectory.from_config(alembic_config(engine))
    found = next(r for r in script.walk_revisions() if r.revision.endswith("_case_partitions"))
    assert isinstance(found.down_revision, str)
    return found.down_revision


def plant_old(engine: Engine, year: int, n: int) -> None:
    """``n`` closed cases reported in ``year``, each with its history row (written as an
    import would: straight into the table)."""
    with engine.begin() as conn:
        # two statements: the registry row (case_key) is written at the end of the first
        conn.execute(text(f"""
            INSERT INTO case_record (idempotency_key, payload_hash, category_key, geom, input_x,
                input_y, grid_code, district_code, state, created_at, updated_at, closed_at)
            SELECT 'old-{year}-' || i, repeat('0', 64), 'E0103',
                   ST_SetSRID(ST_MakePoint(116.402, 39.902), 4326), 116.402, 39.902,
                   '{GRID_001}', left('{GRID_001}', 6), 'closed',
                   make_timestamptz({year}, 3, 1, 8, 0, 0, 'UTC') + i * interval '1 day',
                   make_timestamptz({year}, 3, 1, 8, 0, 0, 'UTC') + i * interval '1 day',
                   make_timestamptz({year}, 3, 2, 8, 0, 0, 'UTC') + i * interval '1 day'
            FROM generate_series(1, {n}) i"""))
        conn.execute(text(f"""
            INSERT INTO case_history (case_id, at, actor, role, action, to_state)
            SELECT id, created_at, 'import', 'system', 'imported', 'closed' FROM case_record
            WHERE idempotency_key LIKE 'old-{year}-%'"""))


def snapshot(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        out: dict[str, Any] = {"cases": conn.execute(text(
            "SELECT id, public_no, idempotency_key, created_at, state, version, grid_code "
            "FROM case_record ORDER BY id")).all()}
        for table in CHILDREN:
            out[table] = conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")).all()
        out["next_id"] = conn.execute(text(
            "SELECT last_value FROM case_record_id_seq")).scalar_one()
    return out


def kind(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text(
            "SELECT relkind FROM pg_class WHERE oid = 'case_record'::regclass")).scalar_one())


def partitions(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {r[0]: r[1] for r in conn.execute(text(
            "SELECT c.relname, (xpath('/row/n/text()', query_to_xml("
            "format('SELECT count(*) AS n FROM %I', c.relname), false, true, '')))[1]::text::int "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'case_record'::regclass ORDER BY 1"))}


def referenced(engine: Engine) -> set[str]:
    """The tables the case tables' foreign keys point at."""
    with engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid = ANY(CAST(:t AS regclass[]))"),
            {"t": list(CHILDREN)}).scalars())


def file_cases(engine: Engine, tmp_path: Path, n: int) -> list[dict[str, Any]]:
    intake = Intake(engine, Resolver(engine), settings(tmp_path))
    filings = [Filing(Report(key(), "E0103", *INSIDE_001, source="grid_worker", reporter="W1"),
                      "W1", "grid_worker") for _ in range(n)]
    out = intake.file(filings)
    assert all(isinstance(o, IntakeResult) for o in out)
    return [o.case for o in out if isinstance(o, IntakeResult)]


def test_down_and_up_on_a_populated_database(own_db: Engine, tmp_path: Path) -> None:
    plant(own_db)
    plant_old(own_db, 2021, 5)
    plant_old(own_db, 2023, 3)
    cases = file_cases(own_db, tmp_path, 3)
    resolver = Resolver(own_db)
    transition(own_db, settings(tmp_path), resolver, cases[0]["id"], "verify", "d1",
               "dispatcher", {})
    assert kind(own_db) == "p"
    # 2021 and 2023 were not made ahead: their rows wait in the default partition …
    assert partitions(own_db)["case_record_default"] == 8
    with own_db.begin() as conn:
        conn.execute(text("SELECT gridcore_case_partitions('2021-06-01', '2023-06-01')"))
    parts = partitions(own_db)  # … until their years' partitions take them
    assert parts["case_record_default"] == 0
    assert parts["case_record_y2021"] == 5 and parts["case_record_y2023"] == 3
    assert parts["case_record_y2022"] == 0
    before = snapshot(own_db)
    assert len(before["cases"]) == 11 and len(before["case_history"]) == 12

    downgrade(own_db, _before(own_db))
    assert kind(own_db) == "r"
    assert snapshot(own_db) == before
    assert referenced(own_db) >= {"case_record"} and "case_key" not in referenced(own_db)
    plant_old(own_db, 2024, 2)  # the flat table takes cases as before
    with own_db.begin() as conn:  # what another branch's migration may have added meanwhile
        conn.execute(text(
            "CREATE TABLE other_fact (case_id bigint PRIMARY KEY REFERENCES case_record (id) "
            "ON DELETE CASCADE, n int); INSERT INTO other_fact SELECT id, 1 FROM case_record;"
            "CREATE FUNCTION other_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RETURN NULL; END $$; CREATE TRIGGER other_mark AFTER INSERT ON case_record "
            "REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION other_mark()"))
    before = snapshot(own_db)

    upgrade(own_db)
    assert kind(own_db) == "p"
    assert snapshot(own_db) == before
    assert "case_record" not in referenced(own_db) and "case_key" in referenced(own_db)
    with own_db.connect() as conn:  # re-pointed and re-created from the catalog
        assert conn.execute(text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'other_fact'::regclass AND contype = 'f'")).scalar_one() == \
            "FOREIGN KEY (case_id) REFERENCES case_key(id) ON DELETE CASCADE"
        assert conn.execute(text(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'other_mark' "
            "AND tgrelid = 'case_record'::regclass")).scalar_one() == 1
    parts = partitions(own_db)
    assert parts["case_record_y2021"] == 5 and parts["case_record_y2023"] == 3
    assert parts["case_record_y2024"] == 2 and parts["case_record_default"] == 0
    with own_db.connect() as conn:
        keys = conn.execute(text("SELECT count(*) FROM case_key")).scalar_one()
    assert keys == 13
    # ids go on from where they were
    new = file_cases(own_db, tmp_path, 1)[0]
    assert new["id"] == before["next_id"] + 1


def test_keys_stay_unique_across_partitions(own_db: Engine, tmp_path: Path) -> None:
    plant(own_db)
    first = file_cases(own_db, tmp_path, 1)[0]
    with own_db.connect() as conn:
        first["idempotency_key"] = conn.execute(text(
            "SELECT idempotency_key FROM case_record WHERE id = :i"), {"i": first["id"]}
        ).scalar_one()
    # an old case with the same idempotency key in another partition is refused
    with pytest.raises(DBAPIError, match="case_key_idempotency_key_key"), \
            own_db.begin() as conn:
        conn.execute(text(
            "INSERT INTO case_record (idempotency_key, payload_hash, category_key, geom, "
            "input_x, input_y, created_at) VALUES (:k, repeat('0', 64), 'E0103', "
            "ST_SetSRID(ST_MakePoint(116.402, 39.902), 4326), 116.402, 39.902, "
            "'2020-05-01')"), {"k": first["idempotency_key"]})
    # the same id twice (another year) is refused too
    with pytest.raises(DBAPIError, match="case_record_key_fk"), own_db.begin() as conn:
        conn.execute(text(
            "INSERT INTO case_record (id, idempotency_key, payload_hash, category_key, geom, "
            "input_x, input_y, created_at) VALUES (:i, 'other', repeat('0', 64), 'E0103', "
            "ST_SetSRID(ST_MakePoint(116.402, 39.902), 4326), 116.402, 39.902, "
            "'2020-05-01')"), {"i": first["id"]})
    # a case's report time is its partition key: it cannot be rewritten
    with pytest.raises(DBAPIError, match="case_record_key_fk"), own_db.begin() as conn:
        conn.execute(text("UPDATE case_record SET created_at = created_at - interval '1 day' "
                          "WHERE id = :i"), {"i": first["id"]})
    # a resend of the stored report is answered with the stored case
    intake = Intake(own_db, Resolver(own_db), settings(tmp_path))
    again = intake.file([Filing(Report(first["idempotency_key"], "E0103", *INSIDE_001,
                                       source="grid_worker", reporter="W1"),
                                "W1", "grid_worker")])[0]
    assert isinstance(again, IntakeResult) and not again.created
    assert again.case["id"] == first["id"]
    with own_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_key")).scalar_one() == 1


def test_a_recent_window_reads_recent_partitions(own_db: Engine) -> None:
    plant(own_db)
    plant_old(own_db, 2022, 2)
    with own_db.begin() as conn:
        conn.execute(text("SELECT gridcore_case_partitions('2022-01-01', '2024-01-01')"))
        plan = "\n".join(conn.execute(text(
            "EXPLAIN SELECT count(*) FROM case_record "
            "WHERE created_at >= now() - interval '30 days'")).scalars())
    assert "case_record_y2022" not in plan and "case_record_y2023" not in plan
    assert "case_record_y20" in plan  # this year's (and maybe last year's)


def test_serve_makes_the_year_after_by_itself(own_db: Engine, monkeypatch: Any) -> None:
    """A server running across New Year: its background job makes the next year's partition
    under the application role (no migrate, no restart), so an intake dated then lands in a
    partition of its own, not the default one; two makers at once do not collide."""
    import threading
    import time
    from datetime import UTC, datetime
    from functools import partial

    from sqlalchemy import make_url

    from api import background
    from layers.db.cluster import EmbeddedCluster
    from layers.db.partitions import ensure_ahead
    from tests.support.database import engine_on, serving

    if os.environ.get("GRIDCORE_TEST_ADMIN_URL"):
        pytest.skip("the application role is the embedded cluster's")
    app = engine_on(EmbeddedCluster().info().url(
        "app", database=make_url(own_db.url).database))
    new_year = datetime(2040, 12, 31, 23, 0, tzinfo=UTC)  # the server's clock, late in 2040
    monkeypatch.setattr(background, "ensure_ahead", partial(ensure_ahead, now=new_year))
    monkeypatch.setattr(background, "PARTITIONS_AHEAD_S", 0.1)
    try:
        assert "case_record_y2041" not in partitions(own_db)
        with serving(app):
            deadline = time.monotonic() + 20
            while "case_record_y2041" not in partitions(own_db) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert "case_record_y2041" in partitions(own_db)
        assert "case_record_y2039" in partitions(own_db)  # last year's too (a January's)
        # two processes at once (the advisory lock): both succeed, the year is made once
        errors: list[BaseException] = []
        later = datetime(2043, 6, 1, tzinfo=UTC)

        def make() -> None:
            try:
                ensure_ahead(app, later)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        makers = [threading.Thread(target=make) for _ in range(4)]
        for t in makers:
            t.start()
        for t in makers:
            t.join()
        assert errors == []
        assert {"case_record_y2042", "case_record_y2043", "case_record_y2044"} <= set(
            partitions(own_db))
    finally:
        app.dispose()
    plant_old(own_db, 2041, 3)
    assert partitions(own_db)["case_record_y2041"] == 3
    assert partitions(own_db).get("case_record_default", 0) == 0
