"""Who may call what (issue 18, finding 8): the whole access table of api/security/policy.py,
in production mode, on a planted city — every route × anonymous / each role / each kind of API
key, and every scope rule with a caller outside it.

A caller the table refuses gets 401 (nobody signed in) or the table's own 403 (its body names
the route); a caller it lets through may still be refused by the route for a narrower reason
(a lifecycle step the role may not take, an illegal step), never by the table.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.security.identity import issue_token
from api.security.policy import LAYER_ACTIONS, TABLE, Line
from gridcore.security.access import ACTIONS, KEY_PURPOSES, Role
from gridcore.settings import SecuritySettings, Settings
from layers.security import sessions, users
from tests.support.cases import (
    GRID_001,
    GRID_002,
    INSIDE_001,
    INSIDE_002,
    plant,
    png_bytes,
    settings,
)

PASSWORD = "correct horse battery"
COMMUNITY = "110101001001"
ENTITY = "E-ACCESS"
# One user of each role (the grid worker in grid 001), and the out-of-scope callers: a grid
# worker of grid 002 and a department handler of another department.
ROLE_USERS = {
    Role.GRID_WORKER: ("w1", (GRID_001,), None),
    Role.DISPATCHER: ("dispatcher", (), None),
    Role.DEPARTMENT_HANDLER: ("handler", (), "D_GRID"),
    Role.MANAGER: ("manager", (), None),
    Role.ANALYST: ("analyst", (), None),
    Role.ADMIN: ("admin", (), None),
}
OUTSIDERS = {"w2": ("grid_worker", (GRID_002,), None),
             "other_handler": ("department_handler", (), "D_WATER"),
             "area_manager": ("manager", (GRID_002,), None)}
PERIOD = "2026-11"
KEYS = ("open311", "iot")
COLLECTIONS = ("grids", "cases", "entities")


@dataclass
class City:
    client: TestClient
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    case: int = 0
    tile: tuple[int, int, int] = (0, 0, 0)
    appeal: int = 0
    session: str = ""  # a device session of w1's
    shift: str = ""  # a patrol shift of w1's

    def refresh_token(self, username: str = "w1") -> str:
        """A fresh device session's refresh token (each use rotates or ends one)."""
        engine = self.client.app.state.engine  # type: ignore[attr-defined]
        user = users.get_user(engine, username)
        assert user is not None
        return sessions.open_session(engine, user, days=1).refresh_token


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2 ** z
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, int((lon + 180) / 360 * n), y


