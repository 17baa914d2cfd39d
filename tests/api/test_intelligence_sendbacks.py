"""退单 as training signal (issue 22 §2), end to end: send-backs stored in the case history take
weight away from the department that sent them back, in that place only — both those taken since
the model was trained (fed live to every process's case memory) and those `gridcore learn`
reads from the history when it trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from layers.intelligence.learning import learn
from tests.support.cases import GRID_001, GRID_002, plant
from tests.support.database import serving
from tests.support.intel_planting import import_history
from tests.support.security import admin_headers

SENT_BACK = 40  # lamp cases of grid 001 that the lighting unit sent back


def _lamp(db: Engine, grid: str) -> int:
    with db.connect() as conn:
        return int(conn.execute(text(
            "SELECT id FROM case_record WHERE category_key = 'P0120' AND grid_code = :g "
            "ORDER BY created_at DESC LIMIT 1"), {"g": grid}).scalar_one())


def _lamp_unit(client: TestClient, headers: dict[str, str], case_id: int) -> dict[str, Any]:
    """D_LAMP's candidate in the case's dispatch proposal (probability, reason, evidence)."""
    r = client.get(f"/cases/{case_id}/dispatch-proposal", headers=headers)
    assert r.status_code == 200, r.text
    found = [c for c in r.json()["model"]["candidates"] if c["department"] == "D_LAMP"]
    return found[0] if found else {"probability": 0.0, "reason": "", "evidence": None}


def _sent_back(candidate: dict[str, Any]) -> int:
    return int((candidate["evidence"] or {}).get("sent_back") or 0)


def test_send_backs_take_weight_away_there_live_and_when_learning(db: Engine,
                                                                  tmp_path: Path) -> None:
    plant(db)
    import_history(db, tmp_path, weeks=60)
    (first,) = learn(db, ["dispatch"])
    assert first.activated, first.why
    west, east = _lamp(db, GRID_001), _lamp(db, GRID_002)
    with serving(db) as client:
        admin = admin_headers(client.app, db)
        before_west, before_east = _lamp_unit(client, admin, west), _lamp_unit(client, admin, east)
        assert before_west["probability"] > 0.5 and _sent_back(before_west) == 0
        # the lighting unit sends lamp cases of grid 001 back (退单), after the training
        with db.begin() as conn:
            sent = conn.execute(text(
                "SELECT id FROM case_record WHERE category_key = 'P0120' AND grid_code = :g "
                "AND id <> :w ORDER BY created_at DESC LIMIT :n"),
                {"g": GRID_001, "w": west, "n": SENT_BACK}).scalars().all()
            for case_id in sent:
                conn.execute(text(
                    "INSERT INTO case_history (case_id, at, actor, role, action, from_state, "
                    "to_state, details) VALUES (:c, now(), 'lamp1', 'department_handler', "
                    "'send_back', 'dispatched', 'registered', "
                    "'{\"refused_by\": \"D_LAMP\"}')"), {"c": case_id})
                conn.execute(text("UPDATE case_record SET refused_departments = '{D_LAMP}' "
                                  "WHERE id = :c"), {"c": case_id})
        live_west, live_east = _lamp_unit(client, admin, west), _lamp_unit(client, admin, east)
    west_drop = before_west["probability"] - live_west["probability"]
    assert west_drop > 0
    assert _sent_back(live_west) == SENT_BACK and "sent back" in live_west["reason"]
    # grid 002 (the same community): no send-backs in the grid itself, a smaller loss
    assert _sent_back(live_east) == 0
    assert before_east["probability"] - live_east["probability"] < west_drop
    # trained again: the send-backs now come from the stored history, not the live feed
    (second,) = learn(db, ["dispatch"], force=True)
    assert second.activated
    with serving(db) as fresh:  # a process that never saw the live steps
        admin = admin_headers(fresh.app, db)
        proposal = fresh.get(f"/cases/{west}/dispatch-proposal", headers=admin).json()
        assert "learnt 0 dispatch steps" in proposal["model_note"]
        learnt_west = _lamp_unit(fresh, admin, west)
        learnt_east = _lamp_unit(fresh, admin, east)
    assert _sent_back(learnt_west) == SENT_BACK
    assert before_west["probability"] - learnt_west["probability"] > \
        before_east["probability"] - learnt_east["probability"]
    assert _sent_back(learnt_east) == 0
