"""The migrations of issue 18 after the field app's ``0010_field`` (``*_case_caller``, then
``*_audit_guard``): down to the revision before them and up again on a database of its own.
``case_record.filed_by`` (the signed-in user, 0010_field's) stays as it is; ``caller`` (who sent
the report: idempotency keys per caller, an API key's reads) goes and comes back, a signed-in
user's rebuilt from ``filed_by``."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from gridcore.intake import Filing, Report
from layers.cases.intake import Intake, IntakeResult
from layers.db.migrate import alembic_config, downgrade, migrate, upgrade
from layers.grids.resolver import Resolver
from tests.support.cases import INSIDE_001, key, plant, settings


@pytest.fixture
def own_db(empty_db: Engine) -> Engine:
    migrate(empty_db)
    return empty_db


def _before_caller(engine: Engine) -> str:
    """The revision the caller column's migration follows (it is renumbered on rebases)."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    found = next(r for r in script.walk_revisions() if r.revision.endswith("_case_caller"))
    assert isinstance(found.down_revision, str)
    return found.down_revision


def _columns(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'case_record'")).scalars())


def _callers(engine: Engine) -> dict[str | None, str]:
    with engine.connect() as conn:
        return {r.filed_by or r.reporter: r.caller for r in conn.execute(text(
            "SELECT filed_by, reporter, caller FROM case_record"))}


def test_caller_down_to_the_field_migration_and_up(own_db: Engine, tmp_path: Path) -> None:
    plant(own_db)
    intake = Intake(own_db, Resolver(own_db), settings(tmp_path))
    by_user = Filing(Report(key(), "E0103", *INSIDE_001, source="grid_worker", reporter="wang"),
                     "wang", "grid_worker", user="wang", caller="user:wang")
    by_key = Filing(Report(key(), "E0103", *INSIDE_001, source="open311", reporter="app"),
                    "key:gck_ab:app", "system", caller="key:gck_ab:app")
    assert all(isinstance(o, IntakeResult) for o in intake.file([by_user, by_key]))
    assert _callers(own_db) == {"wang": "user:wang", "app": "key:gck_ab:app"}

    assert _guards(own_db) == 1
    downgrade(own_db, _before_caller(own_db))
    assert "caller" not in _columns(own_db) and "filed_by" in _columns(own_db)
    assert _guards(own_db) == 0  # the audit log's TRUNCATE guard went with 0012

    upgrade(own_db)
    # the user's rebuilt from filed_by; the key's is unknown now: its replays are 409s
    assert _callers(own_db) == {"wang": "user:wang", "app": ""}
    assert _guards(own_db) == 1


def _guards(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_trigger "
                                     "WHERE tgname = 'audit_log_no_truncate'")).scalar_one())