@pytest.fixture
def city(db: Engine, tmp_path) -> Iterator[City]:  # type: ignore[no-untyped-def]
    plant(db)
    with db.begin() as conn:
        conn.execute(text(
            "INSERT INTO grid_worker (code, name, phone) VALUES ('W1', '王五', '13800000001'), "
            "('W2', '赵六', '13800000002')"))
        conn.execute(text(
            "INSERT INTO governance_entity (code, area, type, name, grid_code, sensitivity, "
            "attributes, geom) VALUES (:c, 'P01', 'resident', '住户', :g, 'internal', '{}', "
            "ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
            {"c": ENTITY, "g": GRID_001, "x": INSIDE_001[0] + 0.0003, "y": INSIDE_001[1]})
    tree = Settings(cases=settings(tmp_path))
    tree.security = tree.security.model_copy(update={"env": "production"})
    # an event stream ends after a moment here (every line is called by every caller)
    tree.notifications = tree.notifications.model_copy(update={
        "events_stream_max_s": 0.3, "events_heartbeat_s": 0.1, "supervision_interval_s": 0})
    app = create_app(tree, engine=db)
    city = City(TestClient(app))
    everyone = {name: (role.value, areas, dept)
                for role, (name, areas, dept) in ROLE_USERS.items()} | OUTSIDERS
    for username, (role, areas, dept) in everyone.items():
        users.add_user(db, username, PASSWORD, role, department=dept, areas=areas)
        token, _ = issue_token(tree.security, username, role, minutes=30)
        city.headers[username] = {"Authorization": f"Bearer {token}"}
    for purpose in KEYS:
        city.headers[f"key:{purpose}"] = {"X-Api-Key": users.add_key(db, f"{purpose}-app",
                                                                        purpose)}
    city.headers["anonymous"] = {}
    with city.client:
        report = city.client.post("/cases", headers=city.headers["w1"], data={
            "idempotency_key": "access-1", "category": "E0103", "lon": str(INSIDE_001[0]),
            "lat": str(INSIDE_001[1]), "description": "暴露垃圾"},
            files={"photos": ("scene.png", png_bytes(), "image/png")})
        assert report.status_code == 201, report.text
        city.case = report.json()["id"]
        engine = app.state.engine
        w1 = users.get_user(engine, "w1")
        assert w1 is not None
        city.session = sessions.open_session(engine, w1, days=1).session_id
        city.shift = str(uuid.uuid4())
        started = city.client.post("/patrol/shifts", headers=city.headers["w1"],
                                   json={"id": city.shift, "started_at": _now()})
        assert started.status_code == 201, started.text
        with db.begin() as conn:  # overdue, for the supervision list
            conn.execute(text("UPDATE case_record SET warn_at = now() - interval '2 hours', "
                              "deadline_at = now() - interval '1 hour' WHERE id = :i"),
                         {"i": city.case})
        city.tile = _tile_of(*INSIDE_001, 16)
        with db.begin() as conn:  # an appeal of department D_GRID about the case
            city.appeal = conn.execute(text(
                "INSERT INTO appeal (case_id, party_kind, party_code, penalty, period, reason, "
                "filed_by, filed_role, filed_at, decide_by) VALUES (:c, 'department', "
                "'D_GRID', 'overdue', :p, '不属本部门', 'handler', 'department_handler', "
                "now(), now() + interval '5 days') RETURNING id"),
                {"c": city.case, "p": PERIOD}).scalar_one()
        yield city


# -- one request per route ------------------------------------------------------------------------
def _path_values(line: Line, city: City, collection: str) -> dict[str, str]:
    code = {"/map/grids/{code}": GRID_001, "/grids/{code}/health": GRID_001,
            "/health/areas/{level}/{code}": COMMUNITY, "/entities/{code}": ENTITY,
            "/open311/v2/services/{code}.{fmt}": "E0103",
            "/evaluation/{kind}/{code}": "D_GRID", "/devices/{code}": "TILT-1"
            }.get(line.path, "")
    feature = {"grids": GRID_001, "cases": str(city.case), "entities": ENTITY}[collection]
    z, x, y = city.tile
    return {"case_id": str(city.case), "action": "verify", "collection_id": collection,
            "feature_id": feature, "z": str(z), "x": str(x), "y": str(y), "code": code,
            "level": "community", "fmt": "json", "request_id": str(city.case), "lang": "en",
            "path": "map.css" if line.path.startswith("/map/") else "i18n.js",
            "kind": "department", "appeal_id": str(city.appeal), "decision": "approve",
            "name": f"{PERIOD}.html", "n": "1", "session_id": city.session,
            "shift_id": city.shift, "ref": "access-hook", "delivery_id": "1",
            "message_id": "1"}


def request_of(line: Line, city: City, collection: str = "grids") -> dict[str, Any]:
    """The route's request: its path filled in, the query and body it needs."""
    path = line.path.format(**_path_values(line, city, collection))
    kwargs: dict[str, Any] = {"method": line.method, "url": path}
    params = {"/resolve": {"lon": INSIDE_001[0], "lat": INSIDE_001[1]},
              "/map/search": {"q": str(city.case)}, "/i18n/switch": {"lang": "en"},
              "/map/cases/{case_id}/actions": {"role": "dispatcher"},
              "/map/queue": {"bucket": "verify"}, "/events": {"last_event_id": "0"},
              "/evaluation/{kind}": {"period": PERIOD},
              "/evaluation/{kind}/{code}": {"period": PERIOD},
              "/admin/sessions": {"user": "w2"} if line.method == "DELETE" else {},
              "/geocode": {"q": "多福巷12号"},
              }.get(line.path)
    if params:
        kwargs["params"] = params
    body = {("POST", "/cases"): {"json": {"idempotency_key": uuid.uuid4().hex,
                                          "category": "E0103", "lon": INSIDE_001[0],
                                          "lat": INSIDE_001[1]}},
            ("POST", "/cases/{case_id}/transitions"): {"json": {"action": "verify"}},
            ("POST", "/resolve"): {"json": [list(INSIDE_001)]},
            ("POST", "/auth/token"): {"data": {"username": "w1", "password": PASSWORD}},
            ("POST", "/evaluation/appeals"): {"json": {
                "kind": "department", "party": "D_GRID", "case_id": city.case,
                "penalty": "rework", "period": PERIOD, "reason": "不属本部门"}},
            ("POST", "/evaluation/appeals/{appeal_id}/{decision}"): {"json": {
                "reason": "核实无误"}},
            ("POST", "/open311/v2/requests.{fmt}"): {"data": {
                "service_code": "E0103", "lat": str(INSIDE_001[1]),
                "long": str(INSIDE_001[0]), "description": uuid.uuid4().hex}},
            ("POST", "/classify"): {"json": {"text": "路边有暴露垃圾"}},
            ("POST", "/similar"): {"json": {"text": "暴露垃圾"}},
            ("PUT", "/me/subscriptions"): {"json": {"kinds": ["new", "red"], "areas": [],
                                                    "categories": []}},
            ("POST", "/admin/webhooks"): {"json": {"name": f"hook-{uuid.uuid4().hex[:8]}",
                                                   "url": "http://127.0.0.1:9/hook",
                                                   "kinds": ["dispatched"]}},
            ("PATCH", "/admin/webhooks/{ref}"): {"json": {"paused": True}},
            ("POST", "/patrol/shifts"): {"json": {"id": str(uuid.uuid4()),
                                                  "started_at": _now()}},
            ("POST", "/patrol/shifts/{shift_id}/points"): {"json": {"points": [
                {"t": _now(), "lon": INSIDE_001[0], "lat": INSIDE_001[1],
                 "accuracy_m": 5}]}},
            ("POST", "/patrol/shifts/{shift_id}/end"): {"json": {"ended_at": _now()}},
            ("POST", "/cases/{case_id}/messages"): {"json": {"body": "请协同确认"}},
            ("POST", "/ingest/alarms"): {"json": {"device": "TILT-1", "alarm": "tilt"}},
            }.get(line.key)
    if line.key in (("POST", "/auth/refresh"), ("POST", "/auth/signout")):
        body = {"json": {"refresh_token": city.refresh_token()}}
    kwargs.update(body or {})
    return kwargs


# -- what the table says --------------------------------------------------------------------------
def allowed(line: Line, caller: str, collection: str) -> bool:
    who = line.who
    if who.action is None:
        return True
    action = LAYER_ACTIONS.get(collection, who.action) if who.per_layer else who.action
    if caller == "anonymous":
        return False  # the city opened nothing (GRIDCORE_PUBLIC_LAYERS, the public feed)
    if caller.startswith("key:"):
        return who.keys and action in KEY_PURPOSES[caller[4:]]
    return Role(ROLE_OF[caller]) in ACTIONS[action]


ROLE_OF = {name: role.value for role, (name, _, _) in ROLE_USERS.items()}
CALLERS = ["anonymous", *ROLE_OF, *(f"key:{k}" for k in KEYS)]


# The route's own check after the table let the caller through: a machine's alarm without its
# body's signature (the test sends none) is a 401 naming the signature's header.
SIGNATURE_FIELDS = ("X-Gridcore-Signature", "X-Gridcore-Timestamp")


def _refused_by_table(line: Line, response: Any) -> bool:
    if response.status_code == 401:
        return response.json().get("field") not in SIGNATURE_FIELDS
    if response.status_code != 403:
        return False
    if line.path.startswith("/open311/"):
        return True  # GeoReport's error document; the routes themselves never answer 403
    return response.json().get("route") == f"{line.method} {line.path}"


def _lines_with_collections() -> list[tuple[Line, str]]:
    return [(entry, c) for entry in TABLE
            for c in (COLLECTIONS if entry.who.per_layer else ("grids",))]


def test_every_route_by_every_caller(city: City) -> None:
    wrong = []
    for entry, collection in _lines_with_collections():
        for caller in CALLERS:
            response = city.client.request(**request_of(entry, city, collection),
                                           headers=city.headers[caller])
            assert response.status_code < 500, (entry, caller, response.text[:300])
            expect = allowed(entry, caller, collection)
            if _refused_by_table(entry, response) == expect:
                wrong.append(f"{entry.method} {entry.path} [{collection}] by {caller}: "
                             f"{response.status_code} (table: {'allowed' if expect else 'no'})"
                             f" {response.text[:120]}")
    assert wrong == [], "\n".join(wrong)


def test_a_bad_credential_is_refused_not_anonymous(city: City) -> None:
    for headers in ({"Authorization": "Bearer not-a-token"}, {"X-Api-Key": "gck_x_y"}):
        assert city.client.get("/cases", headers=headers).status_code == 401
    # ...even where anyone may call: the probes do not look at credentials
    assert city.client.get("/healthz", headers={"Authorization": "Bearer x"}).status_code == 200


# -- the scope column: a caller outside it -------------------------------------------------------
def _ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.text
    body = response.json()
    if "features" in body:
        return {f["id"] for f in body["features"]}
    return {c["id"] for c in body["cases"]}


def _tile_ids(response: Any) -> set[Any]:
    assert response.status_code == 200, response.text
    layers = mapbox_vector_tile.decode(response.content)
    return {f["properties"].get("id", f["properties"].get("code"))
            for layer in layers.values() for f in layer["features"]}


def _get(city: City, who: str, line: str, collection: str = "grids", **params: Any) -> Any:
    method, path = line.split(" ", 1)
    entry = next(e for e in TABLE if e.key == (method, path))
    kwargs = request_of(entry, city, collection)
    if params:
        kwargs["params"] = {**kwargs.get("params", {}), **params}
    return city.client.request(**kwargs, headers=city.headers[who])


Probe = Callable[[City], None]


def _in_and_out(line: str, inside: Callable[[Any], bool], outside: Callable[[Any], bool],
                in_caller: str = "w1", out_caller: str = "w2") -> Probe:
    def probe(city: City) -> None:
        assert inside(_get(city, in_caller, line)), f"{line} in scope"
        assert outside(_get(city, out_caller, line)), f"{line} out of scope"
    return probe


def _status(code: int) -> Callable[[Any], bool]:
    return lambda r: r.status_code == code


def _holds_case(city_case: Callable[[], int]) -> Callable[[Any], bool]:
    return lambda r: city_case() in _ids(r)


SCOPE_PROBES: dict[tuple[str, str], Probe] = {}


def scope_probe(line: str) -> Callable[[Probe], Probe]:
    def register(probe: Probe) -> Probe:
        method, path = line.split(" ", 1)
        SCOPE_PROBES[(method, path)] = probe
        return probe
    return register


@scope_probe("GET /cases")
def _cases(city: City) -> None:
    assert city.case in _ids(_get(city, "w1", "GET /cases"))
    assert city.case not in _ids(_get(city, "w2", "GET /cases"))
    assert city.case not in _ids(_get(city, "other_handler", "GET /cases"))
    assert _get(city, "analyst", "GET /cases", format="csv").status_code == 200
    assert _get(city, "w1", "GET /cases", format="csv").status_code == 403  # case.export


@scope_probe("GET /cases/overdue")
def _overdue(city: City) -> None:
    assert city.case in _ids(_get(city, "dispatcher", "GET /cases/overdue"))
    assert city.case not in _ids(_get(city, "w2", "GET /cases/overdue"))


for _line in ("GET /map/cases/{case_id}/actions", "GET /grids/{code}/health",
              "GET /entities/{code}"):
    scope_probe(_line)(_in_and_out(_line, _status(200), _status(404)))
# a community's health: its street or the city sees it, a grid of it does not
scope_probe("GET /health/areas/{level}/{code}")(_in_and_out(
    "GET /health/areas/{level}/{code}", _status(200), _status(404), in_caller="dispatcher"))
# the consultation thread (会商): the case's areas, its lead and its parties
for _line in ("GET /cases/{case_id}/messages", "POST /cases/{case_id}/messages",
              "GET /cases/{case_id}/coordination"):
    scope_probe(_line)(_in_and_out(_line, lambda r: r.status_code in (200, 201),
                                   _status(403)))
for _line in ("POST /cases/{case_id}/transitions", "POST /cases/{case_id}/{action}"):
    scope_probe(_line)(_in_and_out(_line, lambda r: r.status_code in (200, 409),
                                   _status(403)))


@scope_probe("GET /cases/{case_id}/messages/{message_id}/photos/{n}")
def _message_photo(city: City) -> None:
    r = city.client.post(f"/cases/{city.case}/messages", headers=city.headers["w1"],
                         data={"body": "现场照片"},
                         files=[("photos", ("a.png", png_bytes(40), "image/png"))])
    assert r.status_code == 201, r.text
    url = r.json()["attachments"][0]["url"]
    assert city.client.get(url, headers=city.headers["w1"]).status_code == 200
    assert city.client.get(url, headers=city.headers["w2"]).status_code == 403


@scope_probe("GET /cases/party-tasks")
def _party_tasks(city: City) -> None:
    # only the caller's own department's whistles and tasks: none of another department's
    for who in ("handler", "other_handler", "w1"):
        r = _get(city, who, "GET /cases/party-tasks")
        assert r.status_code == 200, r.text
        assert all(i["lead"] != r.json()["department"] for i in r.json()["items"])


@scope_probe("GET /cases/{case_id}")
@scope_probe("GET /cases/{case_id}/photos/{n}")
def _one_case(city: City) -> None:
    for line in ("GET /cases/{case_id}", "GET /cases/{case_id}/photos/{n}"):
        assert _get(city, "w1", line).status_code == 200, line
        assert _get(city, "w2", line).status_code == 404, line
        assert _get(city, "other_handler", line).status_code == 404, line


# -- intelligence (issue 22) ---------------------------------------------------------------------
scope_probe("GET /cases/{case_id}/similar")(_in_and_out(
    "GET /cases/{case_id}/similar", _status(200), _status(404)))


@scope_probe("POST /similar")
def _similar_text(city: City) -> None:
    def found(who: str) -> set[int]:
        r = _get(city, who, "POST /similar")
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}
    assert city.case in found("w1")
    assert city.case not in found("w2")


