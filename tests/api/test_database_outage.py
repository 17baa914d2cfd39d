"""The database stops under a running server (issue 18, finding 5): every route family that
needs it answers 503 with Retry-After — never a 500 — and all recover once it is back. On a
private embedded cluster, which the server uses as `gridcore serve` does: through the
application role. And a cluster left by a version without that role gets it on its next start
(an upgrade in place), with its data."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
from sqlalchemy import text

from layers.db.engine import make_engine
from layers.db.migrate import migrate
from layers.security.users import add_key, add_user
from tests.support.cases import GRID_001, INSIDE_001, plant
from tests.support.live_server import live_server
from tests.support.private_cluster import cluster_env, private_cluster

SECRET = "outage-test-" + "s" * 40
PASSWORD = "correct horse battery"


def _wait_ready(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError("the server did not recover")


Call = Callable[[], httpx.Response]


def _families(base: str, token: str, key: str, case_id: int) -> dict[str, Call]:
    auth = {"Authorization": f"Bearer {token}"}
    n = iter(range(10_000))

    def get(path: str, **kw: object) -> Call:
        return lambda: httpx.get(base + path, headers=auth, timeout=20, **kw)  # type: ignore[arg-type]

    def report() -> httpx.Response:
        return httpx.post(f"{base}/cases", headers=auth, timeout=20, json={
            "idempotency_key": f"outage-{time.time_ns()}-{next(n)}", "category": "E0103",
            "lon": INSIDE_001[0], "lat": INSIDE_001[1]})

    return {
        "sign-in": lambda: httpx.post(f"{base}/auth/token", timeout=20,
                                      data={"username": "desk", "password": PASSWORD}),
        "who am I": get("/auth/me"),
        "case list": get("/cases"),
        "one case": get(f"/cases/{case_id}"),
        "report": report,
        "step": lambda: httpx.post(f"{base}/cases/{case_id}/verify", headers=auth, timeout=20),
        "collections": get("/collections"),
        "items": get("/collections/grids/items"),
        "grid tile": get("/collections/grids/tiles/WebMercatorQuad/16/53958/24833"),
        "case tile": get("/collections/cases/tiles/WebMercatorQuad/16/53958/24833"),
        "map config": get("/map/config"),
        "map grid": get(f"/map/grids/{GRID_001}"),
        "resolve": get("/resolve", params={"lon": INSIDE_001[0], "lat": INSIDE_001[1],
                                           "category": "P0120"}),
        "resolve batch": lambda: httpx.post(f"{base}/resolve", headers=auth, timeout=20,
                                            json=[list(INSIDE_001)]),
        "health": get("/health/choropleth"),
        "grid health": get(f"/grids/{GRID_001}/health"),
        "open311": lambda: httpx.get(f"{base}/open311/v2/requests.json", timeout=20,
                                     params={"api_key": key}),
        "layers": get("/layers"),
        # the field app's (issue 20)
        "my tasks": get("/me/tasks"),
        "my reports": get("/me/reports"),
        "my area": get("/me/area"),
        "my sessions": get("/auth/sessions"),
        "patrol shifts": get("/patrol/shifts"),
        "readiness": get("/readyz"),
    }


def test_every_route_family_is_503_while_the_database_is_down() -> None:
    with private_cluster() as cluster:
        cluster.start()
        owner = make_engine(cluster.settings, role="owner")
        migrate(owner)
        plant(owner)
        add_user(owner, "desk", PASSWORD, "dispatcher")
        key = add_key(owner, "citizen-app", "open311")
        owner.dispose()
        env = {**cluster_env(cluster), "GRIDCORE_ENV": "production",
               "GRIDCORE_SECRET_KEY": SECRET}
        with live_server(env) as base:
            # 20 s like every call below: a first sign-in (argon2) and a first report (the
            # process's first case) have waited past httpx's default 5 s at load ~15 (c14a)
            token = httpx.post(f"{base}/auth/token", timeout=20, data={
                "username": "desk", "password": PASSWORD}).json()
            first = httpx.post(f"{base}/cases", timeout=20, headers={
                "Authorization": f"Bearer {token['access_token']}"}, json={
                "idempotency_key": "outage-0", "category": "E0103", "lon": INSIDE_001[0],
                "lat": INSIDE_001[1]})
            assert first.status_code == 201, first.text
            calls = _families(base, token["access_token"], key, first.json()["id"])
            for name, call in calls.items():  # all well before the outage
                assert call().status_code < 400, name
            # (the step has been taken now: from here on it is a 409, an answer all the same)

            cluster.stop()
            down = {}
            for name, call in calls.items():
                response = call()
                down[name] = (response.status_code, response.headers.get("retry-after"),
                              response.headers.get("content-type", ""))
            wrong = {n: d for n, d in down.items()
                     if d[0] != 503 or not d[1] or "json" not in d[2]}
            assert wrong == {}, json.dumps(wrong, indent=1)
            assert httpx.get(f"{base}/healthz", timeout=20).status_code == 200  # it lives

            cluster.start()
            _wait_ready(base)
            after = {name: call().status_code for name, call in calls.items()}
            assert all(status < 400 or (name, status) == ("step", 409)
                       for name, status in after.items()), json.dumps(after)


def test_a_cluster_without_the_application_role_gets_it_on_start() -> None:
    with private_cluster() as cluster:
        cluster.init()  # what an older version left: its state names the owner only
        state = json.loads(cluster.state_file.read_text())
        assert set(state) == {"port", "user", "password"}
        info = cluster.start()
        assert info.app_password and info.app_user == "gridcore_app"
        assert {"app_user", "app_password"} <= set(json.loads(cluster.state_file.read_text()))
        owner = make_engine(cluster.settings, role="owner")
        migrate(owner)
        app = make_engine(cluster.settings, role="app")
        try:
            with app.connect() as conn:
                who = conn.execute(text("SELECT current_user, rolsuper FROM pg_roles "
                                        "WHERE rolname = current_user")).one()
                assert tuple(who) == ("gridcore_app", False)
                assert conn.execute(text("SELECT count(*) FROM category")).scalar_one() > 0
            # a second start changes nothing (the same password, no new role)
            assert cluster.start().app_password == info.app_password
        finally:
            app.dispose()
            owner.dispose()
