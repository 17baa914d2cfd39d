"""The NOTIFY of intake's case events comes after the write's commit, once (migration 0024):
inside the write it held PostgreSQL's cluster-wide notify lock through the commit's WAL flush.
Every other writer of events is still notified by the trigger, also later in a transaction
that filed reports."""

from __future__ import annotations

import select
import time
from typing import Any

import pytest
from sqlalchemy import text

from gridcore.intake import Filing, Report
from layers.cases.intake import Intake, IntakeResult
from layers.cases.write import write_cases
from layers.grids.resolver import Resolver
from layers.schema.notifications import CHANNEL
from tests.support.cases import INSIDE_001, INSIDE_002, key, plant, settings


@pytest.fixture
def city(db, tmp_path):  # type: ignore[no-untyped-def]
    plant(db)
    return db, Intake(db, Resolver(db), settings(tmp_path))


@pytest.fixture
def listening(db):  # type: ignore[no-untyped-def]
    raw = db.raw_connection()
    raw.detach()  # its own for good: never back in the pool, autocommit and listening
    conn: Any = raw.dbapi_connection
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"LISTEN {CHANNEL}")
    yield conn
    conn.close()


def _payloads(conn: Any, wait_s: float = 1.0) -> list[str]:
    """Every notification that arrives within ``wait_s`` (the tail is waited for: a second
    NOTIFY of the same events would come right after the first)."""
    got: list[str] = []
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        if select.select([conn], [], [], left)[0]:
            conn.poll()
            while conn.notifies:
                got.append(conn.notifies.pop(0).payload)
    return got


def _event_ids(db: Any, case_ids: list[int]) -> list[int]:  # noqa: ANN401
    with db.connect() as conn:
        return [int(r[0]) for r in conn.execute(text(
            "SELECT id FROM case_event WHERE case_id = ANY(:c) ORDER BY id"), {"c": case_ids})]


def _filing(point: tuple[float, float]) -> Filing:
    return Filing(Report(key(), "E0103", *point, source="grid_worker"), "W1", "grid_worker")


def test_a_filed_group_is_notified_once_after_its_commit(city, listening) -> None:  # type: ignore[no-untyped-def]
    db, intake = city
    out = intake.file([_filing(INSIDE_001), _filing(INSIDE_002)])
    assert all(isinstance(o, IntakeResult) for o in out)
    ids = _event_ids(db, [o.case["id"] for o in out if isinstance(o, IntakeResult)])
    assert len(ids) == 2
    # one NOTIFY naming both events: the trigger left it to the writer (two if it had not)
    assert _payloads(listening) == [",".join(map(str, ids))]


def test_other_writers_are_notified_by_the_trigger(city, listening) -> None:  # type: ignore[no-untyped-def]
    db, intake = city
    case = intake.file_report(_filing(INSIDE_001).report).case
    assert len(_payloads(listening)) == 1  # the report's
    with db.begin() as conn:
        new = conn.execute(text(
            "INSERT INTO case_event (kind, case_id, actor) VALUES ('verified', :c, 't') "
            "RETURNING id"), {"c": case["id"]}).scalar_one()
    assert _payloads(listening) == [str(new)]


def test_in_a_transaction_later_events_are_still_notified(city, listening) -> None:  # type: ignore[no-untyped-def]
    """write_cases inside a caller's transaction: its NOTIFY goes with that commit, and the
    trigger is back on for the transaction's later statements."""
    db, intake = city
    template = intake.file_report(_filing(INSIDE_001).report).case
    _payloads(listening)
    with db.begin() as conn:
        grid_id = conn.execute(text("SELECT grid_id FROM case_record WHERE id = :i"),
                               {"i": template["id"]}).scalar_one()
        case_id = conn.execute(text("SELECT nextval('case_record_id_seq')")).scalar_one()
        stored = write_cases(conn, [{
            "id": case_id, "key": key(), "hash": "0" * 64, "category": "E0103",
            "description": "", "lon": INSIDE_001[0], "lat": INSIDE_001[1],
            "crs": "EPSG:4326", "x": INSIDE_001[0], "y": INSIDE_001[1], "grid_id": grid_id,
            "grid_code": template["grid_code"], "source": "other", "reporter": "",
            "rule": "test", "now": template["created_at"], "lim": "30m", "intake": {},
            "actor": "t", "role": "system", "attachments": [], "details": {}, "audit": {},
            "photos": [], "caller": "", "location_source": "point",
            "category_source": "reported"}])
        assert isinstance(stored[0], dict)
        later = conn.execute(text(
            "INSERT INTO case_event (kind, case_id, actor) VALUES ('verified', :c, 't') "
            "RETURNING id"), {"c": case_id}).scalar_one()
        assert _payloads(listening, 0.3) == []  # nothing before the commit
    first = _event_ids(db, [case_id])[0]
    assert sorted(_payloads(listening)) == sorted([str(first), str(later)])
