"""智能派遣 on a planted history: place-specific departments, send-backs, rules first."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from gridcore.intelligence.dispatch import DispatchCase, DispatchModel, SendBack, combine
from gridcore.intelligence.memory import CaseMemory, Place

T0 = datetime(2024, 1, 1)
EAST, WEST = Place(community="east"), Place(community="west")


def history(n: int = 240) -> list[DispatchCase]:
    """Lamps go to the east or west lighting unit by community; covers to water everywhere."""
    cases = []
    for i in range(n):
        at = T0 + timedelta(hours=6 * i)
        place = EAST if i % 2 else WEST
        if i % 3:
            dept = "light-east" if place is EAST else "light-west"
            cases.append(DispatchCase(("P01", "P0120"), "路灯不亮", place, at, dept))
        else:
            cases.append(DispatchCase(("P01", "P0102"), "井盖丢失", place, at, "water"))
    return cases


def test_planted_departments_are_predicted_with_a_reason() -> None:
    model = DispatchModel(memory_weight=0.5).fit(history())
    at = T0 + timedelta(days=70)
    east = model.predict(DispatchCase(("P01", "P0120"), "路灯坏了", EAST, at))
    west = model.predict(DispatchCase(("P01", "P0120"), "路灯坏了", WEST, at))
    cover = model.predict(DispatchCase(("P01", "P0102"), "井盖没了", EAST, at))
    assert (east.department, west.department, cover.department) == (
        "light-east", "light-west", "water")
    reason = east.candidates[0].reason()
    assert "this community went to light-east" in reason
    assert " of " in reason and east.confidence > 0.5


def test_weight_is_chosen_on_the_history() -> None:
    model = DispatchModel().fit(history())
    assert model.memory_weight in model.blend_grid


def test_send_backs_take_weight_away_in_that_place_only() -> None:
    cases = history()
    at = T0 + timedelta(days=61)
    backs = [SendBack(("P01", "P0120"), EAST, "light-east", at - timedelta(hours=h))
             for h in range(1, 80)]
    before = DispatchModel(memory_weight=0.5).fit(cases)
    after = DispatchModel(memory_weight=0.5).fit(cases, backs)
    lamp_east = DispatchCase(("P01", "P0120"), "路灯不亮", EAST, at)
    lamp_west = DispatchCase(("P01", "P0120"), "路灯不亮", WEST, at)
    p_before = dict((c.department, c.probability) for c in before.predict(lamp_east, k=5)
                    .candidates)
    p_after = dict((c.department, c.probability) for c in after.predict(lamp_east, k=5)
                   .candidates)
    assert p_after.get("light-east", 0) < p_before["light-east"]
    assert after.predict(lamp_east).department != "light-east"
    assert after.predict(lamp_west).department == "light-west"  # the west is untouched
    assert "sent back" in after.predict(lamp_east, k=5).candidates[-1].reason() or any(
        "sent back" in c.reason() for c in after.predict(lamp_east, k=5).candidates)


def test_exclude_skips_the_department_that_sent_it_back() -> None:
    model = DispatchModel(memory_weight=0.5).fit(history())
    case = DispatchCase(("P01", "P0120"), "路灯不亮", EAST, T0 + timedelta(days=70))
    assert model.predict(case, exclude=["light-east"]).department != "light-east"


def test_live_memory_learns_a_new_department_without_retraining() -> None:
    model = DispatchModel(memory_weight=0.7).fit(history())
    at = T0 + timedelta(days=80)
    later = DispatchCase(("P01", "P0120"), "路灯不亮", EAST, at + timedelta(days=6))
    assert "new-contractor" not in model.classes
    new = [DispatchCase(("P01", "P0120"), "路灯不亮", EAST, at + timedelta(hours=h),
                        "new-contractor") for h in range(120)]
    for case in new:
        model.observe(case)
    pred = model.predict(later)
    top2 = {c.department: c for c in pred.candidates[:2]}
    assert "new-contractor" in top2  # live, before any retraining
    assert "this community went to new-contractor: 120 of" in top2["new-contractor"].reason()
    retrained = DispatchModel(memory_weight=0.7).fit(history() + new)
    assert retrained.predict(later).department == "new-contractor"


@dataclass(frozen=True)
class Rule:
    department_code: str | None
    reason: str


def test_a_rule_wins_and_the_model_fills_in() -> None:
    model = DispatchModel(memory_weight=0.5).fit(history())
    case = DispatchCase(("P01", "P0120"), "路灯不亮", EAST, T0 + timedelta(days=70))
    pred = model.predict(case)
    ruled = combine(Rule("city-lighting", "dispatch rule #3"), pred)
    assert (ruled.department, ruled.source) == ("city-lighting", "rule")
    assert "would propose light-east" in ruled.reason
    free = combine(Rule(None, "no dispatch rule"), pred, threshold=0.3)
    assert (free.department, free.source) == ("light-east", "model")
    unsure = combine(None, pred, threshold=0.999)
    assert unsure.department is None and unsure.source == "none" and unsure.suggestions


def test_memory_decay_prefers_recent_cases() -> None:
    mem = CaseMemory(half_life_days=30)
    for d in range(100):
        mem.add(("A",), EAST, "old", T0 + timedelta(days=d))
    for d in range(10):
        mem.add(("A",), EAST, "new", T0 + timedelta(days=300 + d))
    p = mem.proba(("A",), EAST, T0 + timedelta(days=311))
    assert p[mem.departments.index("new")] > p[mem.departments.index("old")]
    ev = mem.evidence(("A",), EAST, "new")
    assert ev is not None and (ev.cases_there, ev.cases_total) == (10, 110)


NAMES = {"light-east": "East lighting unit", "light-west": "West lighting unit",
         "water": "Water and sewer works", "meters": "Parking meter repair queue"}
METER = ("P04", "P0401", "Parking_Meter - damaged")


def test_a_department_without_history_completes_the_top_3_by_its_name() -> None:
    model = DispatchModel(memory_weight=0.5, directory=NAMES, name_threshold=0.3,
                          weak=1.0).fit(history())
    assert "meters" not in model.classes  # it never had a case
    pred = model.predict(DispatchCase(METER, "meter broken", EAST, T0 + timedelta(days=70)))
    third = pred.candidates[2]
    assert third.department == "meters" and third.probability == 0.0
    assert "its name matches the class words" in third.reason()
    p = model.proba(DispatchCase(METER, "meter broken", EAST, T0 + timedelta(days=70)))
    assert model.rank(DispatchCase(METER, "", EAST, T0), p)[2] == "meters"
    # no threshold: never completed; a class its name does not match: not completed either
    bare = DispatchModel(memory_weight=0.5, directory=NAMES, weak=1.0).fit(history())
    assert "meters" not in [c.department for c in bare.predict(
        DispatchCase(METER, "meter broken", EAST, T0 + timedelta(days=70))).candidates]
    lamp = model.predict(DispatchCase(("P01", "P0120"), "路灯坏了", EAST, T0 + timedelta(days=70)))
    assert "meters" not in [c.department for c in lamp.candidates]


def test_the_name_completion_is_off_unless_it_helped_on_the_history() -> None:
    # the history never needs a department outside its own: completing never helps there
    model = DispatchModel(directory=NAMES).fit(history())
    assert model.memory_weight in model.blend_grid
    assert model.name_threshold is None
