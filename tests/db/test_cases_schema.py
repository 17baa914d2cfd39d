"""Migration 0002_cases: up and down on a database of its own; history is append-only; the
cases layer version moves with every write to case_record."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from layers.db.migrate import downgrade, migrate, upgrade


@pytest.fixture
def own_db(empty_db):  # type: ignore[no-untyped-def]
    migrate(empty_db)
    return empty_db


def _exists(engine, table: str) -> bool:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is not None


def test_down_and_up_again(own_db) -> None:  # type: ignore[no-untyped-def]
    assert all(_exists(own_db, t) for t in ("case_record", "case_history", "case_photo"))
    downgrade(own_db, "0001_foundation")
    assert not any(_exists(own_db, t) for t in ("case_record", "case_history", "case_photo"))
    with own_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM layer_version WHERE layer = 'cases'")
                            ).scalar() == 0
    upgrade(own_db)
    assert _exists(own_db, "case_record")


def test_history_append_only_and_layer_version(own_db) -> None:  # type: ignore[no-untyped-def]
    from gridcore.intake import Report
    from layers.cases.intake import Intake
    from layers.grids.resolver import Resolver
    from tests.support.cases import INSIDE_001, key, plant
    from tests.support.cases import settings as case_settings

    plant(own_db)
    with own_db.connect() as conn:
        before = conn.execute(text(
            "SELECT version FROM layer_version WHERE layer = 'cases'")).scalar()
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        Intake(own_db, Resolver(own_db), case_settings(Path(tmp))).file_report(
               Report(key(), "E0103", *INSIDE_001))
    with own_db.connect() as conn:
        after = conn.execute(text(
            "SELECT version FROM layer_version WHERE layer = 'cases'")).scalar()
    assert after == before + 1
    for sql in ("UPDATE case_history SET reason = 'changed'", "DELETE FROM case_history"):
        with pytest.raises(DBAPIError, match="append-only"), own_db.begin() as conn:
            conn.execute(text(sql))
    with own_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_history")).scalar() == 1
