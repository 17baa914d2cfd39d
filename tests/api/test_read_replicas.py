"""Read replicas on a real hot standby (streaming replication on loopback).

One private primary cluster and one standby for the whole module (``gridcore db replica``'s
code, ``layers.db.replica``), a small planted city, the app with GRIDCORE_READ_DATABASE_URL
pointing at the standby. What is checked: a write reaches the standby within the lag bound;
read-only routes run on the standby; a read never misses a write committed before it (the
standby is waited for, else the primary answers — shown by pausing the standby's replay);
a lagging standby is skipped and /readyz says so; with the standby stopped every route still
answers, from the primary, and it is used again once back.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text

from gridcore.settings import DatabaseSettings, Settings
from tests.support import cases as planted

pytestmark = pytest.mark.skipif(shutil.which("pg_ctl") is None and not list(
    Path("/usr/lib/postgresql").glob("*/bin/pg_basebackup")), reason="no PostgreSQL binaries")
MAX_LAG_S = 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Replicated:
    def __init__(self, root: Path) -> None:
        from layers.db.cluster import EmbeddedCluster
        from layers.db.replica import EmbeddedReplica

        self.database = DatabaseSettings(data_dir=root, cluster_port=_free_port(),
                                         pool_size=4, pool_max_overflow=4)
        self.cluster = EmbeddedCluster(self.database)
        self.primary_url = self.cluster.start().url()
        self.replica = EmbeddedReplica(self.database, "replica1")

    def standby(self) -> object:
        # the owner: pausing the standby's replay needs a superuser
        return create_engine(self.replica.url("owner"), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    from layers.db.engine import make_engine
    from layers.db.migrate import migrate

    # the cluster runs as an unprivileged user when the tests run as root: a directory it can
    # reach (pytest's own temporary directories are private to the user)
    root = Path(tempfile.mkdtemp(prefix="gridcore-replica-"))
    os.chmod(root, 0o755)
    made = Replicated(root)
    try:
        engine = make_engine(made.database, url=made.primary_url)
        migrate(engine)
        planted.plant(engine)
        engine.dispose()
        made.replica.start(_free_port())
        yield made
    finally:
        made.replica.remove()
        made.cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def app_client(replicated: Replicated, tmp_path_factory) -> Iterator[TestClient]:  # noqa: ANN001
    from api.app import create_app

    database = replicated.database.model_copy(update={
        "read_database_url": replicated.replica.url(), "replica_max_lag_s": MAX_LAG_S,
        "replica_wait_ms": 300.0, "replica_check_interval_s": 0.1})
    settings = Settings(database=database,
                        cases=planted.settings(tmp_path_factory.mktemp("media")))
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def on_replica(app_client: TestClient) -> Iterator[list[str]]:
    """The statements the app runs on the standby during the test."""
    seen: list[str] = []
    engine = app_client.app.state.reads.replicas[0].engine

    def record(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def _wait_state(client: TestClient, state: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        ready = client.get("/readyz").json()
        if ready["replicas"][0]["state"] == state or time.monotonic() > deadline:
            return ready
        time.sleep(0.1)


def _report(client: TestClient, description: str) -> dict:
    r = client.post("/cases", json=planted.report(description=description),
                    headers={"X-Role": "grid_worker", "X-Actor": "W1"})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_write_reaches_the_standby_within_the_lag_bound(replicated: Replicated,
                                                         app_client: TestClient) -> None:
    case = _report(app_client, "replicated write")
    standby = replicated.standby()
    started = time.monotonic()
    try:
        while True:
            with standby.connect() as conn:
                found = conn.execute(text("SELECT state FROM case_record WHERE id = :i"),
                                     {"i": case["id"]}).scalar()
            if found is not None or time.monotonic() - started > MAX_LAG_S:
                break
            time.sleep(0.01)
    finally:
        standby.dispose()
    assert found == "reported"
    assert time.monotonic() - started <= MAX_LAG_S
    ready = _wait_state(app_client, "streaming")
    assert ready["reads_on"] == "replicas"
    assert ready["replicas"][0]["lag_s"] <= MAX_LAG_S


def test_read_routes_run_on_the_standby_and_see_the_write_before_them(
        app_client: TestClient, on_replica: list[str]) -> None:
    _wait_state(app_client, "streaming")
    case = _report(app_client, "seen at once")
    listed = app_client.get("/cases", params={"grid": planted.GRID_001},
                            headers={"X-Role": "dispatcher", "X-Actor": "d"}).json()
    assert case["id"] in [c["id"] for c in listed["cases"]]
    items = app_client.get("/collections/cases/items", params={"limit": 1000}).json()
    assert case["id"] in [f["id"] for f in items["features"]]
    assert any("case_record" in s for s in on_replica)  # the list and the items: the standby
    with app_client.app.state.reads.replicas[0].engine.connect() as conn:  # type: ignore[attr-defined]
        # ...read as the application role, as the primary is written (issue 18)
        assert conn.execute(text("SELECT current_user, rolsuper FROM pg_roles "
                                 "WHERE rolname = current_user")).one() == ("gridcore_app",
                                                                            False)
    # the write's own answer and the case after a step come from the primary (the standby
    # sees only the monitor's and the catch-up checks' queries meanwhile)
    on_replica.clear()
    step = app_client.post(f"/cases/{case['id']}/verify",
                           headers={"X-Role": "dispatcher", "X-Actor": "d"})
    assert step.status_code == 200 and step.json()["state"] == "verified"
    assert not any("case_record" in s for s in on_replica)


def test_a_read_waits_for_the_standby_or_goes_to_the_primary(
        replicated: Replicated, app_client: TestClient, on_replica: list[str]) -> None:
    """Replay paused on the standby: a new write is not there, so the read must not be served
    from it — the tile, the items and the health still show the write."""
    _wait_state(app_client, "streaming")
    health = f"/grids/{planted.GRID_001}/health"
    density = {t["indicator"]: t["value"] for t in app_client.get(
        health, params={"window": "7d"}).json()["terms"]}["case_density"]
    standby = replicated.standby()
    with standby.connect() as conn:
        conn.execute(text("SELECT pg_wal_replay_pause()"))
    try:
        case = _report(app_client, "written while the standby stands still")
        on_replica.clear()
        items = app_client.get("/collections/cases/items", params={"limit": 1000}).json()
        assert case["id"] in [f["id"] for f in items["features"]]
        tile = app_client.get("/collections/cases/tiles/WebMercatorQuad/16/53970/24818")
        assert tile.status_code in (200, 204)
        after = {t["indicator"]: t["value"] for t in app_client.get(
            health, params={"window": "7d"}).json()["terms"]}["case_density"]
        assert after > density  # the new case counts: the primary answered
        assert not any("case_record" in s for s in on_replica)
        ready = _wait_state(app_client, "lagging")  # beyond GRIDCORE_REPLICA_MAX_LAG_S
        assert ready["replicas"][0]["state"] == "lagging"
        assert ready["reads_on"].startswith("primary")
    finally:
        with standby.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
        standby.dispose()
    assert _wait_state(app_client, "streaming")["reads_on"] == "replicas"


READ_ROUTES = ["/readyz", "/layers", "/collections", "/collections/cases/items",
               "/collections/grids/items", f"/collections/grids/items?code={planted.GRID_001}",
               "/collections/parts/tiles/WebMercatorQuad/14/13492/6204",
               "/collections/cases/tiles/WebMercatorQuad/12/3373/1551",
               f"/grids/{planted.GRID_001}/health?window=30d",
               "/health/rankings?level=grid&window=30d", "/health/choropleth?window=30d",
               "/cases", "/cases/overdue", "/map/versions", f"/map/grids/{planted.GRID_001}",
               "/map/search?q=110101001001001"]


def test_every_read_route_answers_with_the_standby_stopped(
        replicated: Replicated, app_client: TestClient) -> None:
    headers = {"X-Role": "dispatcher", "X-Actor": "d"}
    for route in READ_ROUTES:
        r = app_client.get(route, headers=headers)
        assert r.status_code in (200, 204), (route, r.status_code, r.text[:300])
    replicated.replica.stop()
    try:
        ready = _wait_state(app_client, "down")
        assert ready["status"] == "ready" and ready["reads_on"].startswith("primary")
        case = _report(app_client, "written with the standby down")
        for route in READ_ROUTES:
            r = app_client.get(route, headers=headers)
            assert r.status_code in (200, 204), (route, r.status_code, r.text[:300])
        listed = app_client.get("/cases", headers=headers).json()
        assert case["id"] in [c["id"] for c in listed["cases"]]
    finally:
        replicated.replica.start()
    assert _wait_state(app_client, "streaming")["reads_on"] == "replicas"
