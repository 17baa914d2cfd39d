"""Group filing (group commit): reports filed together share one read and one write, and each
still gets its own case or its own error; the event loop's grouping (``api.intake_groups``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gridcore.errors import Conflict, OutsideManagedArea, ValidationError
from gridcore.intake import Filing, Report, check_photo
from layers.cases.intake import Intake, IntakeResult
from layers.cases.unwritten import unwritten
from layers.cases.write import write_cases
from layers.db.engine import autocommit
from layers.grids.resolver import Resolver
from tests.support.cases import INSIDE_001, INSIDE_002, LAMP, OUTSIDE, key, plant, settings
from tests.support.database import row_counts


@pytest.fixture
def city(db, tmp_path):  # type: ignore[no-untyped-def]
    plant(db)
    return db, Intake(db, Resolver(db), settings(tmp_path))


def filing(point=INSIDE_001, category="E0103", k=None, **kw):  # type: ignore[no-untyped-def]
    return Filing(Report(k or key(), category, *point, source="grid_worker", **kw), "W1",
                  "grid_worker")


def test_a_group_is_one_transaction_and_each_report_its_own_case(city) -> None:  # type: ignore[no-untyped-def]
    db, intake = city
    near_lamp = (LAMP[0] + 0.00005, LAMP[1])
    group = [filing(INSIDE_001), filing(INSIDE_002), filing(near_lamp, "P0120")]
    out = intake.file(group)
    assert all(isinstance(o, IntakeResult) and o.created for o in out)
    cases = [o.case for o in out if isinstance(o, IntakeResult)]
    assert len({c["id"] for c in cases}) == 3
    # Each answer is its own report's: the same as filing it alone would give.
    assert cases[0]["proposal"]["department"] == "D_GRID"
    assert cases[1]["proposal"]["department"] == "D_STREET"
    assert cases[2]["part_code"] == "1101010120000001"
    assert cases[2]["proposal"]["department"] == "D_LAMP"  # the lamp's maintenance unit
    alone = intake.file_report(filing(INSIDE_001).report).case
    assert alone["grid_code"] == cases[0]["grid_code"]
    assert alone["proposal"] == cases[0]["proposal"]
    with db.connect() as conn:
        # One write statement: the three cases, their history and audit rows commit together.
        txids = conn.execute(text(
            "SELECT count(DISTINCT xmin::text) FROM case_record WHERE id = ANY(:ids)"),
            {"ids": [c["id"] for c in cases]}).scalar_one()
        history = conn.execute(text(
            "SELECT count(*) FROM case_history WHERE case_id = ANY(:ids)"),
            {"ids": [c["id"] for c in cases]}).scalar_one()
        audits = conn.execute(text(
            "SELECT count(*) FROM audit_log WHERE target = ANY(:t)"),
            {"t": [f"case:{c['id']}" for c in cases]}).scalar_one()
    assert (txids, history, audits) == (1, 3, 3)


def test_bad_reports_in_a_group_get_their_own_errors_and_write_nothing(city) -> None:  # type: ignore[no-untyped-def]
    db, intake = city
    before = row_counts(db)
    group = [filing(INSIDE_001), filing(category="X9999"), filing(OUTSIDE),
             filing(INSIDE_002, crs="EPSG:99999"), filing(INSIDE_002)]
    out = intake.file(group)
    assert isinstance(out[0], IntakeResult) and isinstance(out[4], IntakeResult)
    assert isinstance(out[1], ValidationError) and out[1].details["field"] == "category"
    assert isinstance(out[2], OutsideManagedArea) and "outside every unit grid" in str(out[2])
    assert isinstance(out[3], ValidationError)
    after = row_counts(db)
    assert after["case_record"] - before["case_record"] == 2
    assert after["case_history"] - before["case_history"] == 2


def test_a_key_twice_in_one_group_is_a_resend(city) -> None:  # type: ignore[no-untyped-def]
    db, intake = city
    k = key()
    same = filing(INSIDE_001, k=k)
    out = intake.file([same, filing(INSIDE_002), same])
    assert isinstance(out[0], IntakeResult) and isinstance(out[2], IntakeResult)
    assert out[0].created and not out[2].created
    assert out[0].case["id"] == out[2].case["id"]
    other = filing(INSIDE_002, k=k)  # the same key with another payload
    out = intake.file([filing(INSIDE_001, k=k), other])
    assert isinstance(out[0], IntakeResult) and not out[0].created
    assert isinstance(out[1], Conflict)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_record WHERE idempotency_key = :k"),
                            {"k": k}).scalar_one() == 1


def test_a_failing_group_write_is_retried_report_by_report(city) -> None:  # type: ignore[no-untyped-def]
    """One record the database refuses (here a grid that does not exist) fails the group's
    statement; written again one by one, the others are stored and it alone gets the error."""
    db, intake = city
    good = intake.file_report(filing(INSIDE_001).report).case
    with db.connect() as conn:
        grid_id = conn.execute(text("SELECT grid_id FROM case_record WHERE id = :i"),
                               {"i": good["id"]}).scalar_one()

    def record(grid: int) -> dict:  # type: ignore[type-arg]
        with db.connect() as conn:  # the id intake's read reserves
            case_id = conn.execute(text("SELECT nextval('case_record_id_seq')")).scalar_one()
        return {"id": case_id, "key": key(), "hash": "0" * 64, "category": "E0103",
                "description": "", "lon": INSIDE_001[0], "lat": INSIDE_001[1], "crs": "EPSG:4326",
                "x": INSIDE_001[0], "y": INSIDE_001[1], "grid_id": grid,
                "grid_code": good["grid_code"], "source": "other", "reporter": "",
                "rule": "test", "now": datetime(2026, 1, 5, 1, tzinfo=UTC), "lim": "30m",
                "intake": {}, "actor": "t", "role": "system", "attachments": [],
                "details": {}, "audit": {}, "photos": [], "caller": "",
                "location_source": "point", "category_source": "reported"}

    records = [record(grid_id), record(-1), record(grid_id)]
    before = row_counts(db)
    with autocommit(db) as conn:
        out = write_cases(conn, records)
    assert isinstance(out[0], dict) and isinstance(out[2], dict)
    assert out[0]["created_at"] == records[0]["now"] and out[0]["version"] == 1
    assert isinstance(out[1], IntegrityError) and "grid_id" in str(out[1])
    after = row_counts(db)
    assert after["case_record"] - before["case_record"] == 2
    assert after["audit_log"] - before["audit_log"] == 2


def _duplicate_ids(outcome: object) -> list[int]:
    assert isinstance(outcome, IntakeResult), outcome
    return [d["case_id"] for d in outcome.case["duplicates"]]


def test_reports_filed_together_see_each_other_as_duplicates(city) -> None:  # type: ignore[no-untyped-def]
    """Reports of one group are worked out before any of them is written: a later one still
    lists an earlier one nearby as a duplicate candidate, under the id its case then gets."""
    db, intake = city
    near = (INSIDE_001[0] + 0.0002, INSIDE_001[1])  # about 17 m
    out = intake.file([
        filing(INSIDE_001, description="路面有大片油污"), filing(INSIDE_002),
        filing(near, description="路面油污很大一片")])
    first, far, third = (o.case for o in out if isinstance(o, IntakeResult))
    assert _duplicate_ids(out[0]) == [] and _duplicate_ids(out[1]) == []
    assert _duplicate_ids(out[2]) == [first["id"]]
    assert 10 < third["duplicates"][0]["distance_m"] < 25
    with db.connect() as conn:  # as stored, and the id names the case that was written
        stored = conn.execute(text("SELECT intake -> 'duplicates' FROM case_record WHERE id = :i"),
                              {"i": third["id"]}).scalar_one()
        written = conn.execute(text("SELECT description FROM case_record WHERE id = :i"),
                               {"i": first["id"]}).scalar_one()
    assert [d["case_id"] for d in stored] == [first["id"]]
    assert written == "路面有大片油污"
    assert len(unwritten(db)) == 0


def test_a_group_filed_while_another_writes_sees_its_cases(city) -> None:  # type: ignore[no-untyped-def]
    """The next group of a process reads while the previous one writes: the cases being
    written are not in the database yet, and are found all the same."""
    db, intake = city
    later: list[object] = []

    with intake.prepare([filing(INSIDE_001, description="路面有油污")]) as group:
        # the first group has worked out its case and not written it
        with db.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM case_record")).scalar_one() == 0
        later.extend(intake.file([filing(
            (INSIDE_001[0], INSIDE_001[1] + 0.0001), description="路面油污")]))
        first = group.write()[0]
    assert isinstance(first, IntakeResult) and first.created
    assert _duplicate_ids(later[0]) == [first.case["id"]]
    assert len(unwritten(db)) == 0


def test_a_failed_write_leaves_no_case_listed_as_unwritten(city, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db, intake = city

    def refuse(conn, records):  # type: ignore[no-untyped-def]
        assert len(unwritten(db)) == len(records) == 2
        raise RuntimeError("the database went away")

    monkeypatch.setattr("layers.cases.intake.write_cases", refuse)
    with pytest.raises(RuntimeError):
        intake.file([filing(INSIDE_001), filing(INSIDE_002)])
    assert len(unwritten(db)) == 0












def test_a_photo_that_cannot_be_stored_fails_only_its_report(city, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.cases import png_bytes

    db, intake = city
    (tmp_path / "media").write_text("a file where the media directory should be")
    intake = Intake(db, intake.resolver, settings(tmp_path))
    photo = check_photo("p.png", png_bytes(), 100_000)
    before = row_counts(db)
    out = intake.file([filing(INSIDE_001), filing(INSIDE_002, photos=[photo])])
    assert isinstance(out[0], IntakeResult) and out[0].created
    assert isinstance(out[1], OSError)
    after = row_counts(db)
    assert after["case_record"] - before["case_record"] == 1
    assert after["case_photo"] == before["case_photo"]
