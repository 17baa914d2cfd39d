"""gridcore import cases: a legacy system's history — mapping, unmapped values, bad rows (nothing
written), re-import updates instead of duplicating, places and times, the real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gridcore.cli import app
from gridcore.errors import ImportRejected
from layers.exchange.imports import CaseFields, import_cases
from tests.support.cases import GRID_001, GRID_002, INSIDE_001, INSIDE_002, OUTSIDE, plant
from tests.support.database import row_counts

FIELDS = CaseFields(id_field="ticket", opened_field="opened", closed_field="closed",
                    text_fields=("title", "body"), category_field="type",
                    department_field="dept", state_field="status", source_field="channel",
                    address_field="addr", notes_field="reply")
HEADER = "ticket,opened,closed,title,body,type,dept,status,channel,addr,reply,lon,lat\n"
MAPPING = ("kind,value,code\ncategory,Dirty street,E0103\ncategory,Lamp out,P0120\n"
           "department,Street cleaning,D_CITY\ndepartment,Lighting unit,D_ROADS\n"
           "source,Phone,hotline\n")


def rows(*lines: str) -> str:
    return HEADER + "".join(line + "\n" for line in lines)


def good_file(tmp: Path) -> Path:
    (lon1, lat1), (lon2, lat2), (lon3, lat3) = INSIDE_001, INSIDE_002, OUTSIDE
    path = tmp / "legacy.csv"
    path.write_text(rows(
        f"A-1,2024-03-01 09:00,2024-03-02 10:30,Dirty,litter everywhere,Dirty street,"
        f"Street cleaning,Closed,Phone,1 Main St,swept the street,{lon1},{lat1}",
        f"A-2,2024-03-05 22:15,,Lamp,lamp out at night,Lamp out,Lighting unit,Open,Web,,"
        f",{lon2},{lat2}",
        f"A-3,2024-03-06 08:00,2024-03-06 09:00,Far away,,Dirty street,Street cleaning,Closed,"
        f"Phone,,,{lon3},{lat3}",
        "A-4,2024-03-07 12:00,2024-03-08 12:00,No place,a message without location,"
        "Dirty street,,已办结,,,已回复,,"), encoding="utf-8")
    return path


def mapping_file(tmp: Path, text_: str = MAPPING, name: str = "mapping.csv") -> Path:
    path = tmp / name
    path.write_text(text_, encoding="utf-8")
    return path


def load(db, tmp: Path, path: Path | None = None, **kw):  # type: ignore[no-untyped-def]
    options = {"system": "old311", "fields": FIELDS, "mapping": mapping_file(tmp),
               "timezone": "Asia/Shanghai"} | kw
    return import_cases(db, path or good_file(tmp), **options)


def case_rows(db) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    with db.connect() as conn:
        found = conn.execute(text(
            "SELECT c.*, ST_X(geom) AS lon FROM case_record c ORDER BY source_id")).mappings()
        return {r["source_id"]: dict(r) for r in found}


def test_cases_keep_their_times_state_place_and_one_history_row(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plant(db)
    report = load(db, tmp_path)
    assert (report.inserted, report.updated, report.unchanged) == (4, 0, 0)
    assert any("outside every unit grid" in n for n in report.notes)
    assert any("no location" in n or "without coordinates" in n for n in report.notes)
    cases = case_rows(db)
    a1, a2, a3, a4 = (cases[k] for k in ("A-1", "A-2", "A-3", "A-4"))
    assert (a1["category_key"], a1["department_code"], a1["state"]) == ("E0103", "D_CITY",
                                                                        "closed")
    assert a1["grid_code"] == GRID_001 and a1["community_code"] == GRID_001[:12]
    assert a1["street_code"] == GRID_001[:9] and a1["district_code"] == GRID_001[:6]
    assert a1["h3"] and a1["source"] == "hotline" and a1["category_source"] == "imported"
    assert a1["description"] == "Dirty\nlitter everywhere"
    # local Shanghai times kept as the instants they were
    assert a1["created_at"].isoformat() == "2024-03-01T01:00:00+00:00"
    assert a1["closed_at"].isoformat() == "2024-03-02T02:30:00+00:00"
    assert a1["origin"]["notes"] == "swept the street"
    assert a1["origin"]["category"] == "Dirty street" and a1["origin"]["address"] == "1 Main St"
    # still open there, with a department: dispatched; a channel gridcore has no name for
    assert (a2["state"], a2["grid_code"], a2["source"]) == ("dispatched", GRID_002, "other")
    assert a2["origin"]["source"] == "Web" and a2["closed_at"] is None
    assert a3["grid_code"] is None and a3["lon"] is not None  # outside: no grid, located
    assert a4["geom"] is None and a4["grid_code"] is None  # no location at all
    assert a4["state"] == "closed" and a4["department_code"] is None  # 已办结: closed
    with db.connect() as conn:
        history = conn.execute(text(
            "SELECT case_id, action, to_state, at, actor FROM case_history ORDER BY case_id"
        )).all()
    assert [h.action for h in history] == ["imported"] * 4
    assert history[0].at == a1["created_at"]  # dated when the legacy system opened it


def test_imported_cases_are_visible_in_queries_and_health(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from gridcore.health import Window
    from gridcore.settings import CaseSettings
    from layers.cases.queries import CaseFilter, get_case, list_cases
    from layers.health.scores import aggregate

    plant(db)
    load(db, tmp_path)
    settings = CaseSettings(media_dir=tmp_path, calendar="weekdays")
    listed, _ = list_cases(db, settings, CaseFilter(grid=GRID_001))
    assert [c["imported"]["id"] for c in listed] == ["A-1"]
    one = get_case(db, settings, listed[0]["id"])
    assert one["category_source"] == "imported" and one["imported"]["system"] == "old311"
    assert [h["action"] for h in one["history"]] == ["imported"]
    window = Window.parse("2024-02-01/2024-04-01", datetime(2024, 5, 1, tzinfo=UTC))
    with db.connect() as conn:
        agg = aggregate(conn, window, "grid", settings.working_calendar)
    row = agg.row(GRID_001)
    assert (row["cases"], row["registered"], row["closed"]) == (1, 1, 1)
    assert row["handling_mean_h"] is not None and row["handling_mean_h"] > 0


def test_imported_cases_count_in_the_evaluation(db, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """考评 of a month of imported history: the "imported" row stands for the registration, as
    in city health — the same from the stored facts and from a recount of the history."""
    from gridcore.calendar import WorkingCalendar
    from gridcore.evaluation import EvaluationModel, Period
    from layers.evaluation import store
    from layers.evaluation.evaluate import evaluate

    plant(db)
    load(db, tmp_path)
    model, cal = EvaluationModel.default(), WorkingCalendar.chinese()
    wanted = [("area", "community"), ("department", None)]
    stored = evaluate(db, model, Period.parse("2024-03"), cal, wanted)
    with db.connect() as conn:
        assert store.usable(conn, cal, model)  # read from the stored facts
    with db.begin() as conn:  # no stored facts, too big to rebuild: recount the history
        conn.execute(text("DELETE FROM case_eval_basis"))
    monkeypatch.setattr(store, "AUTO_REBUILD_MAX", 0)
    recount = evaluate(db, model, Period.parse("2024-03"), cal, wanted)
    for ev in (stored, recount):
        # A-1 (grid 001, opened 1 Mar, closed 2 Mar) and A-2 (grid 002, opened 5 Mar, still
        # dispatched) in community 110101001001; have no grid
        area = ev["area:community"].counts[GRID_001[:12]]
        assert (area["registered"], area["closed"], area["caller_cases"]) == (2, 1, 1)
        # no dispatch or feedback step was imported: nothing for a department to answer for
        assert ev["department"].counts["D_CITY"]["handled"] == 0
    with db.connect() as conn:
        assert not store.usable(conn, cal, model)
    monkeypatch.undo()
    assert store.check(db, cal, model).ok


def test_the_board_says_which_cases_of_a_period_were_imported(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Imported cases bring no dispatch or handling step: the ranking of a period that holds
    them says how many and from which system, in the caller's language; other periods say
    nothing."""
    from api.security.identity import issue_token
    from layers.security.users import add_user
    from tests.support.database import serving

    plant(db)
    load(db, tmp_path)
    add_user(db, "mgr", "a-long-test-password", "manager")
    with serving(db) as client:
        token, _ = issue_token(client.app.state.settings.security, "mgr", "manager",
                               minutes=30)
        headers = {"Authorization": f"Bearer {token}"}
        march = client.get("/evaluation/department", params={"period": "2024-03",
                                                              "lang": "zh-CN"}, headers=headers)
        assert march.status_code == 200, march.text
        imported = march.json()["imported"]
        assert imported["cases"] == 4 and imported["systems"] == {"old311": 4}
        assert "4 件" in imported["note"] and "old311" in imported["note"]
        english = client.get("/evaluation/area", params={"period": "2024-03", "lang": "en",
                                                         "level": "community"},
                             headers=headers).json()["imported"]["note"]
        assert english.startswith("4 cases of this period were imported")
        may = client.get("/evaluation/department", params={"period": "2024-05"},
                         headers=headers)
        assert may.status_code == 200 and may.json()["imported"] is None


