"""The evaluation centre over HTTP on the planted month: who sees what (a department its own
details and the public ranking, an area manager the parties in their area), appeals through
the API with their audit rows, names in the caller's language, clear 422s."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.security.identity import issue_token
from layers.security.users import add_user
from tests.support.evaluation_planting import PERIOD, plant_month
from tests.support.health_planting import C1, C2
from tests.support.snapshot import plant_once

PASSWORD = "a-long-enough-password"


@pytest.fixture
def month(client: TestClient, db: Engine) -> dict[str, int]:
    ids = plant_once(db, "evaluation_month", lambda: plant_month(db))
    settings = client.app.state.settings
    # the planted month is past: let its appeals still be filed
    settings.evaluation = settings.evaluation.model_copy(update={"appeal_window_days": 60})
    return ids


def _as(client: TestClient, db: Engine, name: str, role: str, department: str | None = None,
        areas: tuple[str, ...] = ()) -> dict[str, str]:
    add_user(db, name, PASSWORD, role, department=department, areas=list(areas))
    token, _ = issue_token(client.app.state.settings.security, name, role, minutes=30)
    return {"Authorization": f"Bearer {token}"}


def test_public_ranking_and_own_details_for_a_department(client: TestClient, db: Engine,
                                                         month: dict[str, int]) -> None:
    d1 = _as(client, db, "d1-handler", "department_handler", department="D1")
    r = client.get("/evaluation/department", params={"period": PERIOD}, headers=d1)
    assert r.status_code == 200, r.text
    rows = r.json()["parties"]
    assert [x["code"] for x in rows] == ["D1", "D2"] and rows[0]["rank"] == 1
    assert rows[1]["name"] == "市政设施" and rows[1]["driver"]["name"]
    own = client.get("/evaluation/department/D1", params={"period": PERIOD}, headers=d1)
    assert own.status_code == 200
    body = own.json()
    late = body["aggregates"]["handled_late"]
    assert late["count"] == 1 and late["cases"][0]["id"] == month["K1"]
    assert late["cases"][0]["public_no"] == f"C{month['K1']:08d}"
    assert late["cases"][0]["href"].endswith(f"/cases/{month['K1']}")
    terms = {t["indicator"]: t for t in body["terms"]}
    assert terms["on_time_rate"]["name"] == "按时处置率"
    assert terms["on_time_rate"]["formula_verified"] is False
    assert "CJ/T 292" in terms["on_time_rate"]["source"]
    other = client.get("/evaluation/department/D2", params={"period": PERIOD}, headers=d1)
    assert other.status_code == 404
    assert client.get("/evaluation/worker", params={"period": PERIOD},
                      headers=d1).status_code == 403


def test_area_manager_sees_the_parties_in_their_area(client: TestClient, db: Engine,
                                                     month: dict[str, int]) -> None:
    c1 = _as(client, db, "c1-manager", "manager", areas=(C1,))
    areas = client.get("/evaluation/area", params={"period": PERIOD, "level": "community"},
                       headers=c1).json()
    assert [x["code"] for x in areas["parties"]] == [C1]
    workers = client.get("/evaluation/worker", params={"period": PERIOD}, headers=c1).json()
    assert [x["code"] for x in workers["parties"]] == ["W1"]
    assert client.get(f"/evaluation/area/{C2}", params={"period": PERIOD},
                      headers=c1).status_code == 404
    w1 = client.get("/evaluation/worker/W1", params={"period": PERIOD}, headers=c1).json()
    assert w1["aggregates"]["missed"]["cases"][0]["id"] == month["K3"]
    assert w1["no_data"]["patrol_coverage"].startswith("no patrol data")
    worker = _as(client, db, "W2", "grid_worker", areas=("320508001002001",))
    mine = client.get("/evaluation/worker", params={"period": PERIOD}, headers=worker).json()
    assert [x["code"] for x in mine["parties"]] == ["W2"]


def test_appeal_through_the_api(client: TestClient, db: Engine, month: dict[str, int]) -> None:
    d1 = _as(client, db, "d1-handler", "department_handler", department="D1")
    boss = _as(client, db, "city-manager", "manager")
    filed = client.post("/evaluation/appeals", headers=d1, json={
        "kind": "department", "party": "D1", "case_id": month["K1"], "penalty": "overdue",
        "period": PERIOD, "reason": "dispatched late by mistake"})
    assert filed.status_code == 201, filed.text
    appeal = filed.json()
    assert appeal["state"] == "filed" and appeal["filed_by"] == "d1-handler"
    assert client.post(f"/evaluation/appeals/{appeal['id']}/approve", headers=d1,
                       json={"reason": "mine"}).status_code == 403
    done = client.post(f"/evaluation/appeals/{appeal['id']}/approve", headers=boss,
                       json={"reason": "confirmed"})
    assert done.status_code == 200 and done.json()["state"] == "approved"
    body = client.get("/evaluation/department/D1", params={"period": PERIOD},
                      headers=d1).json()
    assert body["score"] > body["score_before_appeals"]
    assert body["aggregates"]["handled_late"]["count"] == 0
    assert body["aggregates"]["handled_late"]["count_before_appeals"] == 1
    assert [a["id"] for a in body["appeals"]] == [appeal["id"]]
    with db.connect() as conn:
        actions = [r[0] for r in conn.execute(text(
            "SELECT action FROM audit_log WHERE target = :t ORDER BY seq"),
            {"t": f"appeal:{appeal['id']}"})]
    assert actions == ["appeal.file", "appeal.approve"]


@pytest.mark.parametrize("path, params, field", [
    ("/evaluation/department", {"period": "2026-13"}, "period"),
    ("/evaluation/area", {"period": PERIOD, "level": "province"}, "level"),
    ("/evaluation/department/D1", {"period": "last month"}, "period"),
])
def test_bad_parameters_are_clear_422(client: TestClient, month: dict[str, int], path: str,
                                      params: dict, field: str) -> None:
    r = client.get(path, params=params, headers={"X-Role": "admin"})
    assert r.status_code == 422 and r.json()["field"] == field


def test_indicators_are_documented_in_the_callers_language(client: TestClient,
                                                           month: dict[str, int]) -> None:
    zh = client.get("/evaluation", headers={"X-Role": "manager"}).json()
    en = client.get("/evaluation", headers={"X-Role": "manager", "Accept-Language": "en"})
    dept = {i["key"]: i for i in zh["kinds"]["department"]["indicators"]}
    assert dept["on_time_rate"]["name"] == "按时处置率"
    assert dept["on_time_rate"]["formula"] == "handled_on_time / due_timed"
    # the note on where the formulas come from, in the caller's language (the catalogue)
    assert "尚未" in zh["source_note"] and "CJ/T 292-2008" in zh["source_note"]
    assert "not verified" in en.json()["source_note"]
    ranking = client.get("/evaluation/department", params={"period": PERIOD},
                         headers={"X-Role": "manager", "Accept-Language": "en"}).json()
    assert ranking["source_note"] == en.json()["source_note"]
    area = {i["key"]: i for i in en.json()["kinds"]["area"]["indicators"]}
    assert area["on_time_rate"]["name"] == "on-time closure rate"


def test_briefing_routes(client: TestClient, db: Engine, month: dict[str, int]) -> None:
    analyst = _as(client, db, "analyst-one", "analyst")
    pdf = client.get(f"/briefings/{PERIOD}.pdf", params={"area": "320508"}, headers=analyst)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content[:5] == b"%PDF-"
    page = client.get(f"/briefings/{PERIOD}.html", headers=analyst)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script" not in page.text and "/static/briefing/briefing.css" in page.text
    assert client.get("/static/briefing/briefing.css").status_code == 200
    en = client.get(f"/briefings/{PERIOD}.html", headers={**analyst, "Accept-Language": "en"})
    assert "city operations briefing" in en.text
    assert client.get(f"/briefings/{PERIOD}.doc", headers=analyst).status_code == 404
    assert client.get("/briefings/2026-13.pdf", headers=analyst).status_code == 422
    street = _as(client, db, "c2-manager", "manager", areas=(C2,))
    assert client.get(f"/briefings/{PERIOD}.html", params={"area": C1},
                      headers=street).status_code == 404
    worker = _as(client, db, "W1", "grid_worker", areas=("320508001001001",))
    assert client.get(f"/briefings/{PERIOD}.html", headers=worker).status_code == 403


def test_case_exports_carry_every_milestone(client: TestClient, month: dict[str, int]) -> None:
    import csv
    import io

    admin = {"X-Role": "admin"}
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(client.get(
        "/cases", params={"format": "csv"}, headers=admin).text))}
    k1 = rows[month["K1"]]
    assert k1["registered_at"].startswith("2026-10-09T01:25")  # 09:25 in Shanghai
    assert k1["dispatched_at"].startswith("2026-10-09T01:30")
    assert k1["handled_at"].startswith("2026-10-10T02:30")
    assert k1["checked_at"].startswith("2026-10-10T03:00")
    assert k1["closed_at"].startswith("2026-10-10T03:10")
    assert rows[month["K6"]]["verified_at"] == ""  # not reached
    gj = client.get("/cases", params={"format": "geojson"}, headers=admin).json()
    props = {f["id"]: f["properties"] for f in gj["features"]}
    assert props[month["K5"]]["dispatched_at"].startswith("2026-10-15T01:20")
    assert props[month["K5"]]["handled_at"] is None
