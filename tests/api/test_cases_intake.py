"""Case intake through the API on a planted city: resolution, dispatch proposal (precedence
and city-part owner override), duplicates, idempotency (also racing resends), bad input."""

from __future__ import annotations

import threading

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import text

from gridcore.settings import Settings
from spatial.crs import wgs84_to_gcj02
from tests.support.cases import (
    FAKE_JPEG,
    INSIDE_001,
    INSIDE_002,
    LAMP,
    OUTSIDE,
    plant,
    png_bytes,
    report,
    settings,
)
from tests.support.database import row_counts, serving


@pytest.fixture
def api(db, tmp_path):  # type: ignore[no-untyped-def]
    plant(db)
    with serving(db, Settings(cases=settings(tmp_path, max_photo_bytes=20_000))) as client:
        yield client


def test_intake_resolves_and_proposes_most_specific_rule(api: TestClient) -> None:
    r = api.post("/cases", json=report(INSIDE_001))
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["state"] == "reported" and case["grid_code"] == "110101001001001"
    assert case["community_code"] == "110101001001" and case["district_code"] == "110101"
    assert case["proposal"]["department"] == "D_GRID"  # grid rule beats street and city
    assert "grid" in case["proposal"]["rule"]
    assert case["clock"]["colour"] == "green" and case["stage_limit"] == "30m"
    assert case["public_no"].startswith("C")
    r2 = api.post("/cases", json=report(INSIDE_002))
    assert r2.json()["proposal"]["department"] == "D_STREET"  # street rule beats city


def test_city_part_owner_overrides_rules(api: TestClient) -> None:
    near_lamp = (LAMP[0] + 0.00005, LAMP[1])
    case = api.post("/cases", json=report(near_lamp, "P0120")).json()
    assert case["part_code"] == "1101010120000001"
    assert case["proposal"]["department"] == "D_LAMP"
    far = api.post("/cases", json=report(INSIDE_002, "P0120")).json()
    assert far["part_code"] is None and far["proposal"]["department"] == "D_ROADS"


def test_a_case_names_its_city_part(api: TestClient) -> None:
    """The desk showed the part as a bare 16-digit code: the case's context names it — the
    class's names from the taxonomy, the inventory's own name, its state."""
    near_lamp = (LAMP[0] + 0.00005, LAMP[1])
    cid = api.post("/cases", json=report(near_lamp, "P0120")).json()["id"]
    part = api.get(f"/cases/{cid}").json()["context"]["part"]
    assert part == {"code": "1101010120000001", "name": "路灯 1", "state": "intact",
                    "class_names": {"zh": "路灯", "en": "street lamp"}}
    plain = api.post("/cases", json=report(INSIDE_002, "P0120")).json()["id"]
    assert api.get(f"/cases/{plain}").json()["context"]["part"] is None


