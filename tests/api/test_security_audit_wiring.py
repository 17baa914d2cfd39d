"""Every write path that exists is audited inside its own transaction: case intake, each
lifecycle step, and imports from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from gridcore.cli import app as cli
from gridcore.settings import Settings
from layers.security import audit
from tests.support.cases import INSIDE_001, OUTSIDE, plant, settings
from tests.support.database import serving

WORKER = {"X-Actor": "wang", "X-Role": "grid_worker"}
DESK = {"X-Actor": "li", "X-Role": "dispatcher"}


@pytest.fixture
def api(db: Engine, tmp_path: Path) -> Iterator[TestClient]:
    plant(db)
    with serving(db, Settings(cases=settings(tmp_path))) as client:
        yield client


def _post(api: TestClient, key: str, where: tuple[float, float]):  # type: ignore[no-untyped-def]
    return api.post("/cases", headers=WORKER, json={
        "idempotency_key": key, "category": "E0103", "lon": where[0], "lat": where[1]})


def test_case_writes_are_audited_with_their_transaction(api: TestClient, db: Engine) -> None:
    created = _post(api, "a-1", INSIDE_001)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert _post(api, "a-1", INSIDE_001).status_code == 200  # a resend writes nothing new
    assert _post(api, "a-2", OUTSIDE).status_code == 422  # refused: no case, no audit row
    assert api.post(f"/cases/{cid}/verify", headers=WORKER).status_code == 200
    assert api.post(f"/cases/{cid}/close", headers=DESK).status_code == 409  # illegal: none
    rows = [(r["actor"], r["action"], r["target"]) for r in reversed(audit.recent(db))]
    assert rows == [("wang", "case.report", f"case:{cid}"), ("wang", "case.verify",
                                                            f"case:{cid}")]
    last = audit.recent(db, limit=1)[0]
    assert last["details"] == {"role": "grid_worker", "from": "reported", "to": "verified"}
    assert audit.verify(db).ok


def test_command_line_imports_are_audited(db: Engine, cli_env: dict[str, str],
                                          tmp_path: Path) -> None:
    csv = tmp_path / "departments.csv"
    csv.write_text("code,name\nD_A,市政\nD_B,水务\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["import", "departments", str(csv)], env=cli_env)
    assert result.exit_code == 0, result.output
    row = audit.recent(db, limit=1)[0]
    assert row["action"] == "import.departments" and row["target"] == str(csv)
    assert row["actor"].startswith("cli:") and audit.verify(db).ok