@scope_probe("GET /cases/{case_id}/dispatch-proposal")
def _dispatch_proposal(city: City) -> None:
    # dispatchers usually see the city: one limited to grid 002 does not see grid 001's case
    engine = city.client.app.state.engine  # type: ignore[attr-defined]
    users.add_user(engine, "d_east", PASSWORD, "dispatcher", areas=[GRID_002])
    token, _ = issue_token(city.client.app.state.settings.security,  # type: ignore[attr-defined]
                           "d_east", "dispatcher", minutes=10)
    city.headers["d_east"] = {"Authorization": f"Bearer {token}"}
    line = "GET /cases/{case_id}/dispatch-proposal"
    assert _get(city, "dispatcher", line).status_code == 200
    assert _get(city, "d_east", line).status_code == 404


@scope_probe("GET /forecast")
@scope_probe("GET /forecast/warnings")
def _forecast(city: City) -> None:
    from gridcore.intelligence.forecasting import ForecastModels
    from gridcore.intelligence.serialize import dumps

    engine = city.client.app.state.engine  # type: ignore[attr-defined]
    blob = dumps(ForecastModels(), kind="forecast")
    with engine.begin() as conn:  # one stored forecast (this probe serves two lines)
        if conn.execute(text("SELECT count(*) FROM intel_model")).scalar_one() == 0:
            model = conn.execute(text(
                "INSERT INTO intel_model (kind, version, n_cases, sklearn_version, active, "
                "size_bytes, model) VALUES ('forecast', 1, 1, 'x', true, :n, :b) "
                "RETURNING id"), {"n": len(blob), "b": blob}).scalar_one()
            for grid in (GRID_001, GRID_002):
                conn.execute(text(
                    "INSERT INTO case_forecast VALUES (:m, 'grid', :g, 'E0103', "
                    "date_trunc('week', now())::date, 0.1, 1)"), {"m": model, "g": grid})
    for line in ("GET /forecast", "GET /forecast/warnings"):
        areas = {w: {i["area_code"] for i in _get(city, w, line, level="grid").json()["items"]}
                 for w in ("w1", "w2", "dispatcher")}
        assert GRID_002 not in areas["w1"] and GRID_001 not in areas["w2"], (line, areas)
        if line == "GET /forecast":
            assert areas == {"w1": {GRID_001}, "w2": {GRID_002},
                             "dispatcher": {GRID_001, GRID_002}}, areas


