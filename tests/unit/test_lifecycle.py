"""The lifecycle state machine (七步闭环): every transition from every state, roles, and
requirements; illegal steps are Conflicts that list the allowed next steps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gridcore.calendar import WorkingCalendar
from gridcore.errors import Conflict, ValidationError
from gridcore.lifecycle import (
    TRANSITIONS,
    Action,
    CaseFacts,
    NotPermitted,
    Role,
    State,
    allowed_actions,
    changes,
    check_primary,
    plan,
)
from gridcore.resolution import ResponsibleParty
from gridcore.taxonomy import Stage

NOW = datetime(2025, 10, 9, 9, 0, tzinfo=UTC)
FULL = {"reason": "r", "department": "D1", "check_result": "pass", "new_limit": "2wd",
        "primary_case_id": 99, "lon": 116.4, "lat": 39.9, "departments": ["D2", "D3"],
        "reached": False, "attachments": [{"role": "before"}, {"role": "after"}],
        "assignee": "h1"}


def facts_for(state: State, action: Action) -> CaseFacts:
    parked = action is Action.UNPARK
    check = "pass" if action is Action.CLOSE else ("fail" if action is Action.REWORK else None)
    held = "D1" if action is Action.ESCALATE else None
    placed = "unlocated" if action is Action.LOCATE else "point"
    return CaseFacts(state, parked, check, held, 1, source="hotline", location_source=placed)


LEGAL = [(a, s) for a, t in TRANSITIONS.items() for s in t.targets]


@pytest.mark.parametrize(("action", "state"), LEGAL, ids=[f"{a}-{s}" for a, s in LEGAL])
def test_every_legal_transition(action: Action, state: State) -> None:
    t = TRANSITIONS[action]
    role = sorted(t.roles)[0]
    step = plan(facts_for(state, action), action.value, role.value, dict(FULL), NOW)
    assert step.from_state is state
    assert step.to_state is (t.targets[state] or state)


ILLEGAL = [(a, s) for a, t in TRANSITIONS.items() for s in State if s not in t.targets]


@pytest.mark.parametrize(("action", "state"), ILLEGAL, ids=[f"{a}-{s}" for a, s in ILLEGAL])
def test_every_illegal_transition_lists_allowed_steps(action: Action, state: State) -> None:
    facts = CaseFacts(state)
    with pytest.raises(Conflict) as err:
        plan(facts, action.value, Role.ADMIN.value, dict(FULL), NOW)
    assert err.value.details["allowed"] == allowed_actions(facts)
    assert err.value.details["state"] == state.value


@pytest.mark.parametrize("action", list(Action))
def test_roles_outside_the_list_are_not_permitted(action: Action) -> None:
    t = TRANSITIONS[action]
    outsiders = [r for r in Role if r not in t.roles]
    state = next(iter(t.targets))
    for role in outsiders:
        with pytest.raises(NotPermitted) as err:
            plan(facts_for(state, action), action.value, role.value, dict(FULL), NOW)
        assert err.value.details["roles"] == sorted(r.value for r in t.roles)


@pytest.mark.parametrize(("action", "state", "missing"), [
    (Action.DISPATCH, State.REGISTERED, "department"),
    (Action.SEND_BACK, State.DISPATCHED, "reason"),
    (Action.REWORK, State.CHECKED, "reason"),
    (Action.VOID, State.REPORTED, "reason"),
    (Action.EXTEND, State.ACCEPTED, "new_limit"),
    (Action.EXTEND, State.ACCEPTED, "reason"),
    (Action.CHECK, State.FED_BACK, "check_result"),
    (Action.MERGE, State.REPORTED, "primary_case_id"),
    (Action.PARK, State.DISPATCHED, "reason"),
])
def test_requirements(action: Action, state: State, missing: str) -> None:
    payload = {k: v for k, v in FULL.items() if k != missing}
    with pytest.raises(ValidationError) as err:
        plan(CaseFacts(state, check_result="fail"), action.value, "admin", payload, NOW)
    assert missing in err.value.details["missing"]


def test_close_needs_a_passing_check() -> None:
    with pytest.raises(Conflict) as err:
        plan(CaseFacts(State.CHECKED, check_result="fail"), "close", "dispatcher", {}, NOW)
    assert err.value.details["allowed"] == ["rework", "merge", "supervise"]
    step = plan(CaseFacts(State.CHECKED, check_result="pass"), "close", "dispatcher", {}, NOW)
    assert step.to_state is State.CLOSED


def test_park_twice_and_unpark_unparked_are_conflicts() -> None:
    with pytest.raises(Conflict):
        plan(CaseFacts(State.DISPATCHED, parked=True), "park", "manager", {"reason": "x"}, NOW)
    with pytest.raises(Conflict):
        plan(CaseFacts(State.DISPATCHED, parked=False), "unpark", "manager", {}, NOW)
    step = plan(CaseFacts(State.DISPATCHED), "park", "manager", {"reason": "x"}, NOW)
    assert step.updates == {"parked_since": NOW} and step.to_state is State.DISPATCHED


def test_bad_values() -> None:
    with pytest.raises(ValidationError):
        plan(CaseFacts(State.REPORTED), "teleport", "admin", {}, NOW)
    with pytest.raises(ValidationError):
        plan(CaseFacts(State.REPORTED), "verify", "mayor", {}, NOW)
    with pytest.raises(ValidationError):
        plan(CaseFacts(State.ACCEPTED), "extend", "admin", {"new_limit": "soon",
                                                            "reason": "r"}, NOW)
    with pytest.raises(ValidationError):
        plan(CaseFacts(State.REPORTED, case_id=5), "merge", "admin", {"primary_case_id": 5},
             NOW)


def test_final_states_allow_only_reopen() -> None:
    assert allowed_actions(CaseFacts(State.CLOSED)) == ["reopen"]
    assert allowed_actions(CaseFacts(State.VOIDED)) == ["reopen"]
    assert allowed_actions(CaseFacts(State.MERGED)) == []
    # a hotline or citizen case is called back after closing (回访)
    assert allowed_actions(CaseFacts(State.CLOSED, source="hotline")) == ["reopen", "callback"]


def test_reopen_restarts_the_right_clock() -> None:
    voided = plan(CaseFacts(State.VOIDED), "reopen", "manager", {"reason": "误作废"}, NOW)
    closed = plan(CaseFacts(State.CLOSED, check_result="pass"), "reopen", "manager",
                  {"reason": "复发"}, NOW)
    assert (voided.to_state, voided.stage) == (State.REPORTED, Stage.DISPATCH)
    assert (closed.to_state, closed.stage) == (State.REWORK, Stage.HANDLE)
    assert closed.updates == {"check_result": None}


# -- what a step writes (gridcore.lifecycle.changes): the rules storage used to hold ------------
CAL = WorkingCalendar.weekdays("UTC")
STORED = CaseFacts(State.REGISTERED, case_id=7, category="E0103", proposed_department="D1",
                   proposal_rule="rule #1", stage_started_at=NOW, stage_limit="30m")


def test_dispatch_without_a_department_accepts_the_proposal() -> None:
    step = plan(STORED, "dispatch", "dispatcher", {}, NOW)
    assert step.department == "D1" and step.updates["department_code"] == "D1"
    change = changes(step, STORED, CAL, NOW)
    assert change.details == {"proposed": "D1", "rule": "rule #1", "chosen": "D1",
                              "override": False, "department": "D1"}
    assert change.updates["stage"] == "handle" and change.updates["stage_started_at"] == NOW
    assert change.updates["deadline_at"] > change.updates["warn_at"] > NOW
    # An override (改派) needs a reason, which the history keeps.
    with pytest.raises(ValidationError) as refused:
        plan(STORED, "dispatch", "admin", {"department": "D2"}, NOW)
    assert refused.value.details["field"] == "reason" and refused.value.msg_key == \
        "override_needs_reason"
    with pytest.raises(ValidationError):
        plan(STORED, "dispatch", "admin", {"department": "D2", "reason": "  "}, NOW)
    overridden = changes(plan(STORED, "dispatch", "admin", {"department": "D2",
                                                             "reason": "路段已移交区管"}, NOW),
                         STORED, CAL, NOW)
    assert overridden.details["override"] is True and overridden.details["chosen"] == "D2"
    assert overridden.reason == "路段已移交区管"
    # Without a proposal there is nothing to override: the dispatcher's choice needs no reason.
    free = plan(replace(STORED, proposed_department=None), "dispatch", "dispatcher",
                {"department": "D2"}, NOW)
    assert free.department == "D2"
    with pytest.raises(ValidationError, match="department"):  # no proposal, none named
        plan(replace(STORED, proposed_department=None), "dispatch", "dispatcher", {}, NOW)


def test_send_back_is_reproposed_without_every_refusing_department() -> None:
    sent = replace(STORED, state=State.DISPATCHED, department="D1", refused_departments=("D0",))
    step = plan(sent, "send_back", "department_handler", {"reason": "不归我们管"}, NOW)
    assert step.repropose_without == ("D0", "D1")
    again = ResponsibleParty("D2", "Roads", "rule #2", source="rule", rule_id=2)
    change = changes(step, sent, CAL, NOW, again)
    assert change.updates["refused_departments"] == ["D0", "D1"]
    assert (change.updates["proposed_department"], change.updates["proposal_rule"]) == (
        "D2", "rule #2")
    assert change.details == {"refused_by": "D1", "reproposed": "D2", "rule": "rule #2",
                              "basis": {"source": "rule", "rule_id": 2}}
    assert change.reason == "不归我们管" and change.updates["department_code"] is None


def test_unpark_adds_the_parked_interval_and_moves_the_deadline() -> None:
    since = NOW - timedelta(hours=2)
    parked = replace(STORED, state=State.DISPATCHED, parked=True, parked_since=since,
                     parked_seconds=60.0, stage_limit="8h")
    change = changes(plan(parked, "unpark", "manager", {}, NOW), parked, CAL, NOW)
    assert change.updates["parked_since"] is None
    assert change.updates["parked_intervals"] == [[since.isoformat(), NOW.isoformat()]]
    assert change.updates["parked_seconds"] == 60.0 + 7200.0
    assert change.updates["deadline_at"] == NOW + timedelta(hours=8)  # 2 h parked of 2 h run


def test_closing_and_merging() -> None:
    checked = replace(STORED, state=State.CHECKED, check_result="pass")
    closed = changes(plan(checked, "close", "dispatcher", {}, NOW), checked, CAL, NOW)
    assert closed.to_state is State.CLOSED and closed.updates["closed_at"] == NOW
    step = plan(STORED, "merge", "dispatcher", {"primary_case_id": 3}, NOW)
    assert step.primary_case_id == 3
    check_primary(step, CaseFacts(State.DISPATCHED, case_id=3))
    for primary in (None, CaseFacts(State.CLOSED, case_id=3),
                    CaseFacts(State.DISPATCHED, case_id=3, primary_case_id=1)):
        with pytest.raises(Conflict, match="cannot be a primary case"):
            check_primary(step, primary)


def test_extend_records_the_old_and_new_limit() -> None:
    step = plan(STORED, "extend", "manager", {"new_limit": "2wd", "reason": "待材料"}, NOW)
    change = changes(step, STORED, CAL, NOW)
    assert change.details == {"old_limit": "30m", "new_limit": "2wd"}
    assert change.updates["stage_limit"] == "2wd" and "deadline_at" in change.updates


def test_assign_only_by_the_leader_of_the_assignees_team() -> None:
    from gridcore.lifecycle import Member, check_assignment

    case = replace(STORED, state=State.ACCEPTED, department="D1")
    step = plan(case, "assign", "department_handler", {"assignee": "h2"}, NOW)
    assert step.updates == {"assignee": "h2"} and step.to_state is State.ACCEPTED
    leader = Member("lead", "department_handler", "D1", "T1", leader=True)
    h2 = Member("h2", "department_handler", "D1", "T1")
    check_assignment(step, case, "department_handler", leader, h2)
    with pytest.raises(NotPermitted):  # a member is not a leader
        check_assignment(step, case, "department_handler", replace(leader, leader=False), h2)
    with pytest.raises(ValidationError):  # the leader of another team
        check_assignment(step, case, "department_handler", replace(leader, team="T2"), h2)
    for bad in (None, replace(h2, department="D2"), replace(h2, active=False),
                replace(h2, role="dispatcher")):
        with pytest.raises(ValidationError) as err:
            check_assignment(step, case, "department_handler", leader, bad)
        assert err.value.details["field"] == "assignee"
    check_assignment(step, case, "admin", None, h2)  # an admin needs no team
    change = changes(step, replace(case, assignee="h1"), CAL, NOW)
    assert change.details == {"previous_assignee": "h1", "assignee": "h2"}
    # A new department (dispatch, send-back) clears the assignee.
    assert plan(replace(STORED), "dispatch", "dispatcher", {}, NOW).updates["assignee"] is None


def test_merge_is_recorded_on_the_primary_too() -> None:
    case = replace(STORED, state=State.REPORTED, case_id=5)
    step = plan(case, "merge", "dispatcher", {"primary_case_id": 3}, NOW)
    change = changes(step, case, CAL, NOW)
    assert change.related == [(3, "merge", {"merged_case_id": 5, "role": "primary"})]
