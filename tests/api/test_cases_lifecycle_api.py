"""The closed loop through the HTTP API: every step recorded, illegal steps 409 with the
allowed steps, concurrent steps serialised, merge, parking, and the case lists."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gridcore.intake import Report
from gridcore.settings import Settings
from tests.support.cases import INSIDE_001, INSIDE_002, key, plant, report, settings
from tests.support.database import serving

DESK = {"X-Role": "dispatcher", "X-Actor": "desk-1"}
DEPT = {"X-Role": "department_handler", "X-Actor": "dept-1"}
WORKER = {"X-Role": "grid_worker", "X-Actor": "W1"}
BOSS = {"X-Role": "manager", "X-Actor": "boss"}


@pytest.fixture
def api(db, tmp_path):  # type: ignore[no-untyped-def]
    plant(db)
    with serving(db, Settings(cases=settings(tmp_path))) as client:
        yield client


def new_case(api: TestClient, point=INSIDE_001, **kw) -> int:  # type: ignore[no-untyped-def]
    r = api.post("/cases", json=report(point, **kw))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def step(api: TestClient, cid: int, action: str, headers: dict, **body):  # type: ignore[no-untyped-def]
    r = api.post(f"/cases/{cid}/{action}", headers=headers, json=body or None)
    assert r.status_code == 200, r.text
    return r.json()


def test_full_loop_with_rework_and_history(api: TestClient) -> None:
    cid = new_case(api)
    step(api, cid, "verify", WORKER)
    step(api, cid, "register", DESK)
    c = step(api, cid, "dispatch", DESK, department="D_GRID")
    assert c["stage"] == "handle" and c["stage_limit"] == "5wh" and c["department"] == "D_GRID"
    step(api, cid, "accept", DEPT)
    step(api, cid, "handle", DEPT)
    c = step(api, cid, "feed_back", DEPT)
    assert c["stage"] == "check" and c["stage_limit"] == "1h"
    r = api.post(f"/cases/{cid}/check", headers=WORKER, json={"check_result": "fail"})
    assert r.status_code == 422 and r.json()["field"] == "reason"  # a failed check needs a note
    step(api, cid, "check", WORKER, check_result="fail", reason="路面仍有油污")
    r = api.post(f"/cases/{cid}/close", headers=DESK)
    assert r.status_code == 409 and r.json()["allowed"] == ["rework", "merge", "supervise"]
    step(api, cid, "rework", DESK, reason="路面仍有油污")
    step(api, cid, "handle", DEPT)
    step(api, cid, "feed_back", DEPT)
    step(api, cid, "check", WORKER, check_result="pass")
    c = step(api, cid, "close", DESK)
    assert c["state"] == "closed" and c["closed_at"]
    full = api.get(f"/cases/{cid}").json()
    actions = [h["action"] for h in full["history"]]
    assert actions == ["report", "verify", "register", "dispatch", "accept", "handle",
                       "feed_back", "check", "rework", "handle", "feed_back", "check", "close"]
    assert full["history"][8]["reason"] == "路面仍有油污"
    assert full["history"][8]["actor"] == "desk-1" and full["history"][8]["role"] == "dispatcher"
    assert full["version"] == 13


def test_illegal_step_is_409_listing_allowed_and_writes_nothing(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    r = api.post(f"/cases/{cid}/transitions", headers=DESK,
                 json={"action": "close", "check_result": "pass"})
    assert r.status_code == 409
    body = r.json()
    assert body["allowed"] == ["verify", "void", "merge"] and body["state"] == "reported"
    assert r.headers["content-type"].startswith("application/problem+json")
    r = api.post(f"/cases/{cid}/void", headers=DEPT, json={"reason": "x"})
    assert r.status_code == 403 and "dispatcher" in r.json()["roles"]
    r = api.post(f"/cases/{cid}/verify")
    assert r.status_code == 422 and r.json()["field"] == "X-Role"
    assert api.post("/cases/99999/verify", headers=DESK).status_code == 404
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_history")).scalar() == 1


def test_concurrent_steps_are_serialised(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    barrier = threading.Barrier(6)
    codes: list[int] = []

    def verify() -> None:
        barrier.wait()
        codes.append(api.post(f"/cases/{cid}/verify", headers=DESK).status_code)

    threads = [threading.Thread(target=verify) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409, 409, 409, 409, 409]
    with db.connect() as conn:
        assert conn.execute(text("SELECT version FROM case_record")).scalar() == 2
    r = api.post(f"/cases/{cid}/transitions", headers=DESK,
                 json={"action": "register", "expected_version": 1})
    assert r.status_code == 409 and r.json()["version"] == 2


def test_merge_links_and_reporter_sees_outcome(api: TestClient) -> None:
    primary = new_case(api)
    dup = new_case(api)
    step(api, dup, "merge", DESK, primary_case_id=primary)
    r = api.post(f"/cases/{dup}/merge", headers=DESK, json={"primary_case_id": dup})
    assert r.status_code == 409
    for action, who, extra in [("verify", WORKER, {}), ("register", DESK, {}),
                               ("dispatch", DESK, {"department": "D_GRID"}),
                               ("accept", DEPT, {}), ("handle", DEPT, {}),
                               ("feed_back", DEPT, {}), ("check", WORKER,
                                                          {"check_result": "pass"}),
                               ("close", DESK, {})]:
        step(api, primary, action, who, **extra)
    seen = api.get(f"/cases/{dup}").json()
    assert seen["state"] == "merged" and seen["outcome"]["state"] == "closed"
    assert seen["outcome"]["primary_case_id"] == primary


def test_park_extend_supervise_reopen(api: TestClient) -> None:
    cid = new_case(api)
    step(api, cid, "verify", WORKER)
    step(api, cid, "register", DESK)
    step(api, cid, "dispatch", DESK, department="D_GRID")
    c = step(api, cid, "park", BOSS, reason="等待产权单位确认")
    assert c["parked"] and c["clock"]["parked"]
    r = api.post(f"/cases/{cid}/park", headers=BOSS, json={"reason": "again"})
    assert r.status_code == 409 and "unpark" in r.json()["allowed"]
    c = step(api, cid, "unpark", BOSS)
    assert not c["parked"]
    c = step(api, cid, "extend", BOSS, new_limit="3wd", reason="需要调机械")
    assert c["stage_limit"] == "3wd"
    assert c["history"][-1]["details"]["old_limit"] == "5wh"
    c = step(api, cid, "supervise", BOSS, reason="督办")
    assert c["supervised"] is True


def test_lists_filters_pages_exports_overdue(api: TestClient, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    old = datetime.now(UTC) - timedelta(days=3)
    late = api.app.state.intake.file_report(Report(key(), "E0102", *INSIDE_002,
                                                   source="hotline"), now=old).case
    ids = [new_case(api, category="E0103") for _ in range(5)]
    page = api.get("/cases", params={"limit": 2}).json()
    assert [c["id"] for c in page["cases"]] == ids[::-1][:2]
    seen = [c["id"] for c in page["cases"]]
    nxt = page["next"]
    while nxt:
        page = api.get(nxt).json()
        seen += [c["id"] for c in page["cases"]]
        nxt = page["next"]
    assert seen == [*ids[::-1], late["id"]]
    assert [c["id"] for c in api.get("/cases", params={"source": "hotline"}).json()[
        "cases"]] == [late["id"]]
    assert {c["id"] for c in api.get("/cases", params={"grid": "110101001001001"}).json()[
        "cases"]} == set(ids)
    assert [c["id"] for c in api.get("/cases", params={"colour": "red"}).json()["cases"]] \
        == [late["id"]]
    assert len(api.get("/cases", params={"colour": "green"}).json()["cases"]) == 5
    assert api.get("/cases", params={"category": "E0102,E9999"}).json()["count"] == 1
    assert api.get("/cases", params={"bbox": "116.406,39.9,116.41,39.905"}).json()[
        "count"] == 1
    assert api.get("/cases", params={"bbox": "1,2"}).status_code == 422
    assert api.get("/cases", params={"since": (old + timedelta(hours=1)).isoformat()}).json()[
        "count"] == 5
    over = api.get("/cases/overdue").json()
    assert [c["id"] for c in over["cases"]] == [late["id"]]
    assert over["cases"][0]["clock"]["colour"] == "red"
    rows = list(csv.DictReader(io.StringIO(api.get("/cases", params={"format": "csv"}).text)))
    assert len(rows) == 6 and rows[-1]["colour"] == "red"
    gj = api.get("/cases", params={"format": "geojson", "limit": 4}).json()
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == 4
    assert "format=geojson" in gj["links"][0]["href"]
    assert gj["features"][0]["geometry"]["coordinates"] == list(INSIDE_001)


def test_list_is_ordered_by_report_time(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    """GET /cases: newest report first (the partition key), not newest id — a case reported
    long ago but filed (imported) last sorts by when it was reported; keyset pages continue
    exactly, through the years' partitions; a bare id from an old link still continues."""
    ids = [new_case(api, category="E0103") for _ in range(3)]
    intake = api.app.state.intake
    years_ago = datetime.now(UTC) - timedelta(days=800)  # another year's partition
    old = intake.file_report(Report(key(), "E0102", *INSIDE_002, source="hotline"),
                             now=years_ago).case
    week_ago = intake.file_report(Report(key(), "E0102", *INSIDE_002, source="hotline"),
                                  now=datetime.now(UTC) - timedelta(days=7)).case
    expected = [*ids[::-1], week_ago["id"], old["id"]]
    assert old["id"] > ids[-1]  # filed last, reported first
    seen: list[int] = []
    page = api.get("/cases", params={"limit": 2}).json()
    while True:
        seen += [c["id"] for c in page["cases"]]
        if not page["next"]:
            break
        assert "." in page["next"].split("after=")[1]  # a report-time position
        page = api.get(page["next"]).json()
    assert seen == expected
    # a link of before (a bare case id) continues after that case's report time
    after_id = api.get("/cases", params={"after": str(ids[1])}).json()
    assert [c["id"] for c in after_id["cases"]] == expected[2:]
    for bad in ("nonsense", "12.x", "1.2.3"):
        assert api.get("/cases", params={"after": bad}).status_code == 422