@scope_probe("GET /me/tasks")
def _tasks(city: City) -> None:
    def ids(who: str) -> set[int]:
        answer = _get(city, who, "GET /me/tasks")
        assert answer.status_code == 200, answer.text
        return {item["id"] for item in answer.json()["items"]}
    assert city.case in ids("dispatcher")  # to verify, in the centre's queue
    assert city.case not in ids("w2")  # another grid
    assert city.case not in ids("w1")  # its own report: not verified by its filer
    assert ids("other_handler") == set()


@scope_probe("GET /map/queue")
def _queue(city: City) -> None:
    def queued(who: str) -> set[int]:  # every bucket (earlier probes move the case on)
        counts = _get(city, who, "GET /map/queue").json()["counts"]
        return set().union(*(_ids(_get(city, who, "GET /map/queue", bucket=b))
                             for b in counts))
    assert city.case in queued("w1")
    assert city.case in queued("dispatcher")
    for outside in ("w2", "other_handler"):
        assert city.case not in queued(outside), outside


def _streamed_cases(response: Any) -> set[int]:
    assert response.status_code == 200, response.text
    found = set()
    for block in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields.get("event") == "case":
            found.add(json.loads(fields["data"])["case_id"])
    return found


@scope_probe("GET /events")
def _events(city: City) -> None:  # replayed from the first event: what each caller may see
    assert city.case in _streamed_cases(_get(city, "w1", "GET /events"))
    assert city.case in _streamed_cases(_get(city, "dispatcher", "GET /events"))
    for outside in ("w2", "other_handler"):
        assert city.case not in _streamed_cases(_get(city, outside, "GET /events")), outside


