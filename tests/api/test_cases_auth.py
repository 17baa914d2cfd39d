"""Cases with real identities: a bearer token names the actor and role of a lifecycle step
(the X-Role headers are only the stand-in), and Open311 accepts real API keys."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gridcore.settings import Settings
from layers.security.users import add_key, add_user
from tests.support.cases import INSIDE_001, plant, report, settings
from tests.support.database import serving
from tests.support.security import bearer


@pytest.fixture
def api(db, tmp_path):  # type: ignore[no-untyped-def]
    plant(db)
    with serving(db, Settings(cases=settings(tmp_path))) as client:
        yield client



def test_token_names_actor_and_role(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    add_user(db, "li.desk", "a-long-password-1", "dispatcher")
    add_user(db, "wang.worker", "a-long-password-2", "grid_worker", areas=("110101",))
    worker = bearer(api, "wang.worker", "grid_worker")
    case = api.post("/cases", json=report(), headers=worker).json()
    cid = case["id"]
    full = api.get(f"/cases/{cid}").json()
    assert (full["history"][0]["actor"], full["history"][0]["role"]) == ("wang.worker",
                                                                         "grid_worker")
    desk = bearer(api, "li.desk", "dispatcher")
    # The token wins over a claimed header role.
    r = api.post(f"/cases/{cid}/verify", headers={**desk, "X-Role": "admin"})
    assert r.status_code == 200, r.text
    last = r.json()["history"][-1]
    assert (last["actor"], last["role"]) == ("li.desk", "dispatcher")
    r = api.post(f"/cases/{cid}/register", headers=worker)
    assert r.status_code == 403 and "dispatcher" in r.json()["roles"]
    r = api.post(f"/cases/{cid}/register", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401


def test_open311_real_api_key(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    key = add_key(db, "citizen-app", "open311")
    form = {"service_code": "E0103", "lat": str(INSIDE_001[1]), "long": str(INSIDE_001[0]),
            "description": "路面有油污"}
    r = api.post("/open311/v2/requests.json", data={**form, "api_key": key})
    assert r.status_code == 201, r.text
    r = api.post("/open311/v2/requests.json", data={**form, "api_key": key[:-2] + "xx"})
    assert r.status_code == 403
