"""What the board's appeal actions read from the API on the planted month: a party's
explanation says whether the caller may appeal its penalties and until when, and which of its
listed cases carry which penalty; appeals come with the case's number, the party's name and
whether the caller may decide them (never the filer); every refusal a page shows is a
problem+json whose detail is in the caller's language."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.security.identity import issue_token
from layers.security.users import add_user
from tests.support.evaluation_planting import PERIOD, plant_month
from tests.support.health_planting import C1
from tests.support.snapshot import plant_once

PASSWORD = "a-long-enough-password"


@pytest.fixture
def month(client: TestClient, db: Engine) -> dict[str, int]:
    return plant_once(db, "evaluation_month", lambda: plant_month(db))


def _window(client: TestClient, days: int) -> None:
    settings = client.app.state.settings
    settings.evaluation = settings.evaluation.model_copy(update={"appeal_window_days": days})


def _as(client: TestClient, db: Engine, name: str, role: str, department: str | None = None,
        areas: tuple[str, ...] = (), lang: str = "zh-CN") -> dict[str, str]:
    add_user(db, name, PASSWORD, role, department=department, areas=list(areas))
    token, _ = issue_token(client.app.state.settings.security, name, role, minutes=30)
    return {"Authorization": f"Bearer {token}", "Accept-Language": lang}


def _explained(client: TestClient, kind: str, code: str, headers: dict[str, str]
               ) -> dict:  # type: ignore[type-arg]
    r = client.get(f"/evaluation/{kind}/{code}", params={"period": PERIOD}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_the_explanation_says_who_may_appeal_which_case(client: TestClient, db: Engine,
                                                        month: dict[str, int]) -> None:
    _window(client, 60)
    d1 = _as(client, db, "d1-handler", "department_handler", department="D1")
    body = _explained(client, "department", "D1", d1)
    assert body["appeal"]["may_file"] is True and body["appeal"]["open"] is True
    assert body["appeal"]["closes"].endswith("+08:00")
    aggs = body["aggregates"]
    assert aggs["handled_late"]["penalty"] == {"name": "overdue", "case_ids": [month["K1"]]}
    assert aggs["reworked"]["penalty"] == {"name": "rework", "case_ids": [month["K2"]]}
    assert "penalty" not in aggs["handled"]  # a list of every handled case: no penalty
    # a dispatcher oversees the department but does not appeal for it
    dispatcher = _as(client, db, "disp", "dispatcher")
    assert _explained(client, "department", "D1", dispatcher)["appeal"]["may_file"] is False
    # a grid worker's late verifies: only the late one (K2), not every case they verified
    c1 = _as(client, db, "c1-manager", "manager", areas=(C1,))
    w1 = _explained(client, "worker", "W1", c1)
    assert w1["appeal"]["may_file"] is True
    late = w1["aggregates"]["verified"]["penalty"]
    assert late["name"] == "late_verify" and late["case_ids"] == [month["K2"]]
    assert set(w1["aggregates"]["verified"]["cases"][i]["id"]
               for i in range(len(w1["aggregates"]["verified"]["cases"]))) > {month["K2"]}
    _window(client, 5)  # the planted month is long past
    closed = _explained(client, "department", "D1", d1)["appeal"]
    assert closed["may_file"] is True and closed["open"] is False


def test_filing_and_deciding_as_the_pages_do(client: TestClient, db: Engine,
                                             month: dict[str, int]) -> None:
    _window(client, 60)
    d1 = _as(client, db, "d1-handler-2", "department_handler", department="D1")
    boss = _as(client, db, "city-manager-2", "manager", lang="en")
    filed = client.post("/evaluation/appeals", headers=d1, json={
        "kind": "department", "party": "D1", "case_id": month["K2"], "penalty": "rework",
        "period": PERIOD, "reason": "the rework was the contractor's, not ours"})
    assert filed.status_code == 201, filed.text
    appeal = filed.json()
    assert appeal["public_no"] == f"C{month['K2']:08d}" and appeal["party_name"]
    assert appeal["may_decide"] is False and appeal["clock"] == "green"
    # again: refused in the caller's language, naming the appeal in force
    again = client.post("/evaluation/appeals", headers=d1, json={
        "kind": "department", "party": "D1", "case_id": month["K2"], "penalty": "rework",
        "period": PERIOD, "reason": "twice"})
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["detail"] == (
        f"这件案件的同一扣分项已有申诉（第 {appeal['id']} 号），正在处理或已批准")
    # the filer sees no decision of theirs to take; the manager does
    mine = client.get("/evaluation/appeals", headers=d1).json()["appeals"]
    assert [(a["may_decide"], a["filed_by_caller"]) for a in mine
            if a["id"] == appeal["id"]] == [(False, True)]
    theirs = client.get("/evaluation/appeals", headers=boss).json()["appeals"]
    assert [(a["may_decide"], a["filed_by_caller"]) for a in theirs
            if a["id"] == appeal["id"]] == [(True, False)]
    own = client.post(f"/evaluation/appeals/{appeal['id']}/approve", headers=d1,
                      json={"reason": "mine"})
    assert own.status_code == 403  # the access table: a handler does not decide
    no_reason = client.post(f"/evaluation/appeals/{appeal['id']}/reject", headers=boss,
                            json={"reason": "   "})
    assert no_reason.status_code == 422 and no_reason.json()["detail"] == "a reason is required"
    done = client.post(f"/evaluation/appeals/{appeal['id']}/reject", headers=boss,
                       json={"reason": "the check failed on site"})
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "rejected" and done.json()["may_decide"] is False
    twice = client.post(f"/evaluation/appeals/{appeal['id']}/approve", headers=boss,
                        json={"reason": "changed my mind"})
    assert twice.status_code == 409
    assert twice.json()["detail"] == "this appeal has already been decided"
    one = client.get(f"/evaluation/appeals/{appeal['id']}", headers=d1).json()
    assert one["state"] == "rejected" and one["decision_reason"] == "the check failed on site"


def test_a_manager_who_filed_does_not_decide_it(client: TestClient, db: Engine,
                                                month: dict[str, int]) -> None:
    _window(client, 60)
    boss = _as(client, db, "filing-manager", "manager")
    filed = client.post("/evaluation/appeals", headers=boss, json={
        "kind": "worker", "party": "W1", "case_id": month["K2"], "penalty": "late_verify",
        "period": PERIOD, "reason": "the report came in during a meeting"})
    assert filed.status_code == 201, filed.text
    assert filed.json()["may_decide"] is False
    own = client.post(f"/evaluation/appeals/{filed.json()['id']}/approve", headers=boss,
                      json={"reason": "fine"})
    assert own.status_code == 403
    assert own.json()["detail"] == "申诉不能由提交人本人处理"


def test_refusals_a_page_shows_are_worded_for_the_caller(client: TestClient, db: Engine,
                                                         month: dict[str, int]) -> None:
    _window(client, 60)
    d1 = _as(client, db, "d1-handler-3", "department_handler", department="D1", lang="en")
    on_time = client.post("/evaluation/appeals", headers=d1, json={
        "kind": "department", "party": "D1", "case_id": month["K3"], "penalty": "overdue",
        "period": PERIOD, "reason": "it was on time"})
    assert on_time.status_code == 422
    assert on_time.json()["detail"] == (
        f"case {month['K3']} carries no such penalty in {PERIOD}: there is nothing to appeal")
    # a worker's verify in time carries no late-verify penalty (it was accepted before)
    c1 = _as(client, db, "c1-manager-3", "manager", areas=(C1,))
    in_time = client.post("/evaluation/appeals", headers=c1, json={
        "kind": "worker", "party": "W1", "case_id": month["K1"], "penalty": "late_verify",
        "period": PERIOD, "reason": "x"})
    assert in_time.status_code == 422, in_time.text
    blank = client.post("/evaluation/appeals", headers=d1, json={
        "kind": "department", "party": "D1", "case_id": month["K1"], "penalty": "overdue",
        "period": PERIOD, "reason": "  "})
    assert blank.status_code == 422 and blank.json()["detail"] == "a reason is required"
    _window(client, 5)
    late = client.post("/evaluation/appeals", headers={**d1, "Accept-Language": "zh-CN"},
                       json={"kind": "department", "party": "D1", "case_id": month["K1"],
                             "penalty": "overdue", "period": PERIOD, "reason": "late"})
    assert late.status_code == 409
    detail = late.json()["detail"]
    assert detail.startswith(f"{PERIOD} 的申诉期已于 2026-11-") and "5 个工作日" in detail


def test_an_areas_overdue_cases_are_those_not_closed_on_time(client: TestClient, db: Engine,
                                                              month: dict[str, int]) -> None:
    """An area's overdue penalty falls on the cases due to close that were not closed on time:
    the board offers those (K1 handled late, K5 never handled), and the API refused none of
    close_due before (K2, closed on time, was accepted)."""
    _window(client, 60)
    c1 = _as(client, db, "street-manager", "manager")  # every area
    street = client.get("/evaluation/area", params={"period": PERIOD},
                        headers=c1).json()["parties"][0]["code"]
    body = _explained(client, "area", street, c1)
    assert body["aggregates"]["close_due"]["penalty"] == {
        "name": "overdue", "case_ids": [month["K1"], month["K5"]]}
    on_time = client.post("/evaluation/appeals", headers=c1, json={
        "kind": "area", "party": street, "case_id": month["K2"], "penalty": "overdue",
        "period": PERIOD, "reason": "closed on time"})
    assert on_time.status_code == 422, on_time.text
    late = client.post("/evaluation/appeals", headers=c1, json={
        "kind": "area", "party": street, "case_id": month["K5"], "penalty": "overdue",
        "period": PERIOD, "reason": "the department was told too late"})
    assert late.status_code == 201, late.text


def test_an_unknown_party_is_a_404_naming_its_kind(client: TestClient, db: Engine,
                                                   month: dict[str, int]) -> None:
    """The error's detail 'kind' (the evaluation's kind) once clashed with the problem's own
    'kind' argument: a 500 for GET /evaluation/area/<unknown>."""
    c1 = _as(client, db, "street-manager-2", "manager")
    r = client.get("/evaluation/area/C1", params={"period": PERIOD}, headers=c1)
    assert r.status_code == 404, r.text
    problem = r.json()
    assert problem["kind"] == "area" and problem["code"] == "C1"
    assert problem["type"].endswith("/not-found") and problem["status"] == 404
