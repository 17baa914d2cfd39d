"""The server side of the grid worker's phone: photos on lifecycle steps and served back,
worklists by role, my reports and my area, who files a report, closest categories, the
multipart OpenAPI description."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gridcore.settings import Settings
from layers.security.users import add_user
from tests.support.cases import GRID_001, GRID_002, INSIDE_001, INSIDE_002, plant, report, settings
from tests.support.database import row_counts, serving
from tests.support.security import bearer

DESK = {"X-Role": "dispatcher", "X-Actor": "desk-1"}
DEPT = {"X-Role": "department_handler", "X-Actor": "dept-1"}


def jpeg(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (30, 120, 200)
         ) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


@pytest.fixture
def api(db: Engine, tmp_path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    plant(db)
    with serving(db, Settings(cases=settings(tmp_path))) as client:
        yield client



@pytest.fixture
def people(api: TestClient, db: Engine) -> dict[str, dict[str, str]]:
    """wang works grid 001, zhao grid 002; li handles for D_GRID; chen dispatches; boss."""
    add_user(db, "wang", "a-long-password-1", "grid_worker", areas=(GRID_001,))
    add_user(db, "zhao", "a-long-password-2", "grid_worker", areas=(GRID_002,))
    add_user(db, "li", "a-long-password-3", "department_handler", department="D_GRID")
    add_user(db, "chen", "a-long-password-4", "dispatcher")
    add_user(db, "boss", "a-long-password-5", "manager")
    return {name: bearer(api, name, role) for name, role in (
        ("wang", "grid_worker"), ("zhao", "grid_worker"), ("li", "department_handler"),
        ("chen", "dispatcher"), ("boss", "manager"))}


def file(api: TestClient, headers: dict[str, str], point=INSIDE_001, **kw) -> dict:  # type: ignore[no-untyped-def]
    body = report(point)
    del body["source"], body["reporter"]  # decided by who files, unless given
    body.update(kw)
    r = api.post("/cases", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def step(api: TestClient, cid: int, action: str, headers: dict[str, str], **body) -> dict:  # type: ignore[no-untyped-def]
    r = api.post(f"/cases/{cid}/{action}", headers=headers, json=body or None)
    assert r.status_code == 200, r.text
    return r.json()


def to_fed_back(api: TestClient, cid: int) -> None:
    for action, who, body in (("verify", DESK, {}), ("register", DESK, {}),
                              ("dispatch", DESK, {"department": "D_GRID"}),
                              ("accept", DEPT, {}), ("handle", DEPT, {}),
                              ("feed_back", DEPT, {})):
        step(api, cid, action, who, **body)


# -- who files ------------------------------------------------------------------------------
def test_signed_in_reporter_and_default_source(api: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    case = file(api, people["wang"], reporter="someone else")
    assert case["reporter"] == "wang" and case["filed_by"] == "wang"
    assert case["source"] == "grid_worker"
    desk = file(api, people["chen"], source="hotline")
    assert desk["source"] == "hotline" and desk["reporter"] == "chen"
    assert file(api, people["chen"])["source"] == "other"
    anon = api.post("/cases", json=report(), headers=DESK).json()  # the stand-in: as given
    assert anon["reporter"] == "W1" and anon["filed_by"] is None


def test_reporter_reads_own_case_outside_their_area(api: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    case = file(api, people["wang"], point=INSIDE_002)  # grid 002 is zhao's, not wang's
    assert case["grid_code"] == GRID_002
    assert api.get(f"/cases/{case['id']}", headers=people["wang"]).status_code == 200
    listed = api.get("/cases", headers=people["wang"]).json()["cases"]
    assert [c["id"] for c in listed] == [case["id"]]
    other = file(api, people["zhao"], point=INSIDE_002)
    assert api.get(f"/cases/{other['id']}", headers=people["wang"]).status_code == 404
    # reading is not acting: wang may not verify a case outside their grids
    assert api.post(f"/cases/{case['id']}/verify", headers=people["wang"]).status_code == 403
    mine = api.get("/me/reports", headers=people["wang"]).json()
    assert [i["id"] for i in mine["items"]] == [case["id"]]
    assert mine["items"][0]["last_step"]["action"] == "report"


def test_device_fix_is_kept(api: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    case = file(api, people["wang"], fix_lon=INSIDE_001[0] + 0.0001, fix_lat=INSIDE_001[1],
                fix_accuracy_m=12.5, fix_at="2026-12-06T09:30:00+08:00")
    assert case["fix"] == {"lon": INSIDE_001[0] + 0.0001, "lat": INSIDE_001[1],
                           "accuracy_m": 12.5, "at": "2026-12-06T09:30:00+08:00"}
    r = api.post("/cases", json={**report(), "fix_lon": 1.0}, headers=DESK)
    assert r.status_code == 422 and r.json()["field"] == "fix_lon"


def test_unknown_category_lists_the_closest(api: TestClient) -> None:
    before = api.get("/cases", headers=DESK).json()["count"]
    r = api.post("/cases", json=report(category="P0121"), headers=DESK)
    assert r.status_code == 422
    body = r.json()
    assert body["field"] == "category" and body["closest"][0]["key"] == "P0120"
    assert "P0120 路灯" in body["detail"]
    r = api.post("/cases", json=report(category="lamp"), headers=DESK)
    assert [c["key"] for c in r.json()["closest"]] == ["P0120"]
    assert api.get("/cases", headers=DESK).json()["count"] == before


# -- photos on steps -------------------------------------------------------------------------
def test_photos_on_verify_and_check_served_back(api: TestClient, people, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cid = api.post("/cases", json=report(), headers=DESK,
                   ).json()["id"]
    r = api.post(f"/cases/{cid}/verify", headers=people["wang"], data={"reason": "现场属实"},
                 files=[("photos", ("v.jpg", jpeg(), "image/jpeg"))])
    assert r.status_code == 200, r.text
    case = r.json()
    assert [(p["n"], p["step"]) for p in case["photos"]] == [(1, "verify")]
    assert case["history"][-1]["attachments"][0]["sha256"] == case["photos"][0]["sha256"]
    for action, who, body in (("register", DESK, {}), ("dispatch", DESK, {"department":
                              "D_GRID"}), ("accept", DEPT, {}), ("handle", DEPT, {}),
                              ("feed_back", DEPT, {})):
        step(api, cid, action, who, **body)
    # A failed check without a note is refused, and writes nothing.
    before = row_counts(api.app.state.engine)
    r = api.post(f"/cases/{cid}/check", headers=people["wang"],
                 data={"check_result": "fail"},
                 files=[("photos", ("c.jpg", jpeg(colour=(200, 40, 40)), "image/jpeg"))])
    assert r.status_code == 422 and r.json()["field"] == "reason"
    assert row_counts(api.app.state.engine) == before
    r = api.post(f"/cases/{cid}/check", headers=people["wang"],
                 data={"check_result": "fail", "reason": "井盖仍缺失"},
                 files=[("photos", ("c.jpg", jpeg(colour=(200, 40, 40)), "image/jpeg")),
                        ("photos", ("d.jpg", jpeg(colour=(40, 200, 40)), "image/jpeg"))])
    assert r.status_code == 200, r.text
    case = r.json()
    assert case["check_result"] == "fail" and case["history"][-1]["reason"] == "井盖仍缺失"
    assert [(p["n"], p["step"]) for p in case["photos"]] == [(1, "verify"), (2, "check"),
                                                              (3, "check")]
    full = api.get(f"/cases/{cid}/photos/2", headers=people["wang"])
    assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg"
    assert full.content == jpeg(colour=(200, 40, 40))
    etag = full.headers["etag"]
    assert etag.strip('"') == case["photos"][1]["sha256"]
    again = api.get(f"/cases/{cid}/photos/2", headers={**people["wang"], "If-None-Match": etag})
    assert again.status_code == 304 and not again.content
    thumb = api.get(f"/cases/{cid}/photos/2?size=thumb", headers=people["wang"])
    assert thumb.status_code == 200 and thumb.headers["etag"] != etag
    from PIL import Image

    assert Image.open(io.BytesIO(thumb.content)).format == "JPEG"
    assert api.get(f"/cases/{cid}/photos/4", headers=people["wang"]).status_code == 404
    assert api.get(f"/cases/{cid}/photos/0", headers=people["wang"]).status_code == 404
    # scoped like the case: zhao works another grid
    assert api.get(f"/cases/{cid}/photos/1", headers=people["zhao"]).status_code == 404


def test_step_photo_refusals(api: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    cid = api.post("/cases", json=report(), headers=DESK).json()["id"]
    step(api, cid, "verify", DESK)
    engine = api.app.state.engine
    before = row_counts(engine)
    r = api.post(f"/cases/{cid}/register", headers=DESK,
                 files=[("photos", ("a.jpg", jpeg(), "image/jpeg"))])
    assert r.status_code == 422 and r.json()["field"] == "photos"
    assert "check" in r.json()["detail"]
    from PIL import Image

    bomb = io.BytesIO()
    Image.new("1", (8000, 8000)).save(bomb, format="PNG")  # 64 MP in a few kilobytes
    assert len(bomb.getvalue()) < 100_000
    step(api, cid, "register", DESK)
    step(api, cid, "dispatch", DESK, department="D_GRID")
    step(api, cid, "accept", DEPT)
    before = row_counts(engine)
    r = api.post(f"/cases/{cid}/handle", headers=DEPT,
                 files=[("photos", ("bomb.png", bomb.getvalue(), "image/png"))])
    assert r.status_code == 413 and "MP" in r.json()["detail"]
    r = api.post(f"/cases/{cid}/handle", headers=DEPT,
                 files=[("photos", ("x.jpg", b"GIF89a not a photo", "image/jpeg"))])
    assert r.status_code == 422 and "JPEG, PNG or WebP" in r.json()["detail"]
    assert row_counts(engine) == before
    r = api.post(f"/cases/{cid}/handle", headers=DEPT, data={"reason": "已更换"},
                 files=[("photos", ("h.jpg", jpeg(), "image/jpeg"))])
    assert r.status_code == 200 and r.json()["photos"][-1]["step"] == "handle"


def test_worker_voids_at_verification_only(api: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    cid = api.post("/cases", json=report(), headers=DESK).json()["id"]
    r = api.post(f"/cases/{cid}/void", headers=people["wang"], json={})
    assert r.status_code == 422 and r.json()["field"] == "reason"
    other = api.post("/cases", json=report(), headers=DESK).json()["id"]
    step(api, other, "verify", DESK)
    r = api.post(f"/cases/{other}/void", headers=people["wang"], json={"reason": "无此问题"})
    assert r.status_code == 403 and "reported" in r.json()["detail"]
    case = step(api, cid, "void", people["wang"], reason="现场无此问题")
    assert case["state"] == "voided" and case["history"][-1]["actor"] == "wang"


def test_a_resent_step_is_answered_not_taken_twice(api: TestClient, people) -> None:  # type: ignore[no-untyped-def]
    cid = api.post("/cases", json=report(), headers=DESK).json()["id"]
    to_fed_back(api, cid)
    key = {"Idempotency-Key": "check-1"}
    form = {"check_result": "fail", "reason": "仍有油污"}
    photo = [("photos", ("c.jpg", jpeg(), "image/jpeg"))]
    first = api.post(f"/cases/{cid}/check", headers={**people["wang"], **key}, data=form,
                     files=photo)
    assert first.status_code == 200 and "replayed" not in first.json()
    again = api.post(f"/cases/{cid}/check", headers={**people["wang"], **key}, data=form,
                     files=photo)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["version"] == first.json()["version"]
    assert [h["action"] for h in again.json()["history"]].count("check") == 1
    assert len(again.json()["photos"]) == 1
    r = api.post(f"/cases/{cid}/close", headers={**DESK, **key})
    assert r.status_code == 409 and r.json()["field"] == "idempotency_key"


# -- worklists -------------------------------------------------------------------------------
def _deadline(db: Engine, cid: int, hours: float) -> None:
    """Move a case's deadline (and, for an overdue one, the start of its clock, so that the
    clock computed on the calendar agrees)."""
    with db.begin() as conn:
        conn.execute(text("UPDATE case_record SET deadline_at = now() + make_interval("
                          "secs => :h * 3600), warn_at = now() + make_interval("
                          "secs => :h * 3600 - 60), stage_started_at = CASE WHEN :h < 0 "
                          "THEN now() - interval '60 days' ELSE stage_started_at END "
                          "WHERE id = :i"), {"h": hours, "i": cid})


def test_grid_worker_tasks_in_their_grids_by_deadline(api: TestClient, db, people) -> None:  # type: ignore[no-untyped-def]
    own = file(api, people["wang"])["id"]  # wang's own report: verified at the desk
    late = api.post("/cases", json=report(), headers=DESK).json()["id"]
    soon = api.post("/cases", json=report(), headers=DESK).json()["id"]
    elsewhere = api.post("/cases", json=report(INSIDE_002), headers=DESK).json()["id"]
    check = api.post("/cases", json=report(), headers=DESK).json()["id"]
    to_fed_back(api, check)
    _deadline(db, late, 5)
    _deadline(db, soon, 1)
    body = api.get("/me/tasks", headers=people["wang"]).json()
    assert body["role"] == "grid_worker" and body["tasks"] == ["verify", "check"]
    ids = [i["id"] for i in body["items"]]
    assert own not in ids and elsewhere not in ids
    assert ids.index(soon) < ids.index(late)
    assert body["counts"] == {"verify": 2, "check": 1}
    item = next(i for i in body["items"] if i["id"] == check)
    assert item["task"] == "check" and item["task_zh"] == "核查"
    assert item["category_name"] == {"zh-CN": "道路不洁", "en": "dirty road"}
    assert item["colour"] in ("green", "yellow", "red") and item["deadline"]
    assert item["grid_code"] == GRID_001 and item["grid_name"] == "west"
    assert item["links"]["actions"]["check"] == f"/cases/{check}/check"
    assert item["actions"] == ["check"]
    only = api.get("/me/tasks?task=check", headers=people["wang"]).json()
    assert [i["id"] for i in only["items"]] == [check]
    assert only["counts"] == {"verify": 2, "check": 1}  # every task's count, for the tabs
    r = api.get("/me/tasks?task=dispatch", headers=people["wang"])
    assert r.status_code == 422 and r.json()["tasks"] == ["check", "verify"]
    # keyset pages: every task once, in deadline order
    seen, url = [], "/me/tasks?limit=1"
    while url:
        page = api.get(url, headers=people["wang"]).json()
        seen += [i["id"] for i in page["items"]]
        url = page["next"]
    assert seen == ids
    zhao = api.get("/me/tasks", headers=people["zhao"]).json()
    assert [i["id"] for i in zhao["items"]] == [elsewhere]


def test_handler_dispatcher_manager_tasks(api: TestClient, db, people) -> None:  # type: ignore[no-untyped-def]
    dispatched = api.post("/cases", json=report(), headers=DESK).json()["id"]
    for action, body in (("verify", {}), ("register", {}), ("dispatch",
                                                            {"department": "D_GRID"})):
        step(api, dispatched, action, DESK, **body)
    refused = api.post("/cases", json=report(), headers=DESK).json()["id"]
    for action, body in (("verify", {}), ("register", {}), ("dispatch",
                                                            {"department": "D_GRID"})):
        step(api, refused, action, DESK, **body)
    step(api, refused, "send_back", people["li"], reason="不属于本单位")
    handler = api.get("/me/tasks", headers=people["li"]).json()
    tasks = {i["id"]: i["task"] for i in handler["items"]}
    assert tasks == {dispatched: "accept", refused: "sent_back"}
    assert next(i for i in handler["items"] if i["id"] == refused)["actions"] == []
    new = api.post("/cases", json=report(), headers=DESK).json()["id"]
    desk = api.get("/me/tasks", headers=people["chen"]).json()
    desk_tasks = {i["id"]: i["task"] for i in desk["items"]}
    assert desk_tasks == {new: "verify", refused: "dispatch"}
    assert api.get("/me/tasks", headers=people["boss"]).json()["items"] == []
    _deadline(db, dispatched, -1)
    overdue = api.get("/me/tasks", headers=people["boss"]).json()
    assert [(i["id"], i["task"], i["colour"]) for i in overdue["items"]] == [
        (dispatched, "overdue", "red")]
    assert "supervise" in overdue["items"][0]["actions"]


# -- my area ---------------------------------------------------------------------------------
def test_my_area_geojson_with_etag(api: TestClient, db, people) -> None:  # type: ignore[no-untyped-def]
    r = api.get("/me/area", headers=people["wang"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    area = r.json()
    assert [f["properties"]["code"] for f in area["features"]] == [GRID_001]
    assert area["features"][0]["geometry"]["type"] == "MultiPolygon"
    assert area["features"][0]["properties"]["community_name"] == "多福巷社区"
    assert [p["properties"]["category"] for p in area["parts"]["features"]] == ["P0120"]
    assert area["bbox"] == pytest.approx([116.40, 39.90, 116.405, 39.905])
    etag = r.headers["etag"]
    assert etag.strip('"') == area["version"]
    assert api.get("/me/area", headers={**people["wang"], "If-None-Match": etag}
                   ).status_code == 304
    with db.begin() as conn:  # the grid layer changes: a new version
        conn.execute(text("UPDATE unit_grid SET name = 'west side' WHERE code = :c"),
                     {"c": GRID_001})
    r = api.get("/me/area", headers={**people["wang"], "If-None-Match": etag})
    assert r.status_code == 200 and r.json()["features"][0]["properties"]["name"] == "west side"


def test_categories_for_the_picker(api: TestClient) -> None:
    r = api.get("/categories")
    assert r.status_code == 200
    lamp = next(c for c in r.json()["categories"] if c["key"] == "P0120")
    assert lamp["name_zh"] == "路灯" and lamp["kind"] == "part" and lamp["limits"]["handle"]
    assert api.get("/categories", headers={"If-None-Match": r.headers["etag"]}
                   ).status_code == 304


def test_openapi_describes_multipart(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    intake = spec["paths"]["/cases"]["post"]["requestBody"]["content"]
    assert intake["multipart/form-data"]["schema"]["properties"]["photos"]["items"][
        "format"] == "binary"
    assert "application/json" in intake
    step_body = spec["paths"]["/cases/{case_id}/{action}"]["post"]["requestBody"]["content"]
    assert "photos" in step_body["multipart/form-data"]["schema"]["properties"]
    assert "/me/tasks" in spec["paths"] and "/auth/refresh" in spec["paths"]


def test_old_deadline_helper_is_timezone_aware() -> None:
    # the worklist cursor round-trips a deadline exactly
    from layers.cases.worklist import decode_cursor, encode_cursor

    at = datetime(2026, 12, 6, 9, 30, tzinfo=UTC) + timedelta(microseconds=7)
    assert decode_cursor(encode_cursor(at, 42)) == (at, 42)
    assert decode_cursor(encode_cursor(None, 7)) == (None, 7)
