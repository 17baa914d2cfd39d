"""``gridcore archive --before DATE`` and ``gridcore db restore FILE``: whole years of settled
cases, with every dependent row, to a file and back; refusals that name the partition and lose
nothing."""

from __future__ import annotations

import json
import tarfile
from datetime import date
from pathlib import Path

import h3
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gridcore.errors import Conflict, ValidationError
from layers.cases.archive import archive, dependants, is_archive, restore
from layers.db.migrate import migrate
from layers.ogc import case_cells
from tests.db.test_case_partitions import file_cases, partitions, plant_old, snapshot
from tests.support.cases import plant


@pytest.fixture
def own_db(empty_db: Engine) -> Engine:
    migrate(empty_db)
    return empty_db


def _populate(engine: Engine, tmp_path: Path) -> None:
    plant(engine)
    plant_old(engine, 2021, 4)
    plant_old(engine, 2022, 3)
    with engine.begin() as conn:
        conn.execute(text("SELECT gridcore_case_partitions('2021-01-01', '2022-12-31')"))
        # their H3 cell, so the case tiles' settled counts (case_cell) hold them
        conn.execute(text("UPDATE case_record SET h3 = :c WHERE idempotency_key LIKE 'old-%'"),
                     {"c": h3.latlng_to_cell(39.902, 116.402, 11)})
        # a photo record of an old case, hanging on its history row too
        conn.execute(text(
            "INSERT INTO case_photo (case_id, path, sha256, content_type, size_bytes, "
            "history_id) SELECT h.case_id, 'old/1.jpg', repeat('a', 64), 'image/jpeg', 10, h.id "
            "FROM case_history h JOIN case_record c ON c.id = h.case_id "
            "WHERE c.idempotency_key = 'old-2021-1'"))
        # a report of 2021 merged into another one of 2021
        conn.execute(text(
            "UPDATE case_record SET state = 'merged', primary_case_id = (SELECT id FROM "
            "case_record WHERE idempotency_key = 'old-2021-4') "
            "WHERE idempotency_key = 'old-2021-1'"))
    file_cases(engine, tmp_path, 2)  # this year's, open


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in ("case_record", "case_key", "case_history", "case_photo")}


def test_archive_and_restore_whole_years(own_db: Engine, tmp_path: Path) -> None:
    _populate(own_db, tmp_path)
    before = snapshot(own_db)
    tables = [d.table for d in dependants(own_db.connect())]
    assert tables.index("case_history") < tables.index("case_photo")  # parents first

    path = tmp_path / "old.gcarchive"
    report = archive(own_db, date(2023, 1, 1), path, actor="cli:test")
    assert report.partitions == ["case_record_y2021", "case_record_y2022"]
    assert report.rows["case_record"] == 7 and report.rows["case_history"] == 7
    assert report.rows["case_photo"] == 1
    assert "case_record_y2021" not in partitions(own_db)
    assert _counts(own_db) == {"case_record": 2, "case_key": 2, "case_history": 2,
                               "case_photo": 0}
    cells = case_cells.check(own_db)  # the tiles' settled counts lost the archived cases
    assert cells.ok, cells.as_dict()
    assert is_archive(path)
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest["format"] == "gridcore-case-archive"
    assert [t["name"] for t in manifest["tables"]][0] == "case_record"
    with own_db.connect() as conn:
        audited = conn.execute(text("SELECT actor, details FROM audit_log "
                                    "WHERE action = 'case.archive'")).one()
        assert audited[0] == "cli:test" and audited[1]["rows"]["case_record"] == 7
        assert conn.execute(text("SELECT count(*) FROM case_archive WHERE restored_at IS NULL")
                            ).scalar_one() == 1

    rows = restore(own_db, path, actor="cli:test")
    assert rows["case_record"] == 7
    assert snapshot(own_db) == before
    assert partitions(own_db)["case_record_y2021"] == 4
    assert case_cells.check(own_db).ok
    with own_db.connect() as conn:
        assert conn.execute(text("SELECT sum(settled) FROM case_cell WHERE res = 8")
                            ).scalar_one() >= 6
    with own_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_archive WHERE restored_at IS NULL")
                            ).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'case.restore'")
                            ).scalar_one() == 1
    # a second restore would mix the years with themselves: refused, nothing changed
    with pytest.raises(Conflict, match="case_record_y2021 already holds 4"):
        restore(own_db, path)
    assert snapshot(own_db) == before


def test_refusals_name_the_partition_and_lose_nothing(own_db: Engine, tmp_path: Path) -> None:
    _populate(own_db, tmp_path)
    before = snapshot(own_db)
    path = tmp_path / "a.gcarchive"
    with pytest.raises(ValidationError, match="2022-06-01 cuts partition case_record_y2022"):
        archive(own_db, date(2022, 6, 1), path)
    with own_db.begin() as conn:  # an open case in 2022
        conn.execute(text("UPDATE case_record SET state = 'dispatched' "
                          "WHERE idempotency_key = 'old-2022-2'"))
    with pytest.raises(Conflict, match="partition case_record_y2022 holds 1 open case"):
        archive(own_db, date(2023, 1, 1), path)
    assert not path.exists() and not path.with_name(path.name + ".partial").exists()
    with own_db.begin() as conn:
        conn.execute(text("UPDATE case_record SET state = 'closed' "
                          "WHERE idempotency_key = 'old-2022-2'"))
    assert snapshot(own_db) == before
    # nothing before 2021: nothing to do, no file
    assert archive(own_db, date(2021, 1, 1), path).partitions == []
    assert not path.exists()
    # a damaged archive is refused before anything is loaded
    archive(own_db, date(2022, 1, 1), path)
    data = bytearray(path.read_bytes())
    data[700] ^= 0xFF
    damaged = tmp_path / "damaged.gcarchive"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValidationError):
        restore(own_db, damaged)
    assert "case_record_y2021" not in partitions(own_db)


def test_archive_command_refuses_a_bad_date(tmp_path: Path) -> None:
    from gridcore.cli import app

    result = CliRunner().invoke(app, ["archive", "--before", "last year"])
    assert result.exit_code == 2 and "is not a date" in result.output
