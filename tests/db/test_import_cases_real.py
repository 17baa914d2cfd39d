"""gridcore import cases on the real files (../shared/data, read in place): SF 311 with its
agencies and the city's mapping table, SeeClickFix with its own time format, the Chinese
hotline messages with the government's replies as handling notes (no location at all)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gridcore.errors import ImportRejected
from layers.exchange.imports import CaseFields, import_cases, import_departments
from tests.support.data import shared_file
from tests.support.imports import load_sf
from tests.support.legacy import (
    HOTLINE_LABELLED,
    HOTLINE_OPTIONS,
    HOTLINE_REPLIES,
    SCF_CASES,
    SCF_OPTIONS,
    SCF_TIME_FORMAT,
    SCF_TYPES,
    SF_CASES,
    SF_OPTIONS,
    write_mapping,
    write_sf_departments,
    write_sf_mapping,
)


def count(db, sql: str, **params) -> int:  # type: ignore[no-untyped-def]
    with db.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_sf311_history_with_agencies_and_places(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    load_sf(db)
    import_departments(db, write_sf_departments(tmp_path))
    report = import_cases(db, shared_file(SF_CASES), system="sf311",
                          fields=CaseFields(**SF_OPTIONS), mapping=write_sf_mapping(tmp_path),
                          unmapped="other", timezone="America/Los_Angeles")
    assert report.inserted == 4984
    assert any("55 cases closed before they were opened" in n for n in report.notes)
    assert count(db, "SELECT count(*) FROM case_record WHERE grid_code IS NULL") == 0
    assert count(db, "SELECT count(DISTINCT department_code) FROM case_record") == 122
    assert count(db, "SELECT count(*) FROM case_record WHERE state = 'closed'") == 4762
    assert count(db, "SELECT count(*) FROM case_history WHERE action = 'imported'") == 4984
    # the place: the census tract a case lies in is the grid it gets
    assert count(db, "SELECT count(*) FROM case_record c JOIN unit_grid g ON g.code = "
                     "c.grid_code AND g.gen_to IS NULL WHERE NOT ST_Covers(g.geom, c.geom)") == 0
    again = import_cases(db, shared_file(SF_CASES), system="sf311",
                         fields=CaseFields(**SF_OPTIONS), mapping=write_sf_mapping(tmp_path),
                         unmapped="other", timezone="America/Los_Angeles")
    assert (again.inserted, again.unchanged) == (0, 4984)


def test_seeclickfix_reports_with_their_time_format(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = import_cases(db, shared_file(SCF_CASES), system="seeclickfix",
                          fields=CaseFields(**SCF_OPTIONS),
                          mapping=write_mapping(tmp_path, "scf.csv", SCF_TYPES),
                          unmapped="other", timezone="America/New_York",
                          time_format=SCF_TIME_FORMAT)
    assert report.inserted == 5729
    assert any("outside every unit grid" in n for n in report.notes)  # no grids planted
    assert count(db, "SELECT count(*) FROM case_record WHERE category_key = 'E0401'") == 1366
    assert count(db, "SELECT count(*) FROM case_record WHERE state = 'closed'") == 240
    assert count(db, "SELECT count(*) FROM case_record WHERE geom IS NULL") == 0


def test_hotline_messages_with_replies_as_handling_notes(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImportRejected, match="every case would be E9999"):
        import_cases(db, shared_file(HOTLINE_REPLIES), system="hotline",
                     fields=CaseFields(**HOTLINE_OPTIONS))
    report = import_cases(db, shared_file(HOTLINE_REPLIES), system="hotline",
                          fields=CaseFields(**HOTLINE_OPTIONS), unmapped="other")
    assert report.inserted == 2816
    assert count(db, "SELECT count(*) FROM case_record WHERE geom IS NULL AND state = "
                     "'closed' AND closed_at > created_at AND origin->>'notes' <> ''") == 2816
    # the labelled release repeats one message id: a real bad row, named, nothing written
    with pytest.raises(ImportRejected) as refused:
        import_cases(db, shared_file(HOTLINE_LABELLED), system="hotline-labelled",
                     fields=CaseFields(id_field="msg_id", opened_field="time",
                                       text_fields=("title", "detail"),
                                       category_field="label_l1"), unmapped="other")
    assert any("duplicate code" in p["reason"] and p["field"] == "msg_id"
               for p in refused.value.problems)
    assert count(db, "SELECT count(*) FROM case_record") == 2816
