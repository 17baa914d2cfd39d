"""The intelligence room over HTTP on a planted history: suggestions marked as such, a model
that reaches every server process once activated, a worse model that never activates, the
rules before the learned dispatch, similar cases and the forecast inside the caller's scope."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.security.identity import issue_token
from gridcore.cli import app
from layers.intelligence.learning import learn
from layers.security.users import add_user
from tests.support.cases import GRID_001, GRID_002, INSIDE_001, plant
from tests.support.database import serving
from tests.support.intel_planting import import_history
from tests.support.security import admin_headers

PASSWORD = "a-long-enough-password"


def _as(client: TestClient, db: Engine, name: str, role: str,
        areas: tuple[str, ...] = (), department: str | None = None) -> dict[str, str]:
    add_user(db, name, PASSWORD, role, department=department, areas=list(areas))
    token, _ = issue_token(client.app.state.settings.security, name, role, minutes=30)
    return {"Authorization": f"Bearer {token}"}


def _version(client: TestClient, headers: dict[str, str]) -> int:
    r = client.post("/classify", json={"text": "路灯不亮了"}, headers=headers)
    assert r.status_code == 200, r.text
    return int(r.json()["model"]["version"])


def test_suggestions_and_a_new_model_reaches_every_process(db: Engine, tmp_path: Path) -> None:
    plant(db)
    import_history(db, tmp_path, weeks=30)
    with serving(db) as one, serving(db) as two:  # two server processes' apps
        h1, h2 = admin_headers(one.app, db), admin_headers(two.app, db)
        r = one.post("/classify", json={"text": "路灯不亮"}, headers=h1)
        assert r.status_code == 200 and r.json()["suggestions"] == []
        assert r.json()["model"] is None and "gridcore learn" in r.json()["note"]
        assert one.post("/classify", json={"text": ""}, headers=h1).status_code == 422
        (first,) = learn(db, ["classify"])
        assert first.activated and first.trained is not None
        assert first.trained.scores["model"]["accuracy"] >= 0.9
        assert _version(one, h1) == _version(two, h2) == 1
        body = one.post("/classify", json={"text": "一排路灯都不亮了，晚上很黑"},
                        headers=h1).json()
        assert body["suggestion"] is True and "person decides" in body["note"]
        top = body["suggestions"][0]
        assert top["category"] == "P0120" and top["probability"] > 0.5
        assert any("灯" in d for d in top["drivers"]) and top["name_zh"]
        # intake without a class: filed on the prediction, and the case says so
        report = {"idempotency_key": "no-class-1", "lon": INSIDE_001[0], "lat": INSIDE_001[1],
                  "description": "一排路灯都不亮了\n晚上很黑"}
        r = one.post("/cases", json=report, headers=h1)
        assert r.status_code == 201, r.text
        assert (r.json()["category"], r.json()["category_source"]) == ("P0120", "predicted")
        assert one.post("/cases", json=report, headers=h1).status_code == 200  # a resend
        with db.begin() as conn:  # a model that is never sure enough: 422 with suggestions
            conn.execute(text("UPDATE intel_model SET threshold = 0.999"))
        r = two.post("/cases", json={**report, "idempotency_key": "no-class-2"}, headers=h2)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["field"] == "category" and problem["suggestions"][0]["category"] == "P0120"
        assert len(problem["suggestions"]) == 3
        r = one.post("/cases", json={**report, "idempotency_key": "no-class-3",
                                     "description": ""}, headers=h1)
        assert r.status_code == 422 and r.json()["field"] == "category"
        import_history(db, tmp_path, weeks=40, seed=2, prefix="N", system="newer")
        (second,) = learn(db, ["classify"])
        assert second.activated, second.why
        assert _version(one, h1) == _version(two, h2) == 2  # both, without a restart
        worker = _as(one, db, "h-city", "department_handler", department="D_CITY")
        assert one.post("/classify", json={"text": "路灯"}, headers=worker).status_code == 403


def test_words_the_model_does_not_know_suggest_nothing(db: Engine, tmp_path: Path) -> None:
    """Gibberish got the prior's top class (~8 %) as a suggestion: the answer now says the words
    are no evidence, suggests nothing, and a report without a class is refused with that
    reason instead of a guess — even when the threshold would file anything."""
    plant(db)
    import_history(db, tmp_path, weeks=30)
    (model,) = learn(db, ["classify"])
    assert model.activated
    with serving(db) as client:
        h = admin_headers(client.app, db)
        for text_ in ("asdkjh qwe", "xxxxxxxx", "qwerty 1234"):
            body = client.post("/classify", json={"text": text_}, headers=h).json()
            assert body["no_evidence"] is True, (text_, body)
            assert body["suggestions"] == [] and body["confident"] is False
            assert body["evidence"]["basis"] == "unknown_words"
            assert body["note"].startswith("no suggestion") and body["model"]["version"] == 1
        body = client.post("/classify", json={"text": "一排路灯都不亮了，晚上很黑"},
                           headers=h).json()
        assert body["no_evidence"] is False and body["evidence"]["basis"] == "words"
        assert body["suggestions"][0]["category"] == "P0120"
        with db.begin() as conn:  # a model that would file anything it is given
            conn.execute(text("UPDATE intel_model SET threshold = 0.0"))
        report = {"idempotency_key": "gibberish-1", "lon": INSIDE_001[0],
                  "lat": INSIDE_001[1], "description": "asdkjh qwe"}
        r = client.post("/cases", json=report, headers=h)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["field"] == "category" and problem["no_evidence"] is True
        assert problem["suggestions"] == [] and "nothing to go on" in problem["detail"]
        r = client.post("/cases", json={**report, "idempotency_key": "lamp-1",
                                        "description": "一排路灯都不亮了\n晚上很黑"}, headers=h)
        assert r.status_code == 201, r.text
        assert r.json()["category_source"] == "predicted"


def test_a_worse_model_never_activates(db: Engine, tmp_path: Path,
                                      cli_env: dict[str, str]) -> None:
    plant(db)
    import_history(db, tmp_path, weeks=30)
    # --evaluate: the scores beside the baselines, nothing stored
    result = CliRunner().invoke(app, ["learn", "--kind", "classify", "--evaluate"])
    assert result.exit_code == 0, result.output
    assert "plain TF-IDF + LR" in result.output and "evaluated only" in result.output
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM intel_model")).scalar() == 0
    (good,) = learn(db, ["classify"])
    assert good.activated
    # the same weeks again from another system whose labels are noise: the new model's
    # held-out score falls, it is stored for the record but the good one stays active
    import_history(db, tmp_path, weeks=30, seed=5, prefix="X", system="noisy", noisy=True)
    (worse,) = learn(db, ["classify"])
    assert worse.trained is not None and worse.trained.score < good.trained.score  # type: ignore[union-attr]
    assert not worse.activated and "active" in worse.why
    with db.connect() as conn:
        rows = conn.execute(text("SELECT version, active FROM intel_model "
                                 "ORDER BY version")).all()
    assert [tuple(r) for r in rows] == [(1, True), (2, False)]
    (forced,) = learn(db, ["classify"], force=True)
    assert forced.activated and "--force" in forced.why


def test_rules_first_then_the_model_and_the_scope(db: Engine, tmp_path: Path) -> None:
    plant(db)
    import_history(db, tmp_path, weeks=60)
    learned = {x.kind: x for x in learn(db, timezone="Asia/Shanghai")}  # the import's
    assert all(x.activated for x in learned.values()), {k: x.why for k, x in learned.items()}
    f = learned["forecast"].trained.scores  # type: ignore[union-attr]
    assert f["model"]["deviance"] < f["naive (last week)"]["deviance"]
    with db.connect() as conn:
        lamp = conn.execute(text(
            "SELECT id FROM case_record WHERE category_key = 'P0120' AND grid_code = :g "
            "ORDER BY created_at DESC LIMIT 1"), {"g": GRID_001}).scalar_one()
        east = conn.execute(text(
            "SELECT id FROM case_record WHERE grid_code = :g ORDER BY created_at DESC LIMIT 1"),
            {"g": GRID_002}).scalar_one()
    with serving(db) as client:
        admin = admin_headers(client.app, db)
        r = client.get(f"/cases/{lamp}/dispatch-proposal", headers=admin)
        assert r.status_code == 200, r.text
        p = r.json()
        assert p["rule"]["department"] is None  # imported: no rule proposal stored
        assert p["decision"] == {**p["decision"], "source": "model", "department": "D_LAMP"}
        assert p["decision"]["reason"].startswith("proposed by the model")
        assert p["model"]["candidates"][0]["reason"]
        with db.begin() as conn:  # a rule named a department: the rule wins, the model is heard
            conn.execute(text("UPDATE case_record SET proposed_department = 'D_ROADS', "
                              "proposal_rule = 'P0120 city-wide → D_ROADS' WHERE id = :i"),
                         {"i": lamp})
        p = client.get(f"/cases/{lamp}/dispatch-proposal", headers=admin).json()
        assert p["decision"]["source"] == "rule" and p["decision"]["department"] == "D_ROADS"
        assert "the model would propose D_LAMP" in p["decision"]["reason"]
        # dispatches taken since the model was trained reach its case memory at once
        with db.begin() as conn:
            later = conn.execute(text(
                "SELECT id FROM case_record WHERE category_key = 'P0120' AND grid_code = :g "
                "ORDER BY created_at DESC LIMIT 1"), {"g": GRID_002}).scalar_one()
            for _ in range(30):
                conn.execute(text(
                    "INSERT INTO case_history (case_id, at, actor, role, action, from_state, "
                    "to_state, details) VALUES (:c, now(), 'd1', 'dispatcher', 'dispatch', "
                    "'registered', 'dispatched', '{\"chosen\": \"D_WATER\"}')"), {"c": later})
        p = client.get(f"/cases/{later}/dispatch-proposal", headers=admin).json()
        assert "learnt 30 dispatch steps" in p["model_note"]
        assert "D_WATER" in [c["department"] for c in p["model"]["candidates"]]
        worker = _as(client, db, "w1", "grid_worker", areas=(GRID_001,))
        assert client.get(f"/cases/{lamp}/dispatch-proposal",
                          headers=worker).status_code == 403
        # similar cases: a worker of grid 001 sees only cases of grid 001
        r = client.get(f"/cases/{lamp}/similar", headers=worker)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert len(items) == 10 and {i["grid_code"] for i in items} == {GRID_001}
        assert items[0]["category"] == "P0120" and items[0]["outcome"]["reply"]
        assert client.get(f"/cases/{east}/similar", headers=worker).status_code == 404
        assert {i["grid_code"] for i in client.get(
            f"/cases/{lamp}/similar", headers=admin).json()["items"]} == {GRID_001, GRID_002}
        # the forecast: grid level, the worker's own grid only; lamps in grid 001 lead
        r = client.get("/forecast", params={"level": "grid"}, headers=worker)
        assert r.status_code == 200, r.text
        rows = r.json()["items"]
        assert rows and {x["area_code"] for x in rows} == {GRID_001}
        everyone = client.get("/forecast", params={"level": "grid"}, headers=admin).json()
        assert {x["area_code"] for x in everyone["items"]} == {GRID_001, GRID_002}
        assert client.get("/forecast", params={"level": "street"},
                          headers=admin).status_code == 422
        r = client.get("/forecast", params={"format": "geojson", "level": "grid"},
                       headers=worker)
        assert r.headers["content-type"].startswith("application/geo+json")
        layer = r.json()
        assert layer["type"] == "FeatureCollection" and layer["features"]
        assert all(f["geometry"]["type"] == "MultiPolygon" for f in layer["features"])
        assert {f["properties"]["area_code"] for f in layer["features"]} == {GRID_001}
