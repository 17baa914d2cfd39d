"""The pool recovers when the database restarts, and meanwhile clients get a retryable 503.

A restart is simulated inside the shared cluster without touching other tests' databases:
every backend of the test database is terminated (what a restart does to open connections),
and while the database refuses new connections (``ALLOW_CONNECTIONS false``) requests must be
answered 503 + ``Retry-After`` instead of a 500 or a hang.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text

from api.app import create_app
from gridcore.settings import DatabaseSettings
from layers.db.engine import make_engine


@pytest.fixture
def own_engine(db: Engine, database_url: str) -> Iterator[Engine]:
    """A separate pool for the app, so that terminating it never hits the session engine."""
    engine = make_engine(DatabaseSettings(pool_size=2, pool_max_overflow=0, pool_timeout_s=2),
                         url=database_url)
    yield engine
    engine.dispose()


def _terminate(admin_url: str, name: str, allow: bool | None = None) -> int:
    """Terminate every backend of the database and wait until they are gone, as after a
    restart: ``pg_terminate_backend`` only signals, and a pooled connection whose backend has
    not yet closed its socket looks healthy to the checkout check for a moment."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if allow is not None:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow)}'))
            pids = [r[0] for r in conn.execute(text(  # in the select list: filtered rows only
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:p)"),
                    {"p": pids}).scalar_one():
                time.sleep(0.02)
            return len(pids)
    finally:
        admin.dispose()


def test_pool_recovers_and_outage_is_a_retryable_503(own_engine: Engine, admin_url: str,
                                                     database_url: str) -> None:
    name = make_url(database_url).database
    with TestClient(create_app(engine=own_engine)) as client:
        assert client.get("/layers").status_code == 200
        assert _terminate(admin_url, name) >= 1  # every pooled connection dies
        assert client.get("/layers").status_code == 200  # the checkout check reconnects, no error

        try:
            _terminate(admin_url, name, allow=False)
            down = client.get("/layers")
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"].isdigit()
            assert down.headers["content-type"] == "application/problem+json"
            assert client.get("/readyz").status_code == 503
            assert client.get("/healthz").status_code == 200  # liveness is not readiness
        finally:
            _terminate(admin_url, name, allow=True)
        assert client.get("/layers").status_code == 200  # back without a restart of the app


def test_checkout_replaces_a_connection_the_server_closed(own_engine: Engine, admin_url: str,
                                                          database_url: str) -> None:
    """The checkout check (no ``SELECT 1`` per checkout) still finds a terminated backend."""
    import select

    with own_engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        raw = conn.connection.dbapi_connection
    assert _terminate(admin_url, make_url(database_url).database) >= 1
    poller = select.poll()
    poller.register(raw.fileno(), select.POLLIN)
    deadline = time.monotonic() + 5
    while not poller.poll(50) and time.monotonic() < deadline:
        pass  # the server's goodbye reaches the pooled connection's socket
    with own_engine.connect() as conn:  # no error: the dead connection was swapped
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
