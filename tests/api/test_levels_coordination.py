"""The coordination state the desk's pages ask for (issue 24): ``GET /cases/{id}/coordination``
and the steps of ``GET /map/cases/{id}/actions`` follow who waits for whom — 报到 only while a
whistle waits for the caller's department, 协同反馈 only on its open task, 解除协同 only while a
task is open, the lead's 反馈 not before every task is done or released, 上报 only where a level
team above exists; a department's own list of whistles and tasks (``GET /cases/party-tasks``);
the consultation thread's photos (会商, multipart) served to the parties only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gridcore.coordination import follow_coordination
from gridcore.settings import Settings
from tests.api.test_levels import DEPT, DESK, W1, api, city, dispatched, refused, step
from tests.support.cases import GRID_001, png_bytes, report, settings

__all__ = ["api", "city"]


def state(api: TestClient, cid: int, headers: dict[str, str] = DESK) -> dict[str, Any]:
    r = api.get(f"/cases/{cid}/coordination", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def actions(api: TestClient, cid: int, role: str) -> list[str]:
    r = api.get(f"/map/cases/{cid}/actions", params={"role": role}, headers=DESK)
    assert r.status_code == 200, r.text
    return list(r.json()["actions"])


def test_steps_follow_the_coordination_state(api: TestClient) -> None:
    cid = dispatched(api)  # held by the community's team D_GRID
    s = state(api, cid)
    assert s["lead"]["code"] == "D_GRID" and s["whistles"] == [] and s["assisting"] == []
    assert set(s["steps"]) == {"whistle", "assist", "escalate"}
    assert s["escalate_to"]["department"] == "D_STREET"  # the street's team above
    assert "D_GRID" not in {d["code"] for d in s["candidates"]}  # the lead cannot assist
    handler = actions(api, cid, "department_handler")
    assert not {"report_in", "assist_done"} & set(handler)  # nobody waits for anything
    assert "release" not in actions(api, cid, "dispatcher")
    step(api, cid, "whistle", DESK, departments=["D_WATER"], new_limit="30m")
    step(api, cid, "accept", DEPT)
    step(api, cid, "assist", DESK, departments=["D_LAMP"])
    s = state(api, cid)
    assert s["waiting_whistles"] == ["D_WATER"] and s["open_tasks"] == ["D_LAMP"]
    assert "release" in s["steps"]
    assert {"D_WATER", "D_LAMP"}.isdisjoint({d["code"] for d in s["candidates"]})
    assert [w["name"] for w in s["whistles"]] and s["whistles"][0]["overdue"] is False
    assert {"report_in", "assist_done"} <= set(actions(api, cid, "department_handler"))
    step(api, cid, "handle", DEPT)
    s = state(api, cid)
    assert s["lead_feedback_waits_for"] == ["D_LAMP"]
    assert "feed_back" not in actions(api, cid, "department_handler")
    step(api, cid, "assist_done", DEPT, department="D_LAMP", reason="灯杆已查")
    step(api, cid, "report_in", DEPT, department="D_WATER")
    s = state(api, cid)
    assert s["lead_feedback_waits_for"] == [] and "release" not in s["steps"]
    handler = actions(api, cid, "department_handler")
    assert "feed_back" in handler and not {"report_in", "assist_done"} & set(handler)
    assert api.get("/cases/99999/coordination", headers=DESK).status_code == 404


def test_no_escalation_offered_at_the_top(api: TestClient) -> None:
    cid = dispatched(api, department="D_DIST")
    s = state(api, cid)
    assert "escalate" not in s["steps"] and s["escalate_to"] is None
    assert "top" in s["escalate_blocked"]
    assert "escalate" not in actions(api, cid, "dispatcher")


def test_a_handler_of_a_party_sees_its_own_steps_only() -> None:
    waiting: dict[str, Any] = {"waiting_whistles": ("D_WATER",), "open_tasks": ("D_LAMP",),
                               "can_escalate": True, "lead": "D_GRID"}
    all_steps = ["handle", "escalate", "report_in", "assist", "assist_done", "feed_back",
                 "assign"]
    assert follow_coordination(all_steps, role="department_handler", my_department="D_WATER",
                               **waiting) == ["report_in"]
    assert follow_coordination(all_steps, role="department_handler", my_department="D_LAMP",
                               **waiting) == ["assist_done"]
    # the lead: its own steps, not the parties'; its feedback waits for the open task
    assert follow_coordination(all_steps, role="department_handler", my_department="D_GRID",
                               **waiting) == ["handle", "escalate", "assist", "assign"]
    assert follow_coordination(["escalate", "release"], role="dispatcher", my_department=None,
                               waiting_whistles=(), open_tasks=(), can_escalate=False,
                               lead="D_GRID") == []


def test_thread_photos_are_stored_and_served_to_parties(api: TestClient, db: Engine) -> None:
    cid = dispatched(api)
    r = api.post(f"/cases/{cid}/messages", headers=DEPT, data={"body": "现场照片见附件"},
                 files=[("photos", ("a.png", png_bytes(70), "image/png"))])
    assert r.status_code == 201, r.text
    shot = r.json()["attachments"][0]
    assert shot["n"] == 1 and shot["url"] == f"/cases/{cid}/messages/{r.json()['id']}/photos/1"
    assert "path" not in shot  # never where it lies on disk
    got = api.get(shot["url"], headers=W1)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert api.get(shot["url"].replace("/1", "/2"), headers=W1).status_code == 404
    thread = api.get(f"/cases/{cid}/messages", headers=DESK).json()["messages"]
    assert thread[0]["attachments"][0]["url"] == shot["url"]
    # bad input: a clear 422 and nothing stored
    with db.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM case_message")).scalar()
    r = api.post(f"/cases/{cid}/messages", headers=DESK,
                 json={"body": "x", "attachments": [{"path": "../../etc/passwd",
                                                     "sha256": "0" * 64}]})
    assert r.status_code == 422 and r.json()["field"] == "attachments"
    r = api.post(f"/cases/{cid}/messages", headers=DESK, data={"body": "x"},
                 files=[("photos", ("a.png", b"not an image", "image/png"))])
    assert r.status_code == 422, r.text
    r = api.post(f"/cases/{cid}/messages", headers=DESK, data={"body": ""})
    assert r.status_code == 422
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_message")).scalar() == before


@pytest.fixture
def signed(city: Engine, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    from api.app import create_app
    from api.security.identity import issue_token
    from layers.security import users

    tree = Settings(cases=settings(tmp_path))
    tree.security = tree.security.model_copy(update={"env": "production"})
    who = {}
    for name, role, dept in (("lead", "department_handler", "D_GRID"),
                             ("water", "department_handler", "D_WATER"),
                             ("lamp", "department_handler", "D_LAMP"),
                             ("roads", "department_handler", "D_ROADS"),
                             ("desk", "dispatcher", None), ("w1", "grid_worker", None)):
        users.add_user(city, name, "correct horse battery", role, department=dept,
                       areas=(GRID_001,) if role == "grid_worker" else ())
        who[name] = {"Authorization": f"Bearer {issue_token(tree.security, name, role)[0]}"}
    with TestClient(create_app(tree, engine=city)) as client:
        yield client, who


def test_party_tasks_and_state_for_signed_in_parties(signed) -> None:  # type: ignore[no-untyped-def]
    api, who = signed
    cid = api.post("/cases", json=report(), headers=who["w1"]).json()["id"]
    for action, by, extra in [("verify", "w1", {}), ("register", "desk", {}),
                              ("dispatch", "desk", {"department": "D_GRID"}),
                              ("whistle", "desk", {"departments": ["D_WATER"]}),
                              ("accept", "lead", {}),
                              ("assist", "desk", {"departments": ["D_LAMP"]})]:
        r = api.post(f"/cases/{cid}/{action}", headers=who[by], json=extra or None)
        assert r.status_code == 200, (action, r.text)

    def mine(name: str) -> list[tuple[int, str]]:
        r = api.get("/cases/party-tasks", headers=who[name])
        assert r.status_code == 200, r.text
        return [(i["id"], i["kind"]) for i in r.json()["items"]]

    assert mine("water") == [(cid, "report_in")]
    assert mine("lamp") == [(cid, "assist_done")]
    assert mine("roads") == [] and mine("lead") == [] and mine("desk") == []
    assert state(api, cid, who["water"])["steps"] == ["report_in"]
    assert state(api, cid, who["lamp"])["steps"] == ["assist_done"]
    lead = state(api, cid, who["lead"])
    assert "report_in" not in lead["steps"] and "assist_done" not in lead["steps"]
    assert api.get(f"/cases/{cid}/coordination", headers=who["roads"]).status_code == 403
    r = api.post(f"/cases/{cid}/report_in", headers=who["water"])
    assert r.status_code == 200, r.text
    assert mine("water") == [] and state(api, cid, who["water"])["steps"] == []
    refused_body = api.post(f"/cases/{cid}/messages", headers=who["roads"], json={"body": "x"})
    assert refused_body.status_code == 403


def test_refused_steps_still_name_what_is_allowed(api: TestClient) -> None:
    cid = dispatched(api)
    body = refused(api, cid, "report_in", DEPT, 409, department="D_WATER")
    assert "no whistle" in body["detail"]


def test_serve_escalates_overdue_cases_by_itself(city: Engine, tmp_path: Path) -> None:
    """The escalation sweep runs inside the server (GRIDCORE_ESCALATION_INTERVAL_S), audited,
    once per case: its clock restarts at the level above."""
    import time

    from gridcore.settings import NotifySettings
    from tests.support.database import serving

    tree = Settings(cases=settings(tmp_path),
                    notifications=NotifySettings(escalation_interval_s=0.2,
                                                 supervision_interval_s=0))
    with serving(city, tree) as api:
        building = dispatched(api, category="E0101")  # 私搭乱建 escalates (escalation.csv)
        dirty = dispatched(api, category="E0103")     # 道路不洁 does not
        with city.begin() as conn:  # both overdue by a day
            conn.execute(text("UPDATE case_record SET deadline_at = now() - interval '1 day' "
                              "WHERE id = ANY(:c)"), {"c": [building, dirty]})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if api.get(f"/cases/{building}", headers=DESK).json()["department"] == "D_STREET":
                break
            time.sleep(0.2)
        time.sleep(1.0)  # a few more sweeps: nothing escalates twice
        case = api.get(f"/cases/{building}", headers=DESK).json()
        assert case["department"] == "D_STREET"
        ups = [h for h in case["history"] if h["action"] == "escalate"]
        assert len(ups) == 1 and ups[0]["actor"] == "system" and ups[0]["details"]["auto"]
        assert api.get(f"/cases/{dirty}", headers=DESK).json()["department"] == "D_GRID"
    with city.connect() as conn:
        audited = conn.execute(text("SELECT actor FROM audit_log WHERE action = 'case.escalate' "
                                    "AND target = :t"), {"t": f"case:{building}"}).all()
    assert [a.actor for a in audited] == ["system"]


def _solved_form(**over: Any) -> dict[str, str]:
    fields = {k: str(v) for k, v in report().items() if v is not None}
    return {**fields, "self_handled": "true", "handling": "当场清扫干净", **over}


BEFORE = ("photos", ("before.png", png_bytes(10), "image/png"))
AFTER = ("after_photos", ("after.png", png_bytes(11), "image/png"))


def test_self_handled_in_one_request(api: TestClient, city: Engine, tmp_path: Path) -> None:
    """A grid worker files a small problem solved on the spot: verified, handled and closed
    in one multipart report, counted as 自处置; a resend is answered, not handled twice."""
    from gridcore.evaluation import EvaluationModel, Period
    from layers.evaluation.evaluate import evaluate

    with city.begin() as conn:
        conn.execute(text("INSERT INTO grid_worker (code, name) VALUES ('W1', '张网格')"))
    form = _solved_form()
    r = api.post("/cases", headers=W1, data=form, files=[BEFORE, AFTER])
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["state"] == "closed" and case["self_handled"] is True
    assert case["check_result"] == "pass"
    assert [h["action"] for h in case["history"]] == ["report", "self_handle"]
    assert case["history"][-1]["reason"] == "当场清扫干净"
    assert [p["step"] for p in case["photos"]] == ["report", "self_handle"]
    roles = [a.get("role") for a in case["history"][-1]["attachments"]]
    assert roles == ["before", "after"]
    again = api.post("/cases", headers=W1, data=form, files=[BEFORE, AFTER])
    assert again.status_code == 200 and again.json()["id"] == case["id"]
    assert again.json()["state"] == "closed"
    stored = api.get(f"/cases/{case['id']}", headers=DESK).json()
    assert [h["action"] for h in stored["history"]] == ["report", "self_handle"]
    cal = settings(tmp_path).working_calendar
    month = Period.parse(datetime.now(cal.tz).strftime("%Y-%m"))
    result = evaluate(city, EvaluationModel.default(), month, cal, [("worker", None)])
    ev = result["worker"]
    assert float(ev.after.values["self_handled"][ev.keys.index("W1")]) == 1.0


@pytest.mark.parametrize(("headers", "form", "files", "status", "field"), [
    (W1, {}, [BEFORE], 422, "after_photos"),
    (W1, {}, [AFTER], 422, "photos"),
    (W1, {"handling": " "}, [BEFORE, AFTER], 422, "handling"),
    (W1, {"lon": "", "lat": "", "address": "多福巷12号"}, [BEFORE, AFTER], 422, "lon"),
    (DESK, {}, [BEFORE, AFTER], 403, "self_handled"),
    (W1, {}, [BEFORE, ("after_photos", ("x.png", b"not a photo", "image/png"))], 422, None),
    (W1, {"self_handled": "false"}, [BEFORE, AFTER], 422, "after_photos"),
])
def test_bad_self_handled_reports_store_nothing(api: TestClient, db: Engine, headers: Any,
                                                form: dict[str, str], files: list[Any],
                                                status: int, field: str | None) -> None:
    from tests.support.database import row_counts

    before = row_counts(db)
    r = api.post("/cases", headers=headers, data=_solved_form(**form), files=files)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if field:
        assert r.json().get("field") == field, r.json()
    assert row_counts(db) == before


def test_self_handled_as_json_says_photos_are_needed(api: TestClient) -> None:
    r = api.post("/cases", headers=W1, json={**report(), "self_handled": True,
                                             "handling": "当场清扫"})
    assert r.status_code == 422 and r.json()["field"] == "photos", r.text
