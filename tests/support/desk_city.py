"""People and cases for the desk's browser tests, on the planted case city
(``tests.support.cases``: 东城区 › 东华门街道 › 多福巷社区, two grids, a street lamp, the
departments and dispatch rules): a dispatcher, a grid worker per grid, the handlers of the grid
cleaning team (网格保洁队, a leader and two members) and of the street's department."""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
from sqlalchemy import Engine

from layers.security.teams import add_team, join_team
from layers.security.users import add_user
from tests.support.cases import GRID_001, GRID_002, INSIDE_001, plant, png_bytes

PASSWORD = "correct horse battery staple 42"
PEOPLE = {  # username: (role, department, areas)
    "disp-wang": ("dispatcher", None, ()),
    "w-li": ("grid_worker", None, (GRID_001,)),
    "w-zhao": ("grid_worker", None, (GRID_002,)),
    "lead-chen": ("department_handler", "D_GRID", ()),
    "h-liu": ("department_handler", "D_GRID", ()),
    "h-sun": ("department_handler", "D_GRID", ()),
    "h-street": ("department_handler", "D_STREET", ()),
    "boss-zhou": ("manager", None, ()),
    "ops-admin": ("admin", None, ()),
}


def plant_desk(engine: Engine) -> None:
    plant(engine)
    for name, (role, department, areas) in PEOPLE.items():
        add_user(engine, name, PASSWORD, role, department, areas)
    add_team(engine, "T-GRID-1", "D_GRID", "保洁一班")
    join_team(engine, "lead-chen", "T-GRID-1", leader=True)
    join_team(engine, "h-liu", "T-GRID-1")
    join_team(engine, "h-sun", "T-GRID-1")


def token(base: str, username: str) -> str:
    """A bearer token for ``username``, signed with the test run's secret (the live server
    shares the environment): no sign-in round trip, which the sign-in rate limit would meter."""
    from api.security.identity import issue_token
    from gridcore.settings import SecuritySettings

    secret = os.environ["GRIDCORE_SECRET_KEY"]
    return issue_token(SecuritySettings(env="development", secret_key=secret), username,
                       PEOPLE[username][0], minutes=60)[0]


def report(base: str, user: str, point: tuple[float, float], category: str = "E0103",
           description: str = "路面有大片油污", photos: int = 0, **fields: Any) -> dict[str, Any]:
    """File a report as ``user`` (multipart with ``photos`` PNGs, as the phone app does)."""
    form = {"idempotency_key": uuid.uuid4().hex, "category": category, "lon": str(point[0]),
            "lat": str(point[1]), "description": description, "source": "grid_worker",
            "reporter": user, **{k: str(v) for k, v in fields.items()}}
    files = [("photos", (f"p{i}.png", png_bytes(64 + 8 * i), "image/png"))
             for i in range(photos)]
    auth = {"Authorization": f"Bearer {token(base, user)}"}
    if files:
        r = httpx.post(f"{base}/cases", data=form, files=files, headers=auth, timeout=30)
    else:
        r = httpx.post(f"{base}/cases", json=form, headers=auth, timeout=30)
    assert r.status_code == 201, r.text
    return dict(r.json())


def step(base: str, user: str, case_id: int, action: str, **body: Any) -> dict[str, Any]:
    r = httpx.post(f"{base}/cases/{case_id}/{action}", json=body or None, timeout=30,
                   headers={"Authorization": f"Bearer {token(base, user)}"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def dispatched(base: str, description: str = "路面有大片油污", **fields: Any) -> dict[str, Any]:
    """A report by w-li in grid 001 that the dispatcher verified, registered and dispatched
    (to the department the rules propose): a case on a department's worklist."""
    case = report(base, "w-li", INSIDE_001, description=description, **fields)
    for action in ("verify", "register", "dispatch"):
        step(base, "disp-wang", case["id"], action)
    return case


def hotline_without_place(base: str, description: str = "来电：门口垃圾堆积，气味很大"
                          ) -> dict[str, Any]:
    """A 12345 hotline report whose address no gazetteer knows: filed 待定位 (unlocated)."""
    r = httpx.post(f"{base}/cases", timeout=30, json={
        "idempotency_key": uuid.uuid4().hex, "category": "E0103", "source": "hotline",
        "address": "某个不知道的小区门口", "description": description,
        "reporter": "12345 来电"},
        headers={"Authorization": f"Bearer {token(base, 'disp-wang')}"})
    assert r.status_code == 201, r.text
    assert r.json()["location_source"] == "unlocated"
    return dict(r.json())