@scope_probe("GET /me/subscriptions")
@scope_probe("PUT /me/subscriptions")
@scope_probe("DELETE /me/subscriptions")
def _subscriptions(city: City) -> None:
    put = _get(city, "w1", "PUT /me/subscriptions")
    assert put.status_code == 200 and put.json()["stored"], put.text
    assert sorted(_get(city, "w1", "GET /me/subscriptions").json()["kinds"]) == ["new", "red"]
    assert _get(city, "w2", "DELETE /me/subscriptions").status_code == 200
    assert not _get(city, "w2", "GET /me/subscriptions").json()["stored"]
    assert _get(city, "w1", "GET /me/subscriptions").json()["stored"]  # w2 reset its own


@scope_probe("GET /desk/team")
def _team(city: City) -> None:
    for who, department in (("handler", "D_GRID"), ("other_handler", "D_WATER")):
        answer = _get(city, who, "GET /desk/team").json()
        assert answer["department"]["code"] == department and answer["me"]["username"] == who


@scope_probe("GET /me/reports")
def _reports(city: City) -> None:
    line = "GET /me/reports"
    assert city.case in {i["id"] for i in _get(city, "w1", line).json()["items"]}
    for other in ("w2", "dispatcher"):
        assert city.case not in {i["id"] for i in _get(city, other, line).json()["items"]}


