"""Patrols (巡查): on duty and off duty, batches of positions (resends add nothing, positions
off duty are refused), the shift's track as a LineString with times, who may read it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from layers.security.users import add_user
from tests.support.database import serving
from tests.support.security import bearer


@pytest.fixture
def api(db: Engine) -> Iterator[TestClient]:
    with serving(db) as client:
        yield client



def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def test_a_shift_with_its_track(api: TestClient, db: Engine) -> None:
    with db.begin() as conn:  # the register's worker this account is
        conn.execute(text("INSERT INTO grid_worker (code, name) VALUES ('W9', '王芳')"))
    add_user(db, "wang", "a-long-password-1", "grid_worker", areas=("110101",),
             worker_code="W9")
    add_user(db, "zhao", "a-long-password-2", "grid_worker", areas=("110102",))
    add_user(db, "boss", "a-long-password-3", "manager")
    wang, zhao = bearer(api, "wang", "grid_worker"), bearer(api, "zhao", "grid_worker")
    shift = str(uuid.uuid4())
    start = datetime.now(UTC) - timedelta(minutes=30)
    r = api.post("/patrol/shifts", json={"id": shift, "started_at": ms(start)}, headers=wang)
    assert r.status_code == 201 and r.json()["on_duty"] is True
    assert api.post("/patrol/shifts", json={"id": shift, "started_at": ms(start)},
                    headers=wang).status_code == 200  # a resend
    points = [{"t": ms(start + timedelta(seconds=15 * i)), "lon": 24.94 + i * 1e-4,
               "lat": 60.168, "accuracy_m": 8} for i in range(5)]
    off_duty = {"t": ms(start - timedelta(minutes=5)), "lon": 24.94, "lat": 60.168}
    r = api.post(f"/patrol/shifts/{shift}/points",
                 json={"points": [*points[:3], off_duty, {"lon": "x"}]}, headers=wang)
    body = r.json()
    assert r.status_code == 200 and body["stored"] == 3
    assert [x["index"] for x in body["refused"]] == [3, 4]
    assert "off duty" in body["refused"][0]["reason"]
    r = api.post(f"/patrol/shifts/{shift}/points", json={"points": points}, headers=wang)
    assert r.json()["stored"] == 2 and r.json()["duplicates"] == 3
    assert r.json()["shift"]["points"] == 5 and r.json()["shift"]["length_m"] > 20
    assert api.post(f"/patrol/shifts/{shift}/points", json={"points": points},
                    headers=zhao).status_code == 404  # not zhao's shift
    end = start + timedelta(minutes=10)
    r = api.post(f"/patrol/shifts/{shift}/end", json={"ended_at": end.isoformat()},
                 headers=wang)
    assert r.status_code == 200 and r.json()["on_duty"] is False
    late = {"t": ms(end + timedelta(minutes=1)), "lon": 24.95, "lat": 60.168}
    r = api.post(f"/patrol/shifts/{shift}/points", json={"points": [late]}, headers=wang)
    assert r.json()["stored"] == 0 and "ended" in r.json()["refused"][0]["reason"]
    with db.connect() as conn:
        row = conn.execute(text(
            "SELECT GeometryType(track) AS kind, ST_NPoints(track) AS n, ST_M(ST_StartPoint("
            "track)) AS m0 FROM patrol_shift")).one()
    assert row.kind == "LINESTRINGM" and row.n == 5
    assert row.m0 == pytest.approx(points[0]["t"] / 1000)
    with db.connect() as conn:  # as evaluation's patrol coverage reads it: by worker code
        track = conn.execute(text("SELECT worker_code, GeometryType(geom) AS kind "
                                  "FROM patrol_worker_track")).one()
    assert tuple(track) == ("W9", "LINESTRING")
    feature = api.get(f"/patrol/shifts/{shift}", headers=wang).json()
    assert feature["geometry"]["type"] == "LineString"
    assert len(feature["properties"]["times"]) == 5
    assert api.get(f"/patrol/shifts/{shift}", headers=zhao).status_code == 404
    boss = bearer(api, "boss", "manager")
    assert api.get(f"/patrol/shifts/{shift}", headers=boss).status_code == 200
    assert api.get("/patrol/shifts?user=wang", headers=boss).json()["count"] == 1
    assert api.get("/patrol/shifts?user=wang", headers=zhao).status_code == 403
    assert api.get("/patrol/shifts", headers=zhao).json()["count"] == 0
    assert api.post("/patrol/shifts", json={"id": str(uuid.uuid4()), "started_at": ms(start)},
                    headers=boss).status_code == 403  # managers do not patrol


def test_an_account_names_an_existing_worker(db: Engine) -> None:
    from gridcore.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        add_user(db, "li", "a-long-password-1", "grid_worker", areas=("110101",),
                 worker_code="W404")
    assert err.value.details["field"] == "worker_code"


def test_a_new_shift_ends_the_open_one(api: TestClient, db: Engine) -> None:
    add_user(db, "wang", "a-long-password-1", "grid_worker", areas=("110101",))
    wang = bearer(api, "wang", "grid_worker")
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    start = datetime.now(UTC) - timedelta(hours=2)
    api.post("/patrol/shifts", json={"id": first, "started_at": ms(start)}, headers=wang)
    api.post(f"/patrol/shifts/{first}/points", headers=wang, json={"points": [
        {"t": ms(start + timedelta(minutes=5)), "lon": 24.94, "lat": 60.168}]})
    api.post("/patrol/shifts", json={"id": second, "started_at": ms(datetime.now(UTC))},
             headers=wang)
    shifts = {s["id"]: s for s in api.get("/patrol/shifts", headers=wang).json()["shifts"]}
    assert shifts[first]["on_duty"] is False
    ended = datetime.fromtimestamp(ms(start + timedelta(minutes=5)) / 1000, UTC)
    assert shifts[first]["ended_at"] == ended.isoformat()
    assert shifts[second]["on_duty"] is True
    r = api.post("/patrol/shifts", json={"id": str(uuid.uuid4()),
                                         "started_at": ms(datetime.now(UTC) + timedelta(hours=1))},
                 headers=wang)
    assert r.status_code == 422 and r.json()["field"] == "started_at"
    assert api.get("/patrol/shifts/not-a-uuid", headers=wang).status_code == 422