def test_send_back_reproposes_without_the_refusing_department(api: TestClient) -> None:
    cid = api.post("/cases", json=report(INSIDE_001)).json()["id"]
    desk = {"X-Role": "dispatcher", "X-Actor": "d1"}
    dept = {"X-Role": "department_handler", "X-Actor": "h1"}
    api.post(f"/cases/{cid}/verify", headers=desk)
    api.post(f"/cases/{cid}/register", headers=desk)
    r = api.post(f"/cases/{cid}/dispatch", headers=desk, json={"department": "D_GRID"})
    assert r.status_code == 200, r.text
    assert r.json()["history"][-1]["details"]["override"] is False
    r = api.post(f"/cases/{cid}/send_back", headers=dept, json={"reason": "不归我们管"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "sent_back" and body["proposal"]["department"] == "D_STREET"
    assert body["proposal"]["refused_departments"] == ["D_GRID"]
    r = api.post(f"/cases/{cid}/dispatch", headers=desk, json={"department": "D_CITY"})
    assert r.status_code == 422 and r.json()["field"] == "reason"  # an override needs a reason
    r = api.post(f"/cases/{cid}/dispatch", headers=desk,
                 json={"department": "D_CITY", "reason": "城管委统一处理"})
    assert r.json()["history"][-1]["reason"] == "城管委统一处理"
    assert r.json()["history"][-1]["details"] == {
        "proposed": "D_STREET", "rule": body["proposal"]["rule"], "chosen": "D_CITY",
        "override": True, "department": "D_CITY"}


def test_duplicates_found_for_planted_cases(api: TestClient) -> None:
    first = api.post("/cases", json=report(INSIDE_001, description="路面有大片油污")).json()
    api.post("/cases", json=report(INSIDE_002, description="路面有大片油污"))  # 500 m away
    other_class = api.post("/cases", json=report(INSIDE_001, "P0101")).json()
    near = (INSIDE_001[0] + 0.0003, INSIDE_001[1])  # ~26 m
    new = api.post("/cases", json=report(near, description="路面油污很大一片")).json()
    ids = [d["case_id"] for d in new["duplicates"]]
    assert ids == [first["id"]]
    assert other_class["id"] not in ids
    sig = new["duplicates"][0]["signals"]
    assert sig["class"] == 1.0 and sig["text"] > 0.3 and 20 < new["duplicates"][0][
        "distance_m"] < 35
    lamp1 = api.post("/cases", json=report(LAMP, "P0120", description="灯不亮")).json()
    lamp2 = api.post("/cases", json=report((LAMP[0], LAMP[1] + 0.0001), "P0120",
                                           description="杆子歪了")).json()
    assert lamp2["duplicates"][0]["case_id"] == lamp1["id"]
    assert lamp2["duplicates"][0]["signals"]["part"] == 1.0


def test_duplicates_found_across_datums(api: TestClient) -> None:
    """A phone app on AMap reports in GCJ-02, about 500 m off in WGS 84 terms; the nearby
    search must use the converted point, not the raw coordinates."""
    first = api.post("/cases", json=report(INSIDE_001, description="路面有大片油污")).json()
    gx, gy = wgs84_to_gcj02(np.array([INSIDE_001[0] + 0.0002]), np.array([INSIDE_001[1]]))
    again = api.post("/cases", json={**report((float(gx[0]), float(gy[0])),
                                              description="路面油污"), "crs": "GCJ-02"})
    assert again.status_code == 201, again.text
    assert [d["case_id"] for d in again.json()["duplicates"]] == [first["id"]]
    assert again.json()["duplicates"][0]["distance_m"] < 25


@pytest.mark.parametrize("body", [
    report(INSIDE_001),
    report((LAMP[0] + 0.00005, LAMP[1]), "P0120", reporter="", description=""),  # part linked
    {**report(tuple(float(v[0]) for v in wgs84_to_gcj02(np.array([INSIDE_001[0]]),
                                                        np.array([INSIDE_001[1]])))),
     "crs": "GCJ-02", "source": "hotline"},  # input datum ≠ stored point
], ids=["event", "city-part", "gcj02"])
def test_new_case_answer_is_the_stored_case(api: TestClient, body) -> None:  # type: ignore[no-untyped-def]
    """The 201 answer is built from what intake wrote plus what the database made; it must be
    the case as stored, field for field, as a resend and ``GET /cases/{id}`` read it back."""
    new = api.post("/cases", json=body)
    assert new.status_code == 201, new.text
    resent = api.post("/cases", json=body)
    stored = api.get(f"/cases/{new.json()['id']}").json()
    assert resent.status_code == 200
    got = new.json()
    for answer in (resent.json(), {k: v for k, v in stored.items()
                                   if k not in ("history", "photos", "assisting", "whistles",
                                                "context")}):
        # the clock is worked out at the moment of each answer: only its share may move on
        assert got["clock"]["elapsed_share"] <= answer["clock"]["elapsed_share"]
        assert _share_aside(got) == _share_aside(answer)


def _share_aside(case: dict) -> dict:  # type: ignore[type-arg]
    return {**case, "clock": {**case["clock"], "elapsed_share": None}}


def test_idempotent_resend_and_conflicting_reuse(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    body = report()
    a = api.post("/cases", json=body)
    b = api.post("/cases", json=body)
    assert (a.status_code, b.status_code) == (201, 200)
    assert a.json()["id"] == b.json()["id"]
    before = row_counts(db)
    c = api.post("/cases", json={**body, "description": "别的内容"})
    assert c.status_code == 409
    assert c.headers["content-type"].startswith("application/problem+json")
    assert c.json()["field"] == "idempotency_key" and c.json()["case_id"] == a.json()["id"]
    assert row_counts(db) == before


def test_idempotency_key_header_and_its_documentation(api: TestClient) -> None:
    body = report()
    key = body.pop("idempotency_key")
    a = api.post("/cases", json=body, headers={"Idempotency-Key": key})
    b = api.post("/cases", json={**body, "idempotency_key": key})
    assert (a.status_code, b.status_code) == (201, 200)
    assert a.json()["id"] == b.json()["id"]
    documented = api.get("/openapi.json").json()["paths"]["/cases"]["post"]["parameters"]
    assert {p["name"] for p in documented if p["in"] == "header"} >= {
        "Idempotency-Key", "Authorization", "X-Api-Key", "X-Actor", "X-Role"}


def test_two_racing_resends_write_one_row(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    body = report()
    results: list[tuple[int, int]] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        barrier.wait()
        r = api.post("/cases", json=body)
        results.append((r.status_code, r.json()["id"]))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({cid for _, cid in results}) == 1
    assert sorted(s for s, _ in results).count(201) == 1
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_record")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM case_history")).scalar() == 1


def test_multipart_with_photo(api: TestClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    body = {k: str(v) for k, v in report().items()}
    r = api.post("/cases", data=body, files=[("photos", ("a.png", png_bytes(), "image/png"))])
    assert r.status_code == 201, r.text
    case = api.get(f"/cases/{r.json()['id']}").json()
    assert case["photos"][0]["content_type"] == "image/png"
    assert (tmp_path / "media" / case["photos"][0]["path"]).read_bytes() == png_bytes()
    assert case["history"][0]["attachments"][0]["sha256"] == case["photos"][0]["sha256"]


@pytest.mark.parametrize(("mutate", "status", "field"), [
    (lambda b: b.update(category="E9998"), 422, "category"),
    (lambda b: b.update(category="0103"), 422, "category"),
    (lambda b: b.update(lon=OUTSIDE[0], lat=OUTSIDE[1]), 422, "location"),
    (lambda b: b.pop("lat"), 422, "lat"),
    (lambda b: b.pop("idempotency_key"), 422, "idempotency_key"),
    (lambda b: b.update(source="pigeon"), 422, "source"),
])
def test_bad_input_is_a_precise_problem_and_writes_nothing(api: TestClient, db, mutate,  # type: ignore[no-untyped-def]
                                                            status, field) -> None:
    before = row_counts(db)
    body = report()
    mutate(body)
    r = api.post("/cases", json=body)
    assert r.status_code == status, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["field"] == field and problem["detail"]
    assert row_counts(db) == before


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("lon", "NaN", "lon"),  # not strict JSON but readable: the answer names the field
    ("lat", "Infinity", "lat"),
    ("lat", "39.9,,", "body"),  # not JSON at all
])
def test_unreadable_or_non_finite_body_is_a_precise_problem(api: TestClient, db, field,  # type: ignore[no-untyped-def]
                                                            value, expected) -> None:
    before = row_counts(db)
    raw = orjson.dumps(report(**{field: "__value__"})).decode().replace('"__value__"', value)
    r = api.post("/cases", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == expected
    assert row_counts(db) == before


@pytest.mark.parametrize(("name", "blob", "status"), [
    ("fake.jpg", FAKE_JPEG, 422),
    ("text.png", b"hello, I am text", 422),
    ("big.png", None, 413),
])
def test_bad_photos_refused_and_nothing_written(api: TestClient, db, tmp_path, name, blob,  # type: ignore[no-untyped-def]
                                                status) -> None:
    if blob is None:
        import io
        import os

        from PIL import Image

        buf = io.BytesIO()
        Image.frombytes("RGB", (200, 200), os.urandom(120_000)).save(buf, format="PNG")
        blob = buf.getvalue()
        assert len(blob) > 20_000
    before = row_counts(db)
    body = {k: str(v) for k, v in report().items()}
    r = api.post("/cases", data=body, files=[("photos", (name, blob, "image/jpeg"))])
    assert r.status_code == status, r.text
    assert r.json()["field"] == "photos" and name in r.json()["detail"]
    assert row_counts(db) == before
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*.*"))


def test_a_bad_photo_is_refused_in_the_callers_language(api: TestClient) -> None:
    """The department workbench shows a refused step's detail as it comes: a text file chosen
    as a photo was refused in English on a Chinese page."""
    body = {k: str(v) for k, v in report().items()}
    text_file = [("photos", ("notes.txt", b"hello, I am text", "text/plain"))]
    zh = api.post("/cases", data=body, files=text_file, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 422 and zh.json()["field"] == "photos"
    assert zh.json()["detail"] == ("照片 notes.txt 不是 JPEG、PNG 或 WebP 图片"
                                   "（按文件内容判断，不看文件名）")
    en = api.post("/cases", data=body, files=text_file, headers={"Accept-Language": "en"})
    assert en.json()["detail"].startswith("photo notes.txt is not a JPEG, PNG or WebP image")
    # without a language asked for, the precise message stands (API clients, logs)
    plain = api.post("/cases", data=body, files=text_file)
    assert plain.json()["detail"].startswith("photo 'notes.txt' is not a JPEG")



def test_too_many_photos_are_refused_on_the_photos_field(api: TestClient) -> None:
    """Seven photos where six are allowed: a 422 on ``photos`` in the caller's language (the
    form parser's English "Too many files…" 400 had no field, so the phone could not say what
    to fix and the workbench showed it as it came)."""
    body = {k: str(v) for k, v in report().items()}
    seven = [("photos", (f"p{i}.png", png_bytes(), "image/png")) for i in range(7)]
    zh = api.post("/cases", data=body, files=seven, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 422, zh.text
    assert (zh.json()["field"], zh.json()["detail"]) == ("photos", "一次最多上传 6 张照片")
    # the detail says which language it is in: the phone shows it under its own reason only
    # in the app's language
    assert zh.json()["detail_lang"] == "zh-CN"
    case = api.post("/cases", json=report()).json()
    step = api.post(f"/cases/{case['id']}/verify", data={}, files=seven,
                    headers={"Accept-Language": "en", "X-Role": "dispatcher"})
    assert step.status_code == 422 and step.json()["field"] == "photos"
    assert step.json()["detail"] == "at most 6 photos may be sent at once"
    assert step.json()["detail_lang"] == "en"
    # a refusal the catalogue has no words for keeps its precise English, marked so
    outside = api.post("/cases", json=report(OUTSIDE), headers={"Accept-Language": "zh-CN"})
    assert outside.status_code == 422 and outside.json()["detail_lang"] == "en", outside.text


def test_a_malformed_field_is_refused_in_the_callers_language(api: TestClient) -> None:
    """pydantic's refusals ("Input should be a valid number…") were English whatever the
    caller asked; now a caller who names a language reads the field as the forms name it and
    the reason in that language (each error keeps pydantic's reason beside it), and a caller who
    names none keeps pydantic's precise English."""
    bad = {**report(), "lon": "abc"}
    zh = api.post("/cases", json=bad, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 422 and zh.json()["field"] == "lon"
    assert (zh.json()["detail"], zh.json()["detail_lang"]) == ("经度：必须是数字", "zh-CN")
    assert zh.json()["errors"][0]["reason"].startswith("Input should be a valid number")
    en = api.post("/cases", json=bad, headers={"Accept-Language": "en"})
    assert (en.json()["detail"], en.json()["detail_lang"]) == ("longitude: must be a number",
                                                                "en")
    plain = api.post("/cases", json=bad)
    assert plain.json()["detail"].startswith("lon: Input should be a valid number")
    assert plain.json()["detail_lang"] == "en"
    # a query parameter, through FastAPI's own validation, and a limit from its context
    listed = api.get("/cases", params={"limit": "abc", "lang": "zh-CN"},
                     headers={"X-Role": "dispatcher"})
    assert listed.status_code == 422
    assert (listed.json()["detail"], listed.json()["detail_lang"]) == ("条数上限：必须是整数",
                                                                       "zh-CN")
    short = api.get("/cases", params={"limit": "0", "lang": "zh-CN"},
                    headers={"X-Role": "dispatcher"})
    assert short.status_code == 422 and short.json()["detail"] == "条数上限：不能小于 1", \
        short.text


def test_nearby_cases_found_up_to_the_radius_in_every_direction(api: TestClient) -> None:
    """An open case is a candidate for reports up to its class's radius (200 m for E0103) away
    in any direction, and not beyond: the index box of the search must not cut the circle."""
    centre = (116.405, 39.9025)
    first = api.post("/cases", json=report(centre)).json()
    geod = Geod(ellps="WGS84")
    for bearing in range(0, 360, 45):
        for metres, found in ((195.0, True), (215.0, False)):
            lon, lat, _ = geod.fwd(*centre, bearing, metres)
            new = api.post("/cases", json=report((lon, lat))).json()
            ids = [d["case_id"] for d in new["duplicates"]]
            assert (first["id"] in ids) is found, (bearing, metres, new["duplicates"])
