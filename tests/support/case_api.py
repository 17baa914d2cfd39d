"""The case API in process for route tests: the planted case city served by a TestClient, and
reports and steps that must succeed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gridcore.settings import Settings
from tests.support.cases import INSIDE_001, plant, report, settings
from tests.support.database import serving

DESK = {"X-Role": "dispatcher", "X-Actor": "desk-1"}
DEPT = {"X-Role": "department_handler", "X-Actor": "dept-1"}


@pytest.fixture
def api(db: Any, tmp_path: Any) -> Iterator[TestClient]:
    plant(db)
    with serving(db, Settings(cases=settings(tmp_path))) as client:
        yield client


def new(api: TestClient, point: tuple[float, float] = INSIDE_001, **kw: Any) -> int:
    r = api.post("/cases", json=report(point, **kw))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def step(api: TestClient, cid: int, action: str, headers: dict[str, str], **body: Any
         ) -> dict[str, Any]:
    r = api.post(f"/cases/{cid}/{action}", headers=headers, json=body or None)
    assert r.status_code == 200, r.text
    return dict(r.json())
