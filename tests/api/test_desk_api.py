"""The dispatcher's desk over HTTP: the queue (counts, filters, deadline order, pages), search
(codes, class and area names in both languages, description words of two and more Chinese
characters, ranked, scoped), the overdue list with the filters and formats of GET /cases,
merging with its trace on the primary and the outcome for the merged reporter, team
assignment, and problem details in the caller's language."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text

from api.security.identity import issue_token
from layers.security.teams import add_team, join_team
from layers.security.users import add_user
from tests.support.case_api import DEPT, DESK, api, new, step
from tests.support.cases import INSIDE_001, INSIDE_002, LAMP, report

__all__ = ["api"]  # the fixture, from tests.support.case_api


def age(db, cid: int, hours: float) -> None:  # type: ignore[no-untyped-def]
    """Move a reported case's clock (30 calendar minutes to dispatch) into the past: its
    deadline ``hours`` ago, the stored marks and the live clock agreeing."""
    with db.begin() as conn:
        conn.execute(text(
            "UPDATE case_record SET stage_started_at = now() - make_interval(secs => :h * 3600 "
            "+ 1800), deadline_at = now() - make_interval(secs => :h * 3600), "
            "warn_at = now() - make_interval(secs => :h * 3600 + 360) WHERE id = :i"),
            {"h": hours, "i": cid})


def test_queue_counts_buckets_and_orders_by_deadline(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    a, b, c = new(api), new(api, INSIDE_002), new(api, category="P0120", point=LAMP)
    step(api, b, "verify", DESK)
    for action in ("verify", "register"):
        step(api, c, action, DESK)
    d = new(api, INSIDE_002)
    age(db, d, 2)  # overdue, still waiting for verification
    q = api.get("/map/queue", headers=DESK).json()
    assert q["counts"] == {"verify": 2, "register": 1, "dispatch": 1, "handling": 0,
                           "check": 0, "close": 0, "overdue": 1}
    assert [r["id"] for r in q["cases"]] == [d, a]  # soonest deadline first
    assert q["cases"][0]["clock"]["colour"] == "red"
    assert q["cases"][0]["category_names"] == {"zh": "道路不洁", "en": "dirty road"}
    assert [r["id"] for r in api.get("/map/queue?bucket=overdue").json()["cases"]] == [d]
    lamp = api.get("/map/queue?bucket=dispatch&category=P0120").json()
    assert [r["id"] for r in lamp["cases"]] == [c] and lamp["cases"][0]["proposed"] == "D_LAMP"
    assert api.get("/map/queue?category=P0120").json()["counts"]["verify"] == 0
    assert api.get("/map/queue?area=110101001001002").json()["counts"]["verify"] == 1
    first = api.get("/map/queue?limit=1").json()
    second = api.get(f"/map/queue?limit=1&after={first['next']}").json()
    assert [r["id"] for r in first["cases"] + second["cases"]] == [d, a]
    assert second["next"] is None
    bad = api.get("/map/queue?area=1101")
    assert bad.status_code == 422 and bad.json()["field"] == "area"


def test_search_codes_names_and_words_ranked(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    lamp = new(api, LAMP, category="P0120", description="路灯不亮了，晚上很黑")
    oil = new(api, description="路面有大片油污，车辆打滑")
    no = api.get(f"/cases/{oil}").json()["public_no"]

    def hits(q: str) -> list[tuple[str, str]]:
        r = api.get("/map/search", params={"q": q}, headers=DESK)
        assert r.status_code == 200, r.text
        return [(h["kind"], str(h["id"])) for h in r.json()["hits"]]

    assert hits(no)[0] == ("case", str(oil))
    assert hits(str(oil))[0] == ("case", str(oil))
    assert hits("110101001001002")[0] == ("grid", "110101001001002")
    assert hits("1101010120000001")[0] == ("part", "1101010120000001")
    assert hits("路灯")[0] == ("category", "P0120")  # a class name first…
    assert ("case", str(lamp)) in hits("路灯")  # …then the cases that say it
    assert hits("street lamp")[0] == ("category", "P0120")
    assert hits("东华门")[0] == ("area", "110101001")  # a street by name
    assert ("case", str(oil)) in hits("油污")  # two Chinese characters
    assert ("case", str(oil)) in hits("车辆打滑")  # more than two
    assert ("case", str(lamp)) not in hits("油污")
    assert hits("zz") == []


def test_search_never_shows_cases_outside_the_callers_scope(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = new(api, INSIDE_001, description="井盖松动"), \
        new(api, INSIDE_002, description="井盖丢失")
    add_user(db, "w2", "password-w2-long", "grid_worker", areas=("110101001001002",))
    token, _ = issue_token(api.app.state.settings.security, "w2", "grid_worker")  # type: ignore[attr-defined]
    r = api.get("/map/search", params={"q": "井盖"},
                headers={"Authorization": f"Bearer {token}"})
    found = {h["id"] for h in r.json()["hits"] if h["kind"] == "case"}
    assert theirs in found and mine not in found


def test_overdue_has_the_filters_and_formats_of_the_case_list(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    a, b, c = new(api), new(api, INSIDE_002), new(api, LAMP, category="P0120")
    for cid, hours in ((a, 1), (b, 5), (c, 3)):
        age(db, cid, hours)
    all_ = api.get("/cases/overdue").json()
    assert [x["id"] for x in all_["cases"]] == [b, c, a]  # most overdue first
    lamps = api.get("/cases/overdue", params={"category": "P0120"}).json()
    assert [x["id"] for x in lamps["cases"]] == [c]
    assert api.get("/cases/overdue", params={"grid": "110101001001002"}).json()["count"] == 1
    assert api.get("/cases/overdue", params={"department": "D_CITY"}).json()["count"] == 0
    page = api.get("/cases/overdue", params={"limit": 2}).json()
    assert [x["id"] for x in page["cases"]] == [b, c] and page["next"]
    rest = api.get(page["next"].replace("http://testserver", "")).json()
    assert [x["id"] for x in rest["cases"]] == [a]
    rows = list(csv.DictReader(io.StringIO(api.get("/cases/overdue?format=csv").text)))
    assert [int(r["id"]) for r in rows] == [b, c, a] and rows[0]["colour"] == "red"
    geo = api.get("/cases/overdue?format=geojson")
    assert geo.headers["content-type"] == "application/geo+json"
    assert len(geo.json()["features"]) == 3
    assert api.get("/cases/overdue?after=nonsense").status_code == 422


def test_merge_leaves_a_trace_on_the_primary_and_the_outcome_for_the_reporter(  # type: ignore[no-untyped-def]
        api: TestClient, db) -> None:
    first = new(api, reporter="W1", description="路面有油污")
    add_user(db, "w-two", "password-w-two-long", "grid_worker", areas=("110101001001001",))
    token, _ = issue_token(api.app.state.settings.security, "w-two", "grid_worker")  # type: ignore[attr-defined]
    phone = {"Authorization": f"Bearer {token}"}  # the second reporter, signed in
    filed = api.post("/cases", json=report(INSIDE_001, reporter="W2",
                                           description="这里路面油污很多"), headers=phone)
    assert filed.status_code == 201, filed.text
    second = int(filed.json()["id"])
    got = api.get(f"/cases/{second}", headers=DESK).json()
    candidate = got["context"]["duplicates"][0]
    assert candidate["case_id"] == first and candidate["case"]["public_no"]
    assert candidate["distance_m"] == 0.0 and candidate["seconds_apart"] >= 0
    later = api.get(f"/cases/{first}").json()["context"]["later_duplicates"]
    assert [x["case_id"] for x in later] == [second]
    step(api, second, "merge", DESK, primary_case_id=first)
    primary = api.get(f"/cases/{first}").json()
    assert [m["id"] for m in primary["context"]["merged"]] == [second]
    assert primary["context"]["merged"][0]["reporter"] == "w-two"  # signed in: the user
    merge_rows = [h for h in primary["history"] if h["action"] == "merge"]
    assert merge_rows and merge_rows[0]["details"] == {"merged_case_id": second,
                                                        "role": "primary"}
    for action, who, body in (("verify", DESK, {}), ("register", DESK, {}),
                              ("dispatch", DESK, {}), ("accept", DEPT, {}),
                              ("handle", DEPT, {}), ("feed_back", DEPT, {}),
                              ("check", {"X-Role": "grid_worker", "X-Actor": "W1"},
                               {"check_result": "pass"}), ("close", DESK, {})):
        step(api, first, action, who, **body)
    merged = api.get(f"/cases/{second}").json()
    assert merged["state"] == "merged"
    assert merged["outcome"]["state"] == "closed" and merged["outcome"]["closed_at"]
    assert merged["outcome"]["closed_at"].endswith("+08:00")  # the city's offset
    # ...and the second reporter's own list (the phone's 我的上报) says where it went
    mine = api.get("/me/reports", headers=phone).json()["items"]
    outcome = next(i for i in mine if i["id"] == second)["outcome"]
    assert outcome["primary_public_no"] == primary["public_no"] and outcome["state"] == "closed"
    with db.connect() as conn:
        kinds = conn.execute(text("SELECT kind, details FROM case_event WHERE case_id = :c "
                                  "ORDER BY id"), {"c": second}).all()
    assert kinds[-1][0] == "closed" and kinds[-1][1]["primary_case_id"] == first


def test_proposal_is_explained_and_overrides_need_a_reason(api: TestClient) -> None:
    cid = new(api, LAMP, category="P0120")
    for action in ("verify", "register"):
        step(api, cid, action, DESK)
    got = api.get(f"/cases/{cid}").json()
    basis = got["context"]["proposal"]["basis"]
    assert got["proposal"]["department"] == "D_LAMP"
    assert basis["source"] == "part-maintenance"
    assert basis["part"]["code"] == "1101010120000001"
    assert got["context"]["proposal"]["department_name"] == "路灯维护公司"
    refused = api.post(f"/cases/{cid}/dispatch", headers={**DESK, "Accept-Language": "zh-CN"},
                       json={"department": "D_ROADS"})
    assert refused.status_code == 422
    body = refused.json()
    assert body["field"] == "reason" and body["title"] == "输入无效"
    assert "原因" in body["detail"] and "D_LAMP" in body["detail"]
    english = api.post(f"/cases/{cid}/dispatch", headers={**DESK, "Accept-Language": "en"},
                       json={"department": "D_ROADS"}).json()
    assert "reason" in english["detail"]
    done = step(api, cid, "dispatch", DESK, department="D_ROADS", reason="路灯所统一维修")
    assert done["history"][-1]["reason"] == "路灯所统一维修"


def test_a_team_leader_assigns_within_the_team(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    add_team(db, "T-LAMP", "D_LAMP", "一班")
    for name, leader in (("lead", True), ("h-a", False), ("h-b", False)):
        add_user(db, name, f"password-{name}-long", "department_handler", department="D_LAMP")
        join_team(db, name, "T-LAMP", leader=leader)
    add_user(db, "other", "password-other-long", "department_handler", department="D_LAMP")
    security = api.app.state.settings.security  # type: ignore[attr-defined]

    def as_(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(security, user, 'x')[0]}"}

    cid = new(api, LAMP, category="P0120")
    for action in ("verify", "register", "dispatch"):
        step(api, cid, action, DESK)
    r = api.post(f"/cases/{cid}/assign", headers=as_("h-a"), json={"assignee": "h-b"})
    assert r.status_code == 403, r.text  # not the leader
    r = api.post(f"/cases/{cid}/assign", headers=as_("lead"), json={"assignee": "other"})
    assert r.status_code == 422 and r.json()["field"] == "assignee"  # not in the team
    done = step(api, cid, "assign", as_("lead"), assignee="h-b")
    assert done["history"][-1]["details"]["assignee"] == "h-b"
    with db.connect() as conn:
        assert conn.execute(text("SELECT assignee FROM case_record WHERE id = :i"),
                            {"i": cid}).scalar() == "h-b"
        event = conn.execute(text("SELECT kind, assignee FROM case_event WHERE case_id = :i "
                                  "ORDER BY id DESC LIMIT 1"), {"i": cid}).one()
    assert tuple(event) == ("assigned", "h-b")


def test_times_carry_the_citys_offset(api: TestClient) -> None:
    cid = new(api)
    got = api.get(f"/cases/{cid}").json()
    for value in (got["created_at"], got["history"][0]["at"], got["clock"]["deadline"]):
        assert value.endswith("+08:00"), value
    assert datetime.fromisoformat(got["created_at"]) > datetime.now(UTC) - timedelta(minutes=5)