@scope_probe("GET /me/area")
def _area(city: City) -> None:
    def grids(who: str) -> set[str]:
        answer = _get(city, who, "GET /me/area")
        assert answer.status_code == 200, answer.text
        return {f["properties"]["code"] for f in answer.json()["features"]}
    assert grids("w1") == {GRID_001}
    assert grids("w2") == {GRID_002}
    assert "13800000002" not in _get(city, "w1", "GET /me/area").text  # w2's phone


@scope_probe("POST /auth/refresh")
def _refresh(city: City) -> None:
    token = city.refresh_token("w2")
    rotated = city.client.post("/auth/refresh", json={"refresh_token": token})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] != token
    made_up = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    assert city.client.post("/auth/refresh", json={"refresh_token": made_up}
                            ).status_code == 401


@scope_probe("POST /auth/signout")
def _signout(city: City) -> None:
    token = city.refresh_token("w2")
    assert city.client.post("/auth/signout", json={"refresh_token": token}).status_code == 204
    assert city.client.post("/auth/refresh", json={"refresh_token": token}).status_code == 401


@scope_probe("GET /auth/sessions")
def _sessions(city: City) -> None:
    line = "GET /auth/sessions"
    assert city.session in {s["id"] for s in _get(city, "w1", line).json()}
    assert city.session not in {s["id"] for s in _get(city, "w2", line).json()}


@scope_probe("DELETE /auth/sessions/{session_id}")
def _revoke(city: City) -> None:
    line = "DELETE /auth/sessions/{session_id}"
    assert _get(city, "w2", line).status_code == 404  # another's session
    assert _get(city, "w1", line).status_code == 204


@scope_probe("POST /patrol/shifts/{shift_id}/points")
def _points(city: City) -> None:
    line = "POST /patrol/shifts/{shift_id}/points"
    assert _get(city, "w2", line).status_code == 404
    assert _get(city, "admin", line).status_code == 404  # may record, not into w1's shift
    assert _get(city, "w1", line).status_code == 200


@scope_probe("GET /patrol/shifts")
def _shifts(city: City) -> None:
    line = "GET /patrol/shifts"
    def ids(who: str, **params: str) -> set[str]:
        answer = _get(city, who, line, **params)
        assert answer.status_code == 200, answer.text
        return {str(s["id"]) for s in answer.json()["shifts"]}
    assert city.shift in ids("w1")
    assert city.shift not in ids("w2")
    assert city.shift in ids("manager", user="w1")
    assert _get(city, "w2", line, user="w1").status_code == 403


