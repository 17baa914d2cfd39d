"""Engine, sessions and the start-up check of PostgreSQL / PostGIS versions."""

from __future__ import annotations

import contextlib
import select
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg2
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

from gridcore.errors import DatabaseUnsuitable, ServiceUnavailable
from gridcore.settings import DatabaseSettings
from layers.db.cluster import resolve_database_url, standalone_database

PREPARED_OPTION = "gridcore_prepared_statements"
MIN_POSTGRES = (14, 0)
MIN_POSTGIS = (3, 1)


def make_engine(settings: DatabaseSettings | None = None, url: str | None = None,
                start_cluster: bool = True, role: str = "owner") -> Engine:
    """An engine with a recovering pool: a check on checkout drops dead connections after a
    database restart and recycle retires old ones (pygeoapi #2344). ``role``: ``owner`` (the
    command line, migrations) or ``app`` (the service; ``layers/db/roles.py``)."""
    settings = standalone_database(settings)
    url = url or resolve_database_url(settings, start=start_cluster, role=role)
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_pre_ping=False,  # _check_on_checkout does it without a round trip
        pool_recycle=settings.pool_recycle_s,
        pool_timeout=settings.pool_timeout_s,
        # layers.db.prepared reads it on every statement it runs (GRIDCORE_PREPARED_STATEMENTS)
        execution_options={PREPARED_OPTION: settings.prepared_statements},
        connect_args={
            "application_name": "gridcore",
            "connect_timeout": 10,
            # plan_cache_mode: prepared statements (layers.db.prepared) run on their generic plan.
            # With the default, PostgreSQL kept re-planning intake's read on every call when
            # it judged the generic plan dearer, for the same index scans (benchmarks/README.md,
            # "Design figures"). It only concerns cached plans: prepared statements and the
            # few PL/pgSQL triggers (key look-ups); ordinary queries are planned as before.
            "options": f"-c statement_timeout={settings.statement_timeout_ms} "
                       "-c plan_cache_mode=force_generic_plan",
        },
    )
    event.listen(engine, "checkout", _check_on_checkout)
    return engine


def _check_on_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
    """Pre-ping without the round trip.

    ``pool_pre_ping`` sends ``SELECT 1`` on every checkout: a round trip for every request
    (its cost on case intake: benchmarks/README.md, "Design figures"). A connection the server
    has closed (restart, ``pg_terminate_backend``, an idle timeout) has something to read on
    its socket, the server's FATAL message and then the end of the stream, while an idle
    healthy one has nothing. Only a readable socket gets the real
    ping; a failing one is a DisconnectionError, on which the pool discards the connection
    and checks out another (SQLAlchemy's "custom pessimistic ping")."""
    if dbapi_conn.closed:
        raise DisconnectionError("the connection was closed")
    poller = select.poll()
    poller.register(dbapi_conn.fileno(), select.POLLIN)
    if not poller.poll(0):
        return
    try:
        with dbapi_conn.cursor() as cur:
            cur.execute("SELECT 1")
        dbapi_conn.rollback()
    except psycopg2.Error as exc:
        raise DisconnectionError(f"the server closed the connection: {exc}") from exc


@contextlib.contextmanager
def autocommit(engine: Engine) -> Iterator[Connection]:
    """A pooled connection on which every statement is its own transaction.

    SQLAlchemy's ``isolation_level="AUTOCOMMIT"`` goes through psycopg2's
    ``set_isolation_level``, which sends ``SET default_transaction_isolation`` to the server on
    the way in and again when the connection returns to the pool: two round trips per use.
    psycopg2's own ``autocommit`` attribute switches on the client
    only, so the hot path flips that and flips it back before the pool sees the connection.
    A connection that once ran at another isolation level (the grid index reads in REPEATABLE
    READ) keeps an explicit level, and psycopg2 then answers every autocommit switch with that
    same SET; the server's default level is what SQLAlchemy restores anyway, so it is set as
    "default" (no SET) first."""
    with engine.connect() as conn:
        raw: Any = conn.connection.dbapi_connection  # psycopg2's
        if raw.isolation_level is not None:
            raw.isolation_level = None
        raw.autocommit = True
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):  # a broken connection is discarded anyway
                raw.autocommit = False


@dataclass(frozen=True)
class ServerVersions:
    postgres: str
    postgis: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"postgres": self.postgres, "postgis": self.postgis}


def _version_tuple(text_version: str) -> tuple[int, ...]:
    parts = []
    for piece in text_version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def server_versions(engine: Engine) -> ServerVersions:
    try:
        with engine.connect() as conn:
            pg = conn.execute(text("SHOW server_version")).scalar_one()
            postgis = conn.execute(text(
                "SELECT extversion FROM pg_extension WHERE extname = 'postgis'")).scalar()
            if postgis is None:
                postgis = conn.execute(text(
                    "SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'"
                )).scalar()
                postgis = f"{postgis} (available, not installed)" if postgis else None
    except (OperationalError, DBAPIError) as exc:
        raise ServiceUnavailable(f"database unreachable: {exc.orig or exc}") from exc
    return ServerVersions(str(pg).split()[0], postgis)


def is_superuser(engine: Engine) -> bool:
    """Whether the engine's role is a superuser (the service should not be one)."""
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT rolsuper FROM pg_roles "
                                      "WHERE rolname = current_user")).scalar())


def check_server(engine: Engine) -> ServerVersions:
    """Refuse to run on a PostgreSQL or PostGIS that is missing or too old, saying which."""
    versions = server_versions(engine)
    if _version_tuple(versions.postgres) < MIN_POSTGRES:
        raise DatabaseUnsuitable(
            f"PostgreSQL {versions.postgres} is too old: gridcore needs >= 14")
    if versions.postgis is None:
        raise DatabaseUnsuitable(
            "PostGIS is not available on this PostgreSQL server: install it "
            "(Debian: apt-get install postgresql-15-postgis-3)")
    if _version_tuple(versions.postgis) < MIN_POSTGIS:
        raise DatabaseUnsuitable(f"PostGIS {versions.postgis} is too old: gridcore needs >= 3.1")
    return versions