def test_unmapped_values_are_listed_with_counts_and_refused(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plant(db)
    path = tmp_path / "more.csv"
    path.write_text(rows("B-1,2024-03-01 09:00,,t,,Pothole,Street cleaning,Closed,,,,,",
                         "B-2,2024-03-01 10:00,,t,,Pothole,Roads dept,Closed,,,,,",
                         "B-3,2024-03-01 11:00,,t,,Lamp out,Roads dept,Pending review,,,,,"),
                    encoding="utf-8")
    before = row_counts(db)
    with pytest.raises(ImportRejected) as refused:
        load(db, tmp_path, path)
    problems = refused.value.problems
    reasons = [p["reason"] for p in problems]
    assert any("unmapped category 'Pothole': 2 cases" in r for r in reasons)
    assert any("unmapped department 'Roads dept': 2 cases" in r for r in reasons)
    assert any("unmapped state 'Pending review': 1 case" in r for r in reasons)
    assert {p["row"] for p in problems if "Pothole" in p["reason"]} == {1}  # first row
    assert row_counts(db) == before
    accepted = load(db, tmp_path, path, unmapped="other")
    assert accepted.inserted == 3
    assert any("'Pothole' (2)" in n and "E9999" in n for n in accepted.notes)
    cases = case_rows(db)
    assert cases["B-1"]["category_key"] == "E9999"
    assert cases["B-2"]["department_code"] is None
    assert cases["B-2"]["origin"]["department"] == "Roads dept"
    assert cases["B-3"]["state"] == "registered"  # unmapped state: still open, no department


def test_bad_rows_are_listed_by_row_and_nothing_is_written(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plant(db)
    path = tmp_path / "bad.csv"
    path.write_text(rows(
        "C-1,2024-03-01 09:00,,t,,Dirty street,,Closed,,,,116.40,39.90",
        "C-1,2024-03-01 09:00,,t,,Dirty street,,Closed,,,,116.40,39.90",  # duplicate id
        "C-3,yesterday noon,,t,,Dirty street,,Closed,,,,116.40,39.90",  # not a time
        "C-4,2024-03-01 09:00,,t,,Dirty street,,Closed,,,,east,39.90",  # not a number
        ",2024-03-01 09:00,,t,,Dirty street,,Closed,,,,116.40,39.90"), encoding="utf-8")
    before = row_counts(db)
    with pytest.raises(ImportRejected) as refused:
        load(db, tmp_path, path)
    assert row_counts(db) == before
    assert "row 4" in str(refused.value)  # the coordinates are checked while reading
    good = tmp_path / "bad2.csv"
    good.write_text(path.read_text().replace(",east,", ",116.40,"), encoding="utf-8")
    with pytest.raises(ImportRejected) as refused:
        load(db, tmp_path, good)
    found = {(p["row"], p["field"]) for p in refused.value.problems}
    assert {(2, "ticket"), (3, "opened"), (5, "ticket")} <= found
    assert row_counts(db) == before
    bad_map = mapping_file(tmp_path, "kind,value,code\ncategory,Dirty street,E0000\n"
                                     "colour,red,x\n", "bad_mapping.csv")
    with pytest.raises(ImportRejected) as refused:
        load(db, tmp_path, mapping=bad_map)
    assert {p["row"] for p in refused.value.problems} == {1, 2}
    assert row_counts(db) == before


def test_reimport_updates_instead_of_duplicating(db, tmp_path, cli_env) -> None:  # type: ignore[no-untyped-def]
    from gridcore.settings import CaseSettings
    from layers.cases.transitions import transition
    from layers.grids.resolver import Resolver

    plant(db)
    first = load(db, tmp_path)
    assert first.inserted == 4
    again = load(db, tmp_path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    # A-2 closed in the legacy system meanwhile; A-4 worked on in gridcore since the import
    a4 = case_rows(db)["A-4"]["id"]
    transition(db, CaseSettings(media_dir=tmp_path), Resolver(db), a4, "reopen", "wang",
               "manager", {"reason": "not solved"})
    path = good_file(tmp_path)
    changed = path.read_text().replace("Lamp out,Lighting unit,Open", "Lamp out,Lighting unit,"
                                                                      "Closed")
    changed = changed.replace("2024-03-05 22:15,,", "2024-03-05 22:15,2024-03-06 08:00,")
    changed = changed.replace("a message without location", "a message edited")
    path.write_text(changed, encoding="utf-8")
    third = load(db, tmp_path, path)
    assert (third.inserted, third.updated, third.unchanged, third.kept) == (0, 1, 2, 1)
    cases = case_rows(db)
    assert len(cases) == 4
    assert cases["A-2"]["state"] == "closed" and cases["A-2"]["version"] == 2
    assert cases["A-4"]["description"] == "No place\na message without location"  # kept
    with db.connect() as conn:
        history = conn.execute(text(
            "SELECT action, from_state, to_state FROM case_history WHERE case_id = :c "
            "ORDER BY id"), {"c": cases["A-2"]["id"]}).all()
    assert [tuple(h) for h in history] == [("imported", None, "dispatched"),
                                           ("imported", "dispatched", "closed")]
    # the command line: the same file, nothing changes, a summary and an audit row
    result = CliRunner().invoke(app, [
        "import", "cases", str(path), "--system", "old311", "--id-field", "ticket",
        "--opened-field", "opened", "--closed-field", "closed", "--text-fields", "title,body",
        "--category-field", "type", "--department-field", "dept", "--state-field", "status",
        "--source-field", "channel", "--address-field", "addr", "--notes-field", "reply",
        "--mapping", str(mapping_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "0 inserted, 0 updated, 3 unchanged, 1 kept" in result.output
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = "
                                 "'import.cases'")).scalar() == 1


def test_geojson_features_without_geometry_and_a_time_format(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plant(db)
    lon, lat = INSIDE_001
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
         "properties": {"ticket": "G-1", "opened": "03/01/2024 - 09:15am", "type": "Lamp out"}},
        {"type": "Feature", "geometry": None,
         "properties": {"ticket": "G-2", "opened": "03/02/2024 - 04:30pm", "type": "Lamp out"}}]
    path = tmp_path / "cases.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    fields = CaseFields(id_field="ticket", opened_field="opened", category_field="type")
    report = import_cases(db, path, system="gj", fields=fields, mapping=mapping_file(tmp_path),
                         timezone="Asia/Shanghai", time_format="%m/%d/%Y - %I:%M%p")
    assert report.inserted == 2
    cases = case_rows(db)
    assert cases["G-1"]["grid_code"] == GRID_001
    assert cases["G-2"]["geom"] is None
    assert cases["G-2"]["created_at"].isoformat() == "2024-03-02T08:30:00+00:00"
    assert cases["G-1"]["state"] == "registered"  # no status, no closing time, no department


def test_cli_import_recounts_the_health_days_it_marked(db, tmp_path, cli_env) -> None:  # type: ignore[no-untyped-def]
    """City health's day aggregates built: the imported history marks its grids' days dirty,
    and the import recounts them itself (the next health page would have), equal to the
    recomputation from the cases."""
    from gridcore.calendar import WorkingCalendar
    from layers.health import days

    plant(db)
    cal = WorkingCalendar.chinese()
    days.rebuild(db, cal)
    result = CliRunner().invoke(app, [
        "import", "cases", str(good_file(tmp_path)), "--system", "old311", "--id-field",
        "ticket", "--opened-field", "opened", "--closed-field", "closed", "--text-fields",
        "title,body", "--category-field", "type", "--department-field", "dept",
        "--state-field", "status", "--mapping", str(mapping_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "4 inserted" in result.output
    assert "city health: 2 dirty grid-day marks recounted" in result.output  # two grids
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM health_dirty")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM health_day")).scalar() > 0
    assert days.check(db, cal).ok