@scope_probe("GET /patrol/shifts/{shift_id}")
def _shift(city: City) -> None:
    line = "GET /patrol/shifts/{shift_id}"
    assert _get(city, "w1", line).status_code == 200
    assert _get(city, "w2", line).status_code == 404
    assert _get(city, "manager", line).status_code == 200


@scope_probe("POST /patrol/shifts/{shift_id}/end")
def _end(city: City) -> None:
    line = "POST /patrol/shifts/{shift_id}/end"
    assert _get(city, "w2", line).status_code == 404
    assert _get(city, "w1", line).status_code == 200


@scope_probe("GET /auth/me")
def _me(city: City) -> None:
    assert _get(city, "w2", "GET /auth/me").json()["username"] == "w2"


@scope_probe("GET /collections/{collection_id}/items")
def _items(city: City) -> None:
    line = "GET /collections/{collection_id}/items"
    assert city.case in _ids(_get(city, "w1", line, "cases"))
    assert city.case not in _ids(_get(city, "w2", line, "cases"))
    codes = {f["id"] for f in _get(city, "w1", line, "entities").json()["features"]}
    assert ENTITY in codes
    assert _get(city, "w2", line, "entities").json()["features"] == []
    assert _get(city, "handler", line, "entities").status_code == 403  # no 9+X for handlers


@scope_probe("GET /collections/{collection_id}/items/{feature_id}")
def _item(city: City) -> None:
    line = "GET /collections/{collection_id}/items/{feature_id}"
    for collection in ("cases", "entities"):
        assert _get(city, "w1", line, collection).status_code == 200
        assert _get(city, "w2", line, collection).status_code == 404


@scope_probe("GET /collections/{collection_id}/tiles/WebMercatorQuad/{z}/{x}/{y}")
def _tiles(city: City) -> None:
    line = "GET /collections/{collection_id}/tiles/WebMercatorQuad/{z}/{x}/{y}"
    assert city.case in _tile_ids(_get(city, "w1", line, "cases"))
    assert city.case not in _tile_ids(_get(city, "w2", line, "cases"))
    assert ENTITY in _tile_ids(_get(city, "w1", line, "entities"))
    assert ENTITY not in _tile_ids(_get(city, "w2", line, "entities"))


@scope_probe("GET /map/grids/{code}")
def _grid_panel(city: City) -> None:
    inside = _get(city, "w1", "GET /map/grids/{code}").json()
    assert inside["workers"][0]["name"] == "王五" and inside["open_case_count"] == 1
    outside = _get(city, "w2", "GET /map/grids/{code}").json()
    assert outside["open_cases"] == [] and outside["open_case_count"] == 0
    assert outside["workers"] == [{"code": "W1", "active": True}]  # no name, no phone
    assert "13800000001" not in _get(city, "w2", "GET /map/grids/{code}").text


@scope_probe("GET /map/search")
def _search(city: City) -> None:
    hits = _get(city, "w1", "GET /map/search").json()["hits"]
    assert [h["id"] for h in hits if h["kind"] == "case"] == [city.case]
    hits = _get(city, "w2", "GET /map/search").json()["hits"]
    assert [h for h in hits if h["kind"] == "case"] == []


@scope_probe("GET /open311/v2/requests.{fmt}")
def _open311_list(city: City) -> None:
    line = "GET /open311/v2/requests.{fmt}"
    ids = {int(r["service_request_id"]) for r in _get(city, "w1", line).json()}
    assert city.case in ids
    assert _get(city, "w2", line).json() == []
    filed = city.client.post("/open311/v2/requests.json", headers=city.headers["key:open311"],
                             data={"service_code": "E0103", "lat": str(INSIDE_001[1]),
                                   "long": str(INSIDE_001[0]), "description": "井盖"})
    own = int(filed.json()[0]["service_request_id"])
    mine = {int(r["service_request_id"]) for r in _get(city, "key:open311", line).json()}
    assert mine == {own}  # a key reads the cases it filed, nobody else's


@scope_probe("GET /open311/v2/requests/{request_id}.{fmt}")
def _open311_one(city: City) -> None:
    line = "GET /open311/v2/requests/{request_id}.{fmt}"
    assert _get(city, "w1", line).status_code == 200
    assert _get(city, "w2", line).status_code == 404
    assert _get(city, "key:open311", line).status_code == 404  # not the key's case


