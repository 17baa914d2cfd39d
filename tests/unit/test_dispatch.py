"""Dispatch rules (权责清单): precedence, owner override, send-back, validation, CSV."""

from __future__ import annotations

import pytest

from gridcore.dispatch import AreaPath, DispatchRule, DispatchRules, PartUnits
from gridcore.errors import ImportRejected

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




def test_a_rule_may_name_a_levels_team() -> None:
    """小事不出社区: the community's own team, whichever community the report lies in."""
    rules = [DispatchRule("E0103", "district", "110101", "", team_level="community"),
             DispatchRule("E0103", "city", None, "D_CITY")]
    teams = {("community", "110101001001"): "T_DUOFU"}
    table = DispatchRules.validated(rules, {"D_CITY": "城管委", "T_DUOFU": "多福巷社区队"},
                                    {"E0103"}, {"district": {"110101"}}, teams)
    here = table.propose("E0103", AreaPath.of_grid("110101001001001"))
    assert here.department_code == "T_DUOFU" and "the community team T_DUOFU" in here.reason
    elsewhere = table.propose("E0103", AreaPath.of_grid("110101002001001"))
    assert elsewhere.department_code == "D_CITY" and "has no team" in elsewhere.reason
    with pytest.raises(ImportRejected) as info:
        DispatchRules.validated(
            [DispatchRule("E0103", "community", "110101001001", "D_CITY", team_level="street"),
             DispatchRule("E0103", "district", "110101", "", team_level="province")],
            {"D_CITY": "x"}, {"E0103"}, {"community": {"110101001001"},
                                         "district": {"110101"}})
    assert [p["field"] for p in info.value.details["problems"]] == ["team_level"] * 3
