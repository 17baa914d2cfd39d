"""Prepared statements and the round-trip-free autocommit switch of the intake hot path."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, create_engine, text

from gridcore.settings import DatabaseSettings
from layers.db.engine import autocommit, make_engine
from layers.db.prepared import Prepared


def test_prepared_once_per_connection_then_only_executed(db: Engine) -> None:
    stmt = Prepared(f"t_{uuid.uuid4().hex[:8]}",
                    "SELECT ST_AsText(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)), :tag::text")
    with db.connect() as conn:
        first = stmt.execute(conn, {"lon": 121.5, "lat": 31.2, "tag": "a"}).one()
        second = stmt.execute(conn, {"lon": 1.0, "lat": 2.0, "tag": "b"}).one()
        prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements "
                                     "WHERE name = :n"), {"n": stmt.name}).scalar_one()
    assert first == ("POINT(121.5 31.2)", "a")
    assert second == ("POINT(1 2)", "b")
    assert prepared == 1


def test_prepared_again_when_the_table_changes_shape(db: Engine) -> None:
    stmt = Prepared(f"t_{uuid.uuid4().hex[:8]}", "SELECT * FROM t_shape WHERE id = :id")
    with db.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS t_shape"))
        conn.execute(text("CREATE TABLE t_shape (id int PRIMARY KEY, a text)"))
        conn.execute(text("INSERT INTO t_shape VALUES (1, 'x')"))
    try:
        with autocommit(db) as conn:
            assert stmt.execute(conn, {"id": 1}).one() == (1, "x")
            conn.execute(text("ALTER TABLE t_shape ADD COLUMN b text DEFAULT 'y'"))
            # the cached plan's result type changed: re-prepared instead of failing
            assert stmt.execute(conn, {"id": 1}).one() == (1, "x", "y")
    finally:
        with db.begin() as conn:
            conn.execute(text("DROP TABLE t_shape"))


def test_autocommit_commits_each_statement_and_hands_back_a_normal_connection(
        db: Engine, database_url: str) -> None:
    other = create_engine(database_url)
    try:
        with db.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t_auto (v text)"))
        with autocommit(db) as conn:
            raw = conn.connection.dbapi_connection
            conn.execute(text("INSERT INTO t_auto VALUES ('seen')"))
            with other.connect() as watcher:  # committed before the block ends
                assert watcher.execute(text("SELECT count(*) FROM t_auto")).scalar_one() == 1
        assert raw.autocommit is False
        with db.connect() as conn:  # the pooled connection is transactional again
            conn.execute(text("INSERT INTO t_auto VALUES ('rolled back')"))
            conn.rollback()
            assert conn.execute(text("SELECT count(*) FROM t_auto")).scalar_one() == 1
    finally:
        other.dispose()
        with db.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS t_auto"))


def test_statements_run_on_their_generic_plan(db: Engine) -> None:
    """No planning per call: PostgreSQL would otherwise keep re-planning a statement whose
    generic plan it estimates dearer than its custom ones."""
    stmt = Prepared(f"t_{uuid.uuid4().hex[:8]}",
                    "SELECT count(*) FROM unit_grid WHERE code = :code OR geom && "
                    "ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
    with autocommit(db) as conn:
        for i in range(8):
            stmt.execute(conn, {"code": f"{i:015d}", "x0": 0, "y0": 0, "x1": 1, "y1": 1})
        generic, custom = conn.execute(text(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = :n"),
            {"n": stmt.name}).one()
    assert (generic, custom) == (8, 0)


def test_switched_off_for_transaction_pooling_proxies(db: Engine) -> None:
    """GRIDCORE_PREPARED_STATEMENTS=false: the engine's statements run as plain text."""
    off = make_engine(DatabaseSettings(prepared_statements=False),
                      url=db.url.render_as_string(hide_password=False))
    try:
        stmt = Prepared(f"t_{uuid.uuid4().hex[:8]}", "SELECT :a::int + 1, 'x:y'")
        with autocommit(off) as conn:
            assert stmt.execute(conn, {"a": 41}).one() == (42, "x:y")
            assert conn.execute(text("SELECT count(*) FROM pg_prepared_statements "
                                     "WHERE name = :n"), {"n": stmt.name}).scalar_one() == 0
    finally:
        off.dispose()


def test_rows_read_on_the_driver_cursor_are_plain_dicts(db: Engine) -> None:
    stmt = Prepared(f"t_{uuid.uuid4().hex[:8]}",
                    "SELECT g AS n, :tag::text AS tag, CAST(:doc AS jsonb) AS doc "
                    "FROM generate_series(1, :k) g")
    with autocommit(db) as conn:
        first = stmt.rows(conn, {"tag": "a", "doc": '{"x": [1, 2]}', "k": 2})
        again = stmt.rows(conn, {"tag": "b", "doc": "null", "k": 0})
        prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements "
                                     "WHERE name = :n"), {"n": stmt.name}).scalar_one()
    assert first == [{"n": 1, "tag": "a", "doc": {"x": [1, 2]}},
                     {"n": 2, "tag": "a", "doc": {"x": [1, 2]}}]
    assert again == []
    assert prepared == 1


def test_rows_errors_are_sqlalchemy_errors_and_a_dropped_connection_is_replaced(
        db: Engine) -> None:
    from sqlalchemy.exc import DataError, OperationalError

    stmt = Prepared(f"t_{uuid.uuid4().hex[:8]}", "SELECT 1 / :d::int AS q")
    with autocommit(db) as conn, pytest.raises(DataError, match="division by zero"):
        stmt.rows(conn, {"d": 0})
    with autocommit(db) as conn:  # the same pooled connection still works after the error
        assert stmt.rows(conn, {"d": 1}) == [{"q": 1}]
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with db.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with pytest.raises(OperationalError) as caught:
            stmt.rows(conn, {"d": 1})
        assert caught.value.connection_invalidated
    with autocommit(db) as conn:  # the pool handed out a live connection, prepared anew
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
        assert stmt.rows(conn, {"d": 2}) == [{"q": 0}]