@scope_probe("GET /evaluation/appeals")
def _appeals(city: City) -> None:
    line = "GET /evaluation/appeals"
    assert city.appeal in {a["id"] for a in _get(city, "handler", line).json()["appeals"]}
    assert _get(city, "other_handler", line).json()["appeals"] == []


# an appeal and a party's evaluation: its department sees it, another department does not
for _line in ("GET /evaluation/appeals/{appeal_id}", "GET /evaluation/{kind}/{code}"):
    scope_probe(_line)(_in_and_out(_line, _status(200), _status(404), in_caller="handler",
                                   out_caller="other_handler"))


@scope_probe("POST /evaluation/appeals/{appeal_id}/{decision}")
def _decide(city: City) -> None:
    line = "POST /evaluation/appeals/{appeal_id}/{decision}"
    assert _get(city, "area_manager", line).status_code == 404  # not a party it oversees
    assert _get(city, "manager", line).status_code in (200, 409)


@scope_probe("POST /evaluation/appeals")
def _file(city: City) -> None:
    line = "POST /evaluation/appeals"
    assert _get(city, "other_handler", line).status_code == 403  # another department's
    assert _get(city, "handler", line).status_code != 403


@scope_probe("GET /evaluation/{kind}")
def _ranking(city: City) -> None:
    rows = city.client.get("/evaluation/worker", params={"period": PERIOD},
                           headers=city.headers["w1"])
    assert rows.status_code == 200, rows.text
    assert {p["code"] for p in rows.json()["parties"]} <= {"w1"}


@scope_probe("GET /briefings/{name}")
def _briefing(city: City) -> None:
    line = "GET /briefings/{name}"
    assert _get(city, "area_manager", line, area=COMMUNITY).status_code == 404
    assert _get(city, "manager", line, area=COMMUNITY).status_code == 200


def test_every_scope_rule(city: City) -> None:
    scoped = {e.key for e in TABLE if e.scope != "—"}
    public_only = {("GET", "/collections")}  # tested with the city's public layers below
    assert scoped - public_only == set(SCOPE_PROBES), "a scope rule without a probe"
    for key, probe in SCOPE_PROBES.items():
        probe(city)
        print("scope holds:", *key)


def test_a_filer_reads_its_case_outside_its_areas(city: City) -> None:
    # the "unless the caller filed it" of GET /cases/{case_id} and its photos (on its own:
    # the case would show in the other probes' grid 002)
    away = city.client.post("/cases", headers=city.headers["w1"], data={
        "idempotency_key": uuid.uuid4().hex, "category": "E0103", "lon": str(INSIDE_002[0]),
        "lat": str(INSIDE_002[1])}, files={"photos": ("p.png", png_bytes(), "image/png")})
    assert away.status_code == 201, away.text
    assert away.json()["grid_code"] == GRID_002
    for url in (f"/cases/{away.json()['id']}", f"/cases/{away.json()['id']}/photos/1"):
        assert city.client.get(url, headers=city.headers["w1"]).status_code == 200, url
        assert city.client.get(url, headers=city.headers["other_handler"]).status_code == 404


def test_public_layers_are_the_only_anonymous_data(db: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plant(db)
    tree = Settings(cases=settings(tmp_path))
    tree.security = tree.security.model_copy(update={"env": "production",
                                                     "public_layers": "grids,areas"})
    with TestClient(create_app(tree, engine=db)) as client:
        listed = client.get("/collections")
        assert listed.status_code == 200
        assert {c["id"] for c in listed.json()["collections"]} == {"grids", "areas"}
        assert client.get("/collections/grids/items").status_code == 200
        assert client.get("/collections/grids").status_code == 200
        z, x, y = _tile_of(*INSIDE_001, 14)
        assert client.get(f"/collections/grids/tiles/WebMercatorQuad/{z}/{x}/{y}"
                          ).status_code == 200
        for other in ("parts", "cases", "entities"):
            assert client.get(f"/collections/{other}/items").status_code == 401, other
        for path in ("/layers", "/map/config", "/resolve?lon=116.402&lat=39.902",
                     "/health/rankings", "/open311/v2/requests.json"):
            assert client.get(path).status_code in (401, 403), path
    with pytest.raises(ValueError, match="may not list"):
        SecuritySettings(public_layers="grids,cases")
