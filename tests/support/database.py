"""Database fixtures (a pytest plugin, registered by ``tests/conftest.py``): a real PostGIS
database per test session, emptied after every test that used ``db``.

Each pytest process gets its own database (``gridcore_test_<pid>``) in the embedded cluster, or
in the server named by ``GRIDCORE_TEST_ADMIN_URL`` (a URL with rights to CREATE DATABASE), so
parallel runs never see each other's rows. Nothing here runs unless a test asks for one of these
fixtures: the unit tests (``tests/unit``) never do, and need no PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from sqlalchemy import Connection, Engine

    from gridcore.settings import Settings

KEEP_TABLES = {"alembic_version", "layer_version_shard", "category", "spatial_ref_sys"}
# The fixtures of this module: tests/unit may use none of them (tests/unit/conftest.py).
DATABASE_FIXTURES = frozenset({"admin_url", "database_url", "empty_db", "engine", "db",
                               "cli_env", "client", "app_engine"})


@pytest.fixture(scope="session")
def admin_url() -> str:
    url = os.environ.get("GRIDCORE_TEST_ADMIN_URL")
    if url:
        return url
    from layers.db.cluster import EmbeddedCluster

    return EmbeddedCluster().start().url()


def fast_commits(conn: Connection, name: str) -> None:
    """Commits in the test database ``name`` do not wait for their WAL flush
    (``synchronous_commit = off`` for every session of it, the servers' included).

    A commit is visible and durable against any crash of the *client* (a killed server, a
    killed CLI) all the same; only a crash of PostgreSQL itself could lose the last few
    hundred milliseconds, which no test of the shared cluster does (the ones that stop or
    kill PostgreSQL run a private cluster: tests.support.private_cluster). Each commit
    waited 3-6 ms for its fsync here, ten times more under a loaded run."""
    from sqlalchemy import text

    conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))


@contextmanager
def scratch_database(admin_url: str, name: str) -> Iterator[str]:
    """A new empty database on the admin URL's server; its URL; dropped afterwards."""
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        fast_commits(conn, name)
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # FORCE: terminating the sessions first left a gap in which a background thread
            # of the test process (the audit sealer) could connect again
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(admin_url: str) -> Iterator[str]:
    with scratch_database(admin_url, f"gridcore_test_{os.getpid()}_{uuid.uuid4().hex[:6]}") \
            as url:
        yield url


def engine_on(url: str) -> Engine:
    """An engine on the database at ``url``."""
    from layers.db.engine import make_engine

    return make_engine(url=url)


@pytest.fixture
def empty_db(admin_url: str) -> Iterator[Engine]:
    """A database of the test's own with no schema: migration tests go up and down in it
    without tearing down the shared test schema under other tests."""
    with scratch_database(admin_url, f"gridcore_scratch_{uuid.uuid4().hex[:8]}") as url:
        engine = engine_on(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    from layers.db.migrate import migrate

    eng = engine_on(database_url)
    migrate(eng)
    _hash_each_password_once()
    yield eng
    eng.dispose()


def _hash_each_password_once() -> None:
    """argon2id with the product's parameters (64 MiB, 3 passes, 4 lanes) costs ~0.3 s of CPU a
    hash here, and the fixtures add the same few test passwords to new users before every test
    (a desk city: nine users). In the test processes a password is hashed the first time it is
    given and that hash is reused for every later user with it: still a real argon2id hash that
    sign-in verifies, only its salt is shared between test users. Passwords too short are
    refused every time, as before."""
    from layers.security import users

    real = users.hash_password
    if getattr(real, "hashed", None) is not None:
        return
    hashed: dict[str, str] = {}

    def hash_once(password: str) -> str:
        if password not in hashed:
            hashed[password] = real(password)
        return hashed[password]

    hash_once.hashed = hashed  # type: ignore[attr-defined]
    users.hash_password = hash_once  # type: ignore[assignment]


DELETE_BELOW = 10_000  # rows: a table holding fewer is emptied by DELETE, not TRUNCATE


def truncate_all(engine: Engine) -> None:
    """Every table but ``KEEP_TABLES`` emptied and its identity sequences restarted, as
    ``TRUNCATE <all> RESTART IDENTITY CASCADE`` leaves them.

    Only the tables that hold rows are emptied: ``db`` empties the database before and after
    every test, when nearly all are empty already. Which tables hold rows, and whether more than
    ``DELETE_BELOW``, is one query (~30 ms). A TRUNCATE gives each table, partition and index a
    new file, about 10 ms a relation: ~1 s after a test that planted a small city (12 tables,
    the case partitions and their indexes), where DELETE takes ~20 ms. So the tables a test
    filled with many rows are truncated and the others deleted from; the sequences of all are
    then set back to their start as RESTART IDENTITY does (a rolled-back insert advances one).
    A deleted-from table keeps its statistics until autovacuum: under ``DELETE_BELOW`` rows,
    far below the row counts that change a decision of the product (``layers.db.bulk``'s
    100,000)."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    # A live server of the module (its event listener, sweeps, sealer) may be reading two of
    # these tables while TRUNCATE locks them one by one: PostgreSQL then cancels one side as a
    # deadlock. The truncation is tried again; the server's reads just retry on their own.
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                tables = [r[0] for r in conn.execute(text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
                    if r[0] not in KEEP_TABLES]
                if not tables:
                    return
                held = {r[0]: r[1] for r in conn.execute(text(" UNION ALL ".join(
                    f"SELECT '{t}', (SELECT count(*) FROM (SELECT FROM \"{t}\" "
                    f"LIMIT {DELETE_BELOW}) x) AS n" for t in tables))) if r[1]}
                if held:
                    # audit_log refuses TRUNCATE and DELETE (triggers); the test harness, a
                    # superuser, empties it all the same with triggers off for this
                    # transaction (foreign keys too: every table that holds rows is emptied)
                    conn.execute(text("SET LOCAL session_replication_role = replica"))
                    big = [t for t, n in held.items() if n >= DELETE_BELOW]
                    if big:
                        conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in big)
                                          + " RESTART IDENTITY CASCADE"))
                    for t in held:
                        if t not in big:
                            conn.execute(text(f'DELETE FROM "{t}"'))
                # the identity and serial sequences of every table that has been used (the
                # truncated ones are back at their start already)
                conn.execute(text(
                    "SELECT setval(s.seqrelid, s.seqstart, false) FROM pg_sequence s "
                    "JOIN pg_sequences v ON format('%I.%I', v.schemaname, v.sequencename)"
                    "::regclass = s.seqrelid "
                    "JOIN pg_depend d ON d.classid = 'pg_class'::regclass "
                    "AND d.objid = s.seqrelid AND d.refclassid = 'pg_class'::regclass "
                    "AND d.deptype IN ('a', 'i') "
                    "JOIN pg_class t ON t.oid = d.refobjid "
                    "WHERE t.relnamespace = 'public'::regnamespace "
                    "AND t.relname = ANY(:tables) AND v.last_value IS NOT NULL"),
                    {"tables": tables})
            return
        except OperationalError as exc:
            if "deadlock detected" not in str(exc) or attempt == 4:
                raise


@pytest.fixture
def app_engine(db: Engine, database_url: str) -> Iterator[Engine]:
    """The test database as ``gridcore serve`` connects to it: the embedded cluster's
    application role (no superuser; granted by the migrations). Skipped on a server of
    ``GRIDCORE_TEST_ADMIN_URL``, which has no such role of ours."""
    if os.environ.get("GRIDCORE_TEST_ADMIN_URL"):
        pytest.skip("the application role is the embedded cluster's")
    from sqlalchemy import make_url

    from layers.db.cluster import EmbeddedCluster

    info = EmbeddedCluster().info()
    engine = engine_on(info.url("app", database=make_url(database_url).database))
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    """The migrated test database, emptied after the test."""
    truncate_all(engine)
    yield engine
    truncate_all(engine)


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment that points the ``gridcore`` command line at the test database."""
    monkeypatch.setenv("GRIDCORE_DATABASE_URL", database_url)
    return {"GRIDCORE_DATABASE_URL": database_url}


@contextmanager
def serving(engine: Engine, settings: Settings | None = None) -> Iterator[TestClient]:
    """The app on ``engine`` in a started TestClient, with ``settings`` (a tree: the sections
    a test sets, the environment's for the rest) or the environment's."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(settings, engine=engine)) as test_client:
        yield test_client


@pytest.fixture
def client(db: Engine) -> Iterator[TestClient]:
    with serving(db) as test_client:
        yield test_client


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table: tests compare them before and after a refused operation.

    Not ``layer_version_shard``: the tile caches' version counters are bumped by statement
    triggers, which fire on a refused statement too (zero rows), and a counter's shard row is
    made on the first bump from its backend — a cache revalidation, not data (the cause of an
    intake test that failed now and then under load)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'layer_version_shard' ORDER BY 1"))]
        return {t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one())
                for t in tables}
