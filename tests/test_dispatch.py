"""Dispatch rules (权责清单): precedence, owner override, send-back, validation, CSV."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gridcore.cli import app
from gridcore.dispatch import AreaPath, DispatchRule, DispatchRules, PartUnits
from gridcore.errors import ImportRejected
from tests.conftest import row_counts

GRID = "110101001001001"
DEPTS = {"CITY": "City works", "DIST": "District office", "STREET": "Street office",
         "COMM": "Community office", "GRIDT": "Grid team", "WATER": "Water co", "OWNER": "Owner"}
AREAS = {"grid": {GRID}, "community": {GRID[:12]}, "street": {GRID[:9]},
         "district": {GRID[:6]}}


def _rules(*extra: DispatchRule) -> DispatchRules:
    rules = [DispatchRule("P0101", "city", None, "CITY", id=1),
             DispatchRule("P0101", "district", GRID[:6], "DIST", id=2),
             DispatchRule("P0101", "street", GRID[:9], "STREET", id=3),
             DispatchRule("P0101", "community", GRID[:12], "COMM", id=4),
             DispatchRule("P0101", "grid", GRID, "GRIDT", id=5), *extra]
    return DispatchRules.validated(rules, DEPTS, {"P0101", "E0101"}, AREAS)


def test_most_specific_area_wins() -> None:
    rules = _rules()
    here = AreaPath.of_grid(GRID)
    p = rules.propose("P0101", here)
    assert p.department_code == "GRIDT" and p.rule is not None and p.rule.id == 5
    assert "#5" in p.reason and f"grid {GRID}" in p.reason
    # Another grid of the same community: the community rule.
    assert rules.propose("P0101", AreaPath.of_grid(GRID[:12] + "002")).department_code == "COMM"
    assert rules.propose("P0101", AreaPath.of_grid("110101002001001")).department_code == "DIST"
    assert rules.propose("P0101", AreaPath()).department_code == "CITY"
    none = rules.propose("E0101", here)
    assert none.department_code is None and "no dispatch rule for E0101" in none.reason


def test_part_unit_overrides_and_send_back_excludes() -> None:
    rules = _rules()
    here = AreaPath.of_grid(GRID)
    part = PartUnits("1101010101000001", maintenance_dept="WATER", owner_dept="OWNER")
    p = rules.propose("P0101", here, part)
    assert p.department_code == "WATER" and p.source == "part-maintenance"
    assert "1101010101000001" in p.reason and "maintenance unit" in p.reason
    p = rules.propose("P0101", here, part, exclude={"WATER"})
    assert p.department_code == "OWNER" and "sent back" in p.reason
    p = rules.propose("P0101", here, part, exclude={"WATER", "OWNER", "GRIDT"})
    assert p.department_code == "COMM"
    p = rules.propose("P0101", here, None, exclude=set(DEPTS))
    assert p.department_code is None and "a dispatcher must choose" in p.reason


def test_validation_names_every_problem() -> None:
    bad = [DispatchRule("P9999", "city", None, "CITY"),
           DispatchRule("P0101", "street", "110101009", "CITY"),
           DispatchRule("P0101", "grid", GRID, "NOPE"),
           DispatchRule("P0101", "province", "11", "CITY"),
           DispatchRule("P0101", "street", "1101", "CITY"),
           DispatchRule("P0101", "city", None, "CITY"),
           DispatchRule("P0101", "city", None, "DIST")]
    with pytest.raises(ImportRejected) as err:
        DispatchRules.validated(bad, DEPTS, {"P0101"}, AREAS)
    problems = err.value.problems
    reasons = {p["row"]: p["reason"] for p in problems}
    assert "unknown class 'P9999'" in reasons[1]
    assert "unreachable" in reasons[2]
    assert "unknown department 'NOPE'" in reasons[3]
    assert "unknown area level" in reasons[4]
    assert "9 digits" in reasons[5]
    assert "duplicates row 6" in reasons[7]


def test_cli_import_export_round_trip(db, cli_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.resolve_fixtures import load_grids, voronoi_grids

    codes = load_grids(db, voronoi_grids(5, km=1.0))
    with db.begin() as conn:
        conn.execute(text("INSERT INTO department (code, name) VALUES ('CITY', 'City works'), "
                          "('GRIDT', 'Grid team')"))
    good = tmp_path / "rules.csv"
    good.write_text("category_key,area_level,area_code,department_code,note\n"
                    "P0101,city,,CITY,fallback\n"
                    f"P0101,grid,{codes[0]},GRIDT,\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["rules", "import", str(good)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["rules", "export", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "category_key,area_level,area_code,department_code,note"
    assert sorted(lines[1:]) == sorted(["P0101,city,,CITY,fallback",
                                        f"P0101,grid,{codes[0]},GRIDT,"])
    before = row_counts(db)
    bad = tmp_path / "bad.csv"
    bad.write_text("category_key,area_level,area_code,department_code,note\n"
                   "P0101,street,110101999,CITY,\nE0101,city,,GHOST,\n", encoding="utf-8")
    result = runner.invoke(app, ["rules", "import", str(bad)])
    assert result.exit_code != 0
    assert "unreachable" in result.output and "GHOST" in result.output
    assert row_counts(db) == before
