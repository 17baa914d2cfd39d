"""The database foundation: migrations up/down/up, version checks, layer versions, the API."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from layers.db import migrate as migrations
from layers.db.engine import _version_tuple, check_server


def test_migrations_up_down_up(empty_db: Engine) -> None:
    engine = empty_db
    migrations.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"admin_area", "unit_grid", "city_part", "governance_entity", "department",
            "category", "layer_version_shard", "grid_generation"} <= tables
    assert "layer_version" in inspect(engine).get_view_names()
    migrations.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version", "spatial_ref_sys"}
    migrations.upgrade(engine)
    assert migrations.current_revision(engine) is not None
    assert "unit_grid" in inspect(engine).get_table_names()


def test_server_versions_are_checked(engine: Engine) -> None:
    versions = check_server(engine)
    assert _version_tuple(versions.postgres) >= (14, 0)
    assert versions.postgis is not None and _version_tuple(versions.postgis) >= (3, 1)


def test_taxonomy_synced(engine: Engine) -> None:
    with engine.connect() as conn:
        names = dict(conn.execute(text("SELECT key, name_zh FROM category")).all())
    assert names["P0101"] == "上水井盖"
    assert names["P0102"] == "污水井盖"
    assert names["E0103"] == "道路不洁"


def test_layer_version_bumps_inside_the_writing_transaction(db: Engine) -> None:
    def version() -> int:
        with db.connect() as conn:
            return conn.execute(text(
                "SELECT version FROM layer_version WHERE layer = 'departments'")).scalar_one()

    before = version()
    with db.begin() as conn:
        conn.execute(text("INSERT INTO department (code, name) VALUES ('D1', 'Roads')"))
    assert version() == before + 1


def test_service_endpoints(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["database"]["postgis"]
    layers = {layer["name"]: layer for layer in client.get("/layers").json()["layers"]}
    assert set(layers) >= {"areas", "grids", "parts", "entities"}
    assert layers["parts"]["count"] == 0 and layers["parts"]["extent"] is None
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["status"] == 404


def test_case_writers_do_not_queue_on_one_version_row(db: Engine) -> None:
    """Two open transactions writing cases bump different shards of the cases version: the
    second does not wait for the first to commit, and the version counts both."""
    def version() -> int:
        with db.connect() as conn:
            return conn.execute(text(
                "SELECT version FROM layer_version WHERE layer = 'cases'")).scalar_one()

    before = version()
    conns = [db.connect() for _ in range(6)]
    try:
        by_shard = {}
        for c in conns:  # two connections whose server processes fall in different shards
            by_shard.setdefault(c.execute(text("SELECT pg_backend_pid() % 16")).scalar_one(), c)
        first, second = list(by_shard.values())[:2]
        touch = text("UPDATE case_record SET version = version WHERE false")  # bumps anyway
        first.execute(touch)  # its transaction stays open, holding its shard's row
        second.execute(text("SET LOCAL lock_timeout = '2s'"))
        second.execute(touch)  # would fail on the lock timeout if both shared one row
        second.commit()
        first.commit()
    finally:
        for c in conns:
            c.close()
    assert version() == before + 2
