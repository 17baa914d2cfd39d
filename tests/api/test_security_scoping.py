"""Roles × actions × scopes on the case API, enforced in the queries.

A planted city (tests/support/cases.py): district 110101 → street 110101001 → community
110101001001 → grids 001 and 002. The app runs in production mode (role headers not trusted);
each user signs in with a real token.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.security.identity import issue_token
from gridcore.settings import Settings
from layers.security import audit, users
from tests.support.cases import GRID_001, GRID_002, INSIDE_001, INSIDE_002, plant, settings

PASSWORD = "correct horse battery"
USERS = {
    "w1": ("grid_worker", (GRID_001,), None),
    "w2": ("grid_worker", (GRID_002,), None),
    "street": ("manager", ("110101001",), None),
    "handler": ("department_handler", (), "D_GRID"),
    "dispatcher": ("dispatcher", (), None),
    "analyst": ("analyst", (), None),
}


@pytest.fixture
def city(db: Engine, tmp_path) -> Iterator[tuple[TestClient, dict]]:  # type: ignore[no-untyped-def]
    plant(db)
    tree = Settings(cases=settings(tmp_path))
    tree.security = tree.security.model_copy(update={"env": "production"})
    app = create_app(tree, engine=db)
    headers = {}
    for name, (role, areas, dept) in USERS.items():
        users.add_user(db, name, PASSWORD, role, department=dept, areas=areas)
        token, _ = issue_token(tree.security, name, role)
        headers[name] = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        yield client, headers


def _report(client: TestClient, who: dict, key: str, where: tuple[float, float]) -> int:
    response = client.post("/cases", headers=who, json={
        "idempotency_key": key, "category": "E0103", "lon": where[0], "lat": where[1],
        "description": "暴露垃圾"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _ids(client: TestClient, who: dict, path: str = "/cases") -> set[int]:
    response = client.get(path, headers=who)
    assert response.status_code == 200, response.text
    return {c["id"] for c in response.json()["cases"]}


def _tile_of(point: tuple[float, float], z: int) -> tuple[int, int, int]:
    lon, lat = point
    n = 2 ** z
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, int((lon + 180) / 360 * n), y


def _tile_cases(client: TestClient, who: dict, z: int, x: int, y: int) -> set[int]:
    response = client.get(f"/collections/cases/tiles/WebMercatorQuad/{z}/{x}/{y}", headers=who)
    assert response.status_code == 200, response.text
    layers = mapbox_vector_tile.decode(response.content)
    return {f["properties"]["id"] for layer in layers.values() for f in layer["features"]}


def test_case_reads_and_actions_are_scoped(city, db: Engine) -> None:  # type: ignore[no-untyped-def]
    client, h = city
    # production mode: no token, no access — and the stand-in headers prove nothing
    assert client.get("/cases").status_code == 401
    assert client.get("/cases", headers={"X-Role": "admin"}).status_code == 401
    assert client.post("/cases", headers={"X-Role": "grid_worker"}, json={
        "idempotency_key": "s-0", "category": "E0103", "lon": INSIDE_001[0],
        "lat": INSIDE_001[1]}).status_code == 401
    c1 = _report(client, h["w1"], "s-1", INSIDE_001)
    c2 = _report(client, h["w2"], "s-2", INSIDE_002)
    assert client.post("/cases", headers=h["analyst"], json={
        "idempotency_key": "s-3", "category": "E0103", "lon": INSIDE_001[0],
        "lat": INSIDE_001[1]}).status_code == 403  # analysts do not report
    assert client.post(f"/cases/{c1}/verify", headers={"X-Role": "admin"}).status_code == 401

    # reads: a grid worker sees their grid; the street manager and dispatcher see both
    assert _ids(client, h["w1"]) == {c1} and _ids(client, h["w2"]) == {c2}
    assert _ids(client, h["street"]) == {c1, c2} == _ids(client, h["dispatcher"])
    assert _ids(client, h["analyst"]) == {c1, c2}
    assert _ids(client, h["handler"]) == set()  # nothing dispatched to D_GRID yet
    assert client.get(f"/cases/{c2}", headers=h["w1"]).status_code == 404  # not leaked
    assert client.get(f"/cases/{c1}", headers=h["w1"]).status_code == 200
    assert client.get("/cases/999999", headers=h["w1"]).status_code == 404
    # exports: analysts yes, grid workers no
    assert client.get("/cases?format=csv", headers=h["analyst"]).status_code == 200
    assert client.get("/cases?format=csv", headers=h["w1"]).status_code == 403

    # actions: outside the area → 403; the wrong role → 403; in scope and role → 200
    assert client.post(f"/cases/{c2}/verify", headers=h["w1"]).status_code == 403
    assert client.post(f"/cases/{c1}/verify", headers=h["analyst"]).status_code in (403, 422)
    assert client.post(f"/cases/{c1}/verify", headers=h["w1"]).status_code == 200
    assert client.post(f"/cases/{c1}/register", headers=h["w1"]).status_code == 403
    assert client.post(f"/cases/{c1}/register", headers=h["dispatcher"]).status_code == 200
    assert client.post(f"/cases/{c1}/dispatch", headers=h["dispatcher"],
                       json={"department": "D_GRID"}).status_code == 200

    # the department handler now sees (and may act on) what was dispatched to it, only that
    assert _ids(client, h["handler"]) == {c1}
    assert client.get(f"/cases/{c2}", headers=h["handler"]).status_code == 404
    assert client.post(f"/cases/{c2}/accept", headers=h["handler"]).status_code == 403
    assert client.post(f"/cases/{c1}/accept", headers=h["handler"]).status_code == 200
    overdue = client.get("/cases/overdue", headers=h["w2"])
    assert overdue.status_code == 200 and c1 not in {c["id"] for c in overdue.json()["cases"]}

    # the map's case layer (OGC API Features) is scoped the same way
    def layer(who: dict) -> set[int]:
        response = client.get("/collections/cases/items", headers=who)
        assert response.status_code == 200, response.text
        return {f["id"] for f in response.json()["features"]}

    assert layer(h["w1"]) == {c1} and layer(h["street"]) == {c1, c2}
    assert layer(h["handler"]) == {c1}
    assert client.get("/collections/cases/items").status_code == 401
    assert client.get(f"/collections/cases/items/{c2}", headers=h["w1"]).status_code == 404
    assert client.get(f"/collections/cases/items/{c1}", headers=h["w1"]).status_code == 200
    # other layers: signed in, unless the city lists them in GRIDCORE_PUBLIC_LAYERS
    assert client.get("/collections/grids/items").status_code == 401
    assert client.get("/collections/grids/items", headers=h["handler"]).status_code == 200
    z, x, y = _tile_of(INSIDE_001, 15)  # cases are points from zoom 15
    assert _tile_of(INSIDE_002, 15) == (z, x, y)  # both cases on one tile
    assert _tile_cases(client, h["w1"], z, x, y) == {c1}
    assert _tile_cases(client, h["street"], z, x, y) == {c1, c2}
    assert _tile_cases(client, h["w2"], z, x, y) == {c2}  # not w1's tile from the cache
    assert client.get(f"/collections/cases/tiles/WebMercatorQuad/{z}/{x}/{y}").status_code == 401

    # the map's grid panel lists open cases only of grids in the caller's scope
    panel = client.get(f"/map/grids/{GRID_001}", headers=h["w2"]).json()
    assert panel["open_cases"] == [] and panel["open_case_count"] == 0
    panel = client.get(f"/map/grids/{GRID_001}", headers=h["street"]).json()
    assert [c["id"] for c in panel["open_cases"]] == [c1]
    assert client.get(f"/map/grids/{GRID_001}").status_code == 401

    # health details of one grid: inside the caller's areas only
    assert client.get(f"/grids/{GRID_001}/health", headers=h["w1"]).status_code == 200
    assert client.get(f"/grids/{GRID_002}/health", headers=h["w1"]).status_code == 404
    assert client.get(f"/grids/{GRID_002}/health", headers=h["street"]).status_code == 200
    assert client.get("/health/areas/community/110101001001",
                      headers=h["w1"]).status_code == 404
    assert client.get(f"/grids/{GRID_001}/health").status_code == 401

    # every write above is in the audit log, by who did it, and the chain holds
    rows = audit.recent(db, limit=50)
    done = {(r["actor"], r["action"], r["target"]) for r in rows}
    assert {("w1", "case.report", f"case:{c1}"), ("w2", "case.report", f"case:{c2}"),
            ("w1", "case.verify", f"case:{c1}"), ("dispatcher", "case.dispatch", f"case:{c1}"),
            ("handler", "case.accept", f"case:{c1}")} <= done
    assert not any(r["action"] == "case.register" and r["actor"] == "w1" for r in rows)
    assert audit.verify(db).ok


def test_machine_keys_report_but_do_not_read(city, db: Engine) -> None:  # type: ignore[no-untyped-def]
    client, h = city
    key = users.add_key(db, "air-sensor", "iot")
    response = client.post("/cases", headers={"X-Api-Key": key}, json={
        "idempotency_key": "iot-1", "category": "E0103", "lon": INSIDE_001[0],
        "lat": INSIDE_001[1], "source": "machine"})
    assert response.status_code == 201, response.text
    assert client.get("/cases", headers={"X-Api-Key": key}).status_code == 403  # a key: no
    users.revoke_key(db, key)
    assert client.post("/cases", headers={"X-Api-Key": key}, json={
        "idempotency_key": "iot-2", "category": "E0103", "lon": INSIDE_001[0],
        "lat": INSIDE_001[1]}).status_code == 401
    assert any(r["actor"].startswith("key:") and r["action"] == "case.report"
               for r in audit.recent(db))
