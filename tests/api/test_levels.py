"""Levels and channels through the HTTP API (issue 24): a hotline report with only an address
geocoded at intake or sent to the 待定位 queue and located there; self-handling (自处置);
escalation by hand and by the system's sweep (上报, 自动升级); a whistle's deadlines (吹哨报到);
co-handling with two assisting departments and the consultation thread (协同处置, 会商); the
callback (回访) of a hotline case."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gridcore.errors import ImportRejected
from gridcore.settings import Settings
from layers.cases.escalation import escalate_overdue
from layers.exchange.imports import import_addresses
from layers.exchange.imports.departments import import_departments
from layers.grids.dispatch_rules import export_csv, import_csv
from layers.grids.resolver import Resolver
from tests.support.cases import (
    GRID_001,
    GRID_002,
    INSIDE_001,
    INSIDE_002,
    OUTSIDE,
    plant,
    png_bytes,
    report,
    settings,
)
from tests.support.database import serving

DESK = {"X-Role": "dispatcher", "X-Actor": "desk-1"}
DEPT = {"X-Role": "department_handler", "X-Actor": "dept-1"}
W1 = {"X-Role": "grid_worker", "X-Actor": "W1"}
W2 = {"X-Role": "grid_worker", "X-Actor": "W2"}

# 多福巷 runs through both planted grids; 东四北大街 crosses it in grid 002
ADDRESSES = """street,housenumber,name,lon,lat,source_id
多福巷,12号,,116.4020,39.9020,t-1
多福巷,30号,,116.4080,39.9020,t-2
,,多福巷社区服务站,116.4030,39.9040,t-3
"""
LEVELS = """code,name,level,area_code,level_team
D_GRID,多福巷社区综合队,community,110101001001,true
D_STREET,东华门街道综合执法队,street,110101001,true
D_DIST,东城区城管执法局,district,110101,true
"""


@pytest.fixture
def city(db: Engine, tmp_path: Path) -> Engine:
    plant(db)
    (tmp_path / "addresses.csv").write_text(ADDRESSES, encoding="utf-8")
    import_addresses(db, tmp_path / "addresses.csv", source="planted")
    (tmp_path / "levels.csv").write_text(LEVELS, encoding="utf-8")
    import_departments(db, tmp_path / "levels.csv")
    # 暴露垃圾 anywhere in the district: the community's own team (小事不出社区)
    rules = tmp_path / "rules.csv"
    rules.write_text("category_key,area_level,area_code,department_code,note,team_level\n"
                     "E0102,district,110101,,小事不出社区,community\n", encoding="utf-8")
    kept = export_csv(db).splitlines()[1:]
    rules.write_text(rules.read_text(encoding="utf-8")
                     + "".join(line + ",\n" for line in kept), encoding="utf-8")
    import_csv(db, rules)
    return db


@pytest.fixture
def api(city: Engine, tmp_path: Path) -> Iterator[TestClient]:
    with serving(city, Settings(cases=settings(tmp_path))) as client:
        yield client


def new_case(api: TestClient, **kw: Any) -> dict[str, Any]:
    r = api.post("/cases", json=report(**kw))
    assert r.status_code == 201, r.text
    return r.json()


def step(api: TestClient, cid: int, action: str, headers: dict[str, str], **body: Any
         ) -> dict[str, Any]:
    r = api.post(f"/cases/{cid}/{action}", headers=headers, json=body or None)
    assert r.status_code == 200, r.text
    return r.json()


def refused(api: TestClient, cid: int, action: str, headers: dict[str, str], status: int,
            **body: Any) -> dict[str, Any]:
    r = api.post(f"/cases/{cid}/{action}", headers=headers, json=body or None)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


def dispatched(api: TestClient, department: str = "D_GRID", **kw: Any) -> int:
    cid = new_case(api, **kw)["id"]
    step(api, cid, "verify", W1)
    step(api, cid, "register", DESK)
    # another department than the proposal's is an override: it needs its reason (改派)
    extra = {} if department == "D_GRID" else {"reason": "市级部门负责"}
    step(api, cid, "dispatch", DESK, department=department, **extra)
    return cid


def hotline(address: str) -> dict[str, Any]:
    return {"lon": None, "lat": None, "address": address, "source": "hotline",
            "reporter": "12345 来电"}


def test_department_levels_are_imported_and_checked(city: Engine, tmp_path: Path) -> None:
    with city.connect() as conn:
        rows = {r.code: (r.level, r.area_code, r.level_team) for r in conn.execute(text(
            "SELECT code, level, area_code, level_team FROM department WHERE level IS NOT NULL"))}
    assert rows == {"D_GRID": ("community", "110101001001", True),
                    "D_STREET": ("street", "110101001", True),
                    "D_DIST": ("district", "110101", True)}
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,level,area_code,level_team\nX1,甲,street,1101,true\n"
                   "X2,乙,province,11,false\nX3,丙,,,true\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_departments(city, bad)
    fields = {(p["row"], p["field"]) for p in info.value.details["problems"]}
    assert fields == {(1, "area_code"), (2, "level"), (3, "level_team")}


def test_a_rule_proposes_the_community_team(api: TestClient, city: Engine) -> None:
    case = new_case(api, category="E0102")
    assert case["proposal"]["department"] == "D_GRID"
    assert "the community team D_GRID" in case["proposal"]["rule"]
    exported = export_csv(city).splitlines()
    assert exported[0].endswith(",team_level")
    assert "E0102,district,110101,,小事不出社区,community" in exported


def test_hotline_address_geocoded_at_intake(api: TestClient) -> None:
    case = new_case(api, **hotline("多福巷12号"))
    assert case["location_source"] == "geocoded" and case["grid_code"] == GRID_001
    assert case["address"] == "多福巷12号"
    where = case["location"]
    assert abs(where["lon"] - INSIDE_001[0]) < 1e-6 and abs(where["lat"] - INSIDE_001[1]) < 1e-6
    # said, not silent: what the geocoder found and how sure it was
    geocoding = api.get(f"/cases/{case['id']}", headers=DESK).json()["geocoding"]
    assert geocoding["chosen"]["label"] == "多福巷 12号"
    assert geocoding["chosen"]["confidence"] >= geocoding["min_confidence"]
    # with the district before it: the administrative prefix is set apart
    prefixed = new_case(api, **hotline("东城区多福巷12号"))
    assert prefixed["location_source"] == "geocoded" and prefixed["grid_code"] == GRID_001
    # a named place whose name ends in 社区 (no district), a number said without 号
    place = new_case(api, **hotline("多福巷社区服务站"))
    assert place["location_source"] == "geocoded" and place["grid_code"] == GRID_001
    bare = new_case(api, **hotline("多福巷30"))
    assert bare["location_source"] == "geocoded" and bare["grid_code"] == GRID_002
    # a typo in the street: found, but below the threshold — waits for a person, who starts
    # from the candidate the geocoder offers
    typo = new_case(api, **hotline("多福港30号"))
    assert typo["location_source"] == "unlocated" and typo["grid_code"] is None
    best = typo["geocoding"]["candidates"][0]
    assert best["label"] == "多福巷 30号" and best["confidence"] < 0.75
    assert best["grid_code"] == GRID_002
    # a report with neither a point nor an address is a 422 naming the place
    r = api.post("/cases", json=report(lon=None, lat=None))
    assert r.status_code == 422 and r.json()["field"] == "location", r.text
    r = api.post("/cases", json=report(lon=None))
    assert r.status_code == 422 and r.json()["field"] == "lon", r.text


def test_open311_address_string_is_geocoded(api: TestClient) -> None:
    form = {"api_key": "k-test", "service_code": "E0103", "address_string": "多福巷30号",
            "description": "路面有油污", "email": "a@example.org"}
    r = api.post("/open311/v2/requests.json", data=form)
    assert r.status_code == 201, r.text
    cid = int(r.json()[0]["service_request_id"])
    case = api.get(f"/cases/{cid}", headers=DESK).json()
    assert case["location_source"] == "geocoded" and case["grid_code"] == GRID_002
    assert case["address"] == "多福巷30号" and case["source"] == "open311"
    r = api.post("/open311/v2/requests.json", data={**form, "address_string": ""})
    assert r.status_code in (400, 422), r.text


def test_unsure_address_waits_in_the_queue_and_is_located(api: TestClient, db: Engine) -> None:
    case = new_case(api, **hotline("长安街某个不知道的小区门口"))
    cid = case["id"]
    assert case["location_source"] == "unlocated" and case["grid_code"] is None
    assert case["location"]["lon"] is None and case["state"] == "reported"
    queue = api.get("/cases/unlocated", headers=DESK)
    assert queue.status_code == 200, queue.text
    waiting = queue.json()["cases"]
    assert [c["id"] for c in waiting] == [cid]
    assert waiting[0]["address"] == "长安街某个不知道的小区门口"
    assert waiting[0]["geocoding"]["reason"] == "no candidate"
    assert waiting[0]["context"]["category_names"]["zh"]  # the list names the class
    # the count is of every case waiting, not of the page
    other = new_case(api, **hotline("另一个不知道的门口"))
    page = api.get("/cases/unlocated?limit=1", headers=DESK).json()
    assert [c["id"] for c in page["cases"]] == [cid] and page["count"] == 2
    step(api, other["id"], "locate", DESK, lon=INSIDE_002[0], lat=INSIDE_002[1])
    assert api.get("/cases/unlocated", headers=W1).status_code == 403
    # nothing goes on before it has a place
    body = refused(api, cid, "register", DESK, 409)
    assert "locate" in body["allowed"] and "register" not in body["allowed"]
    refused(api, cid, "locate", W1, 403, lon=INSIDE_002[0], lat=INSIDE_002[1])
    body = refused(api, cid, "locate", DESK, 422, lon=OUTSIDE[0], lat=OUTSIDE[1])
    assert body["field"] == "lon"
    with db.connect() as conn:
        assert conn.execute(text("SELECT geom IS NULL FROM case_record WHERE id = :c"),
                            {"c": cid}).scalar() is True
    located = step(api, cid, "locate", DESK, lon=INSIDE_002[0], lat=INSIDE_002[1])
    assert located["location_source"] == "map" and located["grid_code"] == GRID_002
    assert located["department"] is None and located["proposal"]["department"] == "D_STREET"
    assert api.get("/cases/unlocated", headers=DESK).json()["count"] == 0
    refused(api, cid, "locate", DESK, 409, lon=INSIDE_001[0], lat=INSIDE_001[1])
    step(api, cid, "verify", DESK)
    step(api, cid, "register", DESK)


def test_self_handling_closes_in_one_step(api: TestClient) -> None:
    cid = new_case(api)["id"]  # reported by W1
    photos = [{"role": "before", "sha256": "a" * 64}, {"role": "after", "sha256": "b" * 64}]
    body = refused(api, cid, "self_handle", W1, 422, reason="当场清扫",
                   attachments=photos[:1])
    assert body["field"] == "photos" and body["missing"] == ["after"]
    refused(api, cid, "self_handle", W2, 409, reason="不是我报的", attachments=photos)
    done = step(api, cid, "self_handle", W1, reason="当场清扫干净", attachments=photos)
    assert done["state"] == "closed" and done["self_handled"] is True
    assert done["check_result"] == "pass" and done["closed_at"]
    assert [h["action"] for h in done["history"]] == ["report", "self_handle"]


def test_self_handling_with_uploaded_photos(api: TestClient) -> None:
    """From the phone: multipart photos, the first taken before the work, the last after."""
    cid = api.post("/cases", json=report(), headers=W1).json()["id"]
    one = [("photos", ("before.png", png_bytes(8), "image/png"))]
    r = api.post(f"/cases/{cid}/self_handle", headers=W1, data={"reason": "当场清理"},
                 files=one)
    assert r.status_code == 422 and r.json()["missing"] == ["after"], r.text
    two = [*one, ("photos", ("after.png", png_bytes(9), "image/png"))]
    r = api.post(f"/cases/{cid}/self_handle", headers=W1, data={"reason": "当场清理"},
                 files=two)
    assert r.status_code == 200, r.text
    case = r.json()
    assert case["state"] == "closed" and case["self_handled"] is True
    assert [p["step"] for p in case["photos"]] == ["self_handle", "self_handle"]
    roles = [a.get("role") for a in case["history"][-1]["attachments"]]
    assert roles == ["before", "after"]


def test_escalation_by_hand_and_at_the_top(api: TestClient) -> None:
    cid = dispatched(api)
    step(api, cid, "accept", DEPT)
    up = step(api, cid, "escalate", DEPT, reason="社区无执法权，需街道综合执法")
    assert up["state"] == "dispatched" and up["department"] == "D_STREET"
    last = up["history"][-1]
    assert last["action"] == "escalate" and last["reason"] == "社区无执法权，需街道综合执法"
    assert last["details"]["from"] == "D_GRID" and last["details"]["to_level"] == "street"
    assert up["stage"] == "handle"
    up = step(api, cid, "escalate", DESK, reason="跨街道")
    assert up["department"] == "D_DIST"
    body = refused(api, cid, "escalate", DESK, 409, reason="再往上")
    assert "top" in body["detail"]
    refused(api, cid, "escalate", DEPT, 422)  # a reason is required
    city = dispatched(api, department="D_CITY")
    body = refused(api, city, "escalate", DEPT, 409, reason="x")
    assert "no level" in body["detail"]


def test_overdue_cases_escalate_by_themselves(api: TestClient, city: Engine,
                                              tmp_path: Path) -> None:
    building = dispatched(api, category="E0101")   # 私搭乱建 escalates (escalation.csv)
    dirty = dispatched(api, category="E0103")      # 道路不洁 does not
    later = datetime.now(UTC) + timedelta(days=60)
    resolver = Resolver(city)
    try:
        sweep = escalate_overdue(city, settings(tmp_path), resolver, now=later)
        again = escalate_overdue(city, settings(tmp_path), resolver, now=later)
    finally:
        resolver.close()
    assert sweep.escalated == [building] and not sweep.left
    assert again.escalated == []  # its clock restarted at the street level
    case = api.get(f"/cases/{building}", headers=DESK).json()
    assert case["department"] == "D_STREET"
    last = case["history"][-1]
    assert (last["action"], last["actor"], last["role"]) == ("escalate", "system", "system")
    assert last["details"]["auto"] is True and "overdue" in last["reason"]
    assert api.get(f"/cases/{dirty}", headers=DESK).json()["department"] == "D_GRID"


def test_whistle_calls_departments_with_a_deadline(api: TestClient) -> None:
    cid = dispatched(api)
    body = refused(api, cid, "whistle", DESK, 422, departments=["D_WATER", "NOPE"])
    assert body["field"] == "departments"
    case = step(api, cid, "whistle", DESK, departments=["D_WATER", "D_ROADS"], new_limit="30m")
    assert [w["department"] for w in case["whistles"]] == ["D_WATER", "D_ROADS"]
    assert all(w["limit"] == "30m" and w["reported_at"] is None for w in case["whistles"])
    refused(api, cid, "whistle", DESK, 409, departments=["D_WATER"])  # already waiting
    case = step(api, cid, "report_in", DEPT, department="D_WATER")
    water = case["whistles"][0]
    assert water["reported_at"] and water["on_time"] is True
    refused(api, cid, "report_in", DEPT, 409, department="D_WATER")  # reported already
    refused(api, cid, "whistle", DEPT, 403, departments=["D_LAMP"])  # the street blows it


def test_co_handling_with_two_assisting_departments(api: TestClient) -> None:
    cid = dispatched(api)
    step(api, cid, "accept", DEPT)
    body = refused(api, cid, "assist", DESK, 422, departments=["D_GRID"])  # the lead itself
    assert body["field"] == "departments"
    case = step(api, cid, "assist", DESK, departments=["D_WATER", "D_LAMP"])
    tasks = case["assisting"]
    assert [(t["department"], t["state"]) for t in tasks] == [("D_WATER", "open"),
                                                              ("D_LAMP", "open")]
    assert tasks[0]["limit"] == "5wh" and tasks[0]["deadline_at"]  # the class's handling limit
    step(api, cid, "handle", DEPT)
    body = refused(api, cid, "feed_back", DEPT, 409)
    assert body["open_tasks"] == ["D_WATER", "D_LAMP"]
    assert set(body["allowed"]) == {"assist_done", "release"}
    case = step(api, cid, "assist_done", DEPT, department="D_WATER", reason="管道已疏通",
                attachments=[{"role": "after", "sha256": "c" * 64}])
    assert case["assisting"][0]["state"] == "done"
    assert case["assisting"][0]["feedback"] == "管道已疏通"
    refused(api, cid, "feed_back", DEPT, 409)
    refused(api, cid, "release", DEPT, 403, department="D_LAMP", reason="x")
    case = step(api, cid, "release", DESK, department="D_LAMP", reason="路灯无需处理")
    assert case["assisting"][1]["state"] == "released"
    case = step(api, cid, "feed_back", DEPT)
    assert case["state"] == "fed_back"
    # the consultation thread (会商), open to every party
    r = api.post(f"/cases/{cid}/messages", headers=DEPT,
                 json={"body": "请水务集团确认管道走向", "attachments": [{"name": "图纸.pdf"}]})
    assert r.status_code == 201, r.text
    api.post(f"/cases/{cid}/messages", headers=DESK, json={"body": "已协调"})
    thread = api.get(f"/cases/{cid}/messages", headers=W1).json()
    assert [m["body"] for m in thread["messages"]] == ["请水务集团确认管道走向", "已协调"]
    assert thread["messages"][0]["attachments"] == [{"name": "图纸.pdf"}]
    assert api.post(f"/cases/{cid}/messages", headers=DESK, json={"body": ""}
                    ).status_code == 422
    assert api.get("/cases/99999/messages", headers=DESK).status_code == 404


def test_callback_for_hotline_cases(api: TestClient) -> None:
    cid = new_case(api, source="hotline")["id"]
    for action, who, extra in [("verify", W1, {}), ("register", DESK, {}),
                               ("dispatch", DESK, {"department": "D_GRID"}),
                               ("accept", DEPT, {}), ("handle", DEPT, {}),
                               ("feed_back", DEPT, {}), ("check", W1, {"check_result": "pass"}),
                               ("close", DESK, {})]:
        step(api, cid, action, who, **extra)
    body = refused(api, cid, "callback", DESK, 422, reached=True, resolved=True)
    assert body["field"] == "satisfaction"
    case = step(api, cid, "callback", DESK, reached=True, resolved=True,
                satisfaction="satisfied")
    assert case["callback"] == {"reached": True, "resolved": True, "satisfaction": "satisfied"}
    assert case["state"] == "closed"
    worker = new_case(api)["id"]
    step(api, worker, "self_handle", W1, reason="当场处理",
         attachments=[{"role": "before"}, {"role": "after"}])
    refused(api, worker, "callback", DESK, 409, reached=False)


def test_evaluation_counts_each_party_and_the_callers(api: TestClient, city: Engine,
                                                      tmp_path: Path) -> None:
    """自处置 for the worker and the community, 响应率 / 解决率 / 满意率 from the callbacks,
    each whistled department's report and each assisting department's own task."""
    from gridcore.evaluation import EvaluationModel, Period
    from layers.evaluation.evaluate import evaluate

    with city.begin() as conn:
        conn.execute(text("INSERT INTO grid_worker (code, name) VALUES ('W1', '张网格')"))
    filed = api.post("/cases", json=report(), headers=W1)  # filed by the worker, signed in
    assert filed.status_code == 201, filed.text
    solved = filed.json()["id"]
    step(api, solved, "self_handle", W1, reason="当场处理",
         attachments=[{"role": "before"}, {"role": "after"}])
    calls = []
    for reached in (True, False):
        cid = dispatched(api, source="hotline")
        calls.append(cid)
        if reached:
            step(api, cid, "whistle", DESK, departments=["D_WATER", "D_ROADS"],
                 new_limit="1wd")
            step(api, cid, "report_in", DEPT, department="D_WATER")
            step(api, cid, "accept", DEPT)
            step(api, cid, "assist", DESK, departments=["D_WATER", "D_LAMP"])
            step(api, cid, "assist_done", DEPT, department="D_WATER", reason="已配合")
            step(api, cid, "release", DESK, department="D_LAMP", reason="无需路灯")
        else:
            step(api, cid, "accept", DEPT)
        for action, who, extra in [("handle", DEPT, {}), ("feed_back", DEPT, {}),
                                   ("check", W1, {"check_result": "pass"}),
                                   ("close", DESK, {})]:
            step(api, cid, action, who, **extra)
    step(api, calls[0], "callback", DESK, reached=True, resolved=True,
         satisfaction="basically_satisfied")
    step(api, calls[1], "callback", DESK, reached=False)

    cal = settings(tmp_path).working_calendar
    month = Period.parse(datetime.now(cal.tz).strftime("%Y-%m"))
    result = evaluate(city, EvaluationModel.default(), month, cal,
                      [("department", None), ("area", "community"), ("worker", None)])

    def values(key: str, code: str) -> dict[str, float | None]:
        ev = result[key]
        i = ev.keys.index(code)
        return {m.key: (None if ev.after.values[m.key][i] != ev.after.values[m.key][i]
                        else float(ev.after.values[m.key][i])) for m in ev.kind.measures}

    grid_team = values("department", "D_GRID")
    assert (grid_team["response_rate"], grid_team["resolution_rate"],
            grid_team["satisfaction_rate"]) == (0.5, 1.0, 1.0)
    assert values("department", "D_WATER")["whistle_on_time_rate"] == 1.0
    assert values("department", "D_ROADS")["whistle_on_time_rate"] == 0.0  # never reported
    assert values("department", "D_WATER")["assist_on_time_rate"] == 1.0
    assert values("department", "D_LAMP")["assist_on_time_rate"] is None  # released: no task
    community = values("area:community", "110101001001")
    assert community["self_handled"] == 1.0
    assert community["self_handling_rate"] == pytest.approx(1 / 3)  # 1 of 1 + 2 registered
    assert community["response_rate"] == 0.5 and community["satisfaction_rate"] == 1.0
    assert values("worker", "W1")["self_handled"] == 1.0


def test_parties_beside_the_lead_take_their_own_steps_only(city: Engine,
                                                           tmp_path: Path) -> None:
    """Signed in (production mode): an assisting department's handler reads the case, answers
    its own task and joins the thread, and takes none of the lead's steps."""
    from api.app import create_app
    from api.security.identity import issue_token
    from layers.security import users

    tree = Settings(cases=settings(tmp_path))
    tree.security = tree.security.model_copy(update={"env": "production"})
    who = {}
    for name, role, dept in (("lead", "department_handler", "D_GRID"),
                             ("water", "department_handler", "D_WATER"),
                             ("roads", "department_handler", "D_ROADS"),
                             ("desk", "dispatcher", None), ("w1", "grid_worker", None)):
        users.add_user(city, name, "correct horse battery", role, department=dept,
                       areas=(GRID_001,) if role == "grid_worker" else ())
        who[name] = {"Authorization": f"Bearer {issue_token(tree.security, name, role)[0]}"}
    with TestClient(create_app(tree, engine=city)) as api:
        cid = api.post("/cases", json=report(), headers=who["w1"]).json()["id"]
        for action, by, extra in [("verify", "w1", {}), ("register", "desk", {}),
                                  ("dispatch", "desk", {"department": "D_GRID"}),
                                  ("accept", "lead", {}),
                                  ("assist", "desk", {"departments": ["D_WATER"]})]:
            r = api.post(f"/cases/{cid}/{action}", headers=who[by], json=extra or None)
            assert r.status_code == 200, (action, r.text)
        assert api.get(f"/cases/{cid}", headers=who["water"]).status_code == 200
        assert api.get(f"/cases/{cid}", headers=who["roads"]).status_code == 404
        assert api.post(f"/cases/{cid}/handle", headers=who["water"]).status_code == 403
        r = api.post(f"/cases/{cid}/assist_done", headers=who["water"],
                     json={"department": "D_GRID", "reason": "不是我的"})
        assert r.status_code == 403, r.text
        r = api.post(f"/cases/{cid}/assist_done", headers=who["water"],
                     json={"reason": "阀门已关"})  # its own department by default
        assert r.status_code == 200, r.text
        assert r.json()["assisting"][0]["done_by"] == "water"
        r = api.post(f"/cases/{cid}/messages", headers=who["water"], json={"body": "已关阀"})
        assert r.status_code == 201 and r.json()["department"] == "D_WATER"
        assert api.get(f"/cases/{cid}/messages", headers=who["roads"]).status_code == 403
