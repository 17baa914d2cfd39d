"""The case lifecycle: the seven-step closed loop (七步闭环) as ONE explicit state machine.

::

    reported 上报 ─verify 核实→ verified ─register 立案→ registered ─dispatch 派遣→ dispatched
        └─void 作废→ voided        dispatched ─accept 签收→ accepted | ─send_back 退单→ sent_back
    sent_back ─dispatch→ dispatched (re-proposed without the refusing department)
    accepted | rework ─handle 处置→ handled ─feed_back 反馈→ fed_back ─check 核查→ checked
    checked ─close 结案→ closed (needs a passing check) | ─rework 返工→ rework (needs a reason)

Side actions that keep the state: extend 延期 (new limit + reason), park 挂账 (clock paused,
reason), unpark 解除挂账, supervise 督办 (reason). merge 并案 ends a duplicate as ``merged``
under a primary case; reopen 重新打开 brings back a closed case (→ rework) or a voided one
(→ reported).

:func:`plan` is the only gate: it checks the state, the actor's role and the requirements, and
returns what to write; an illegal step raises :class:`gridcore.errors.Conflict` whose
``details["allowed"]`` lists the steps that *are* possible now (the API answers 409 with them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from gridcore import errors as _errors
from gridcore.errors import Conflict, ValidationError
from gridcore.taxonomy import Stage, TimeLimit


class State(StrEnum):
    REPORTED = "reported"  # 上报
    VERIFIED = "verified"  # 核实
    VOIDED = "voided"  # 作废
    REGISTERED = "registered"  # 立案
    DISPATCHED = "dispatched"  # 派遣
    ACCEPTED = "accepted"  # 签收
    SENT_BACK = "sent_back"  # 退单
    HANDLED = "handled"  # 处置
    FED_BACK = "fed_back"  # 反馈
    CHECKED = "checked"  # 核查
    CLOSED = "closed"  # 结案
    REWORK = "rework"  # 返工
    MERGED = "merged"  # 并案 (into a primary case)


class Role(StrEnum):
    GRID_WORKER = "grid_worker"  # 网格员
    DISPATCHER = "dispatcher"  # 派遣员 / 受理员
    DEPARTMENT_HANDLER = "department_handler"  # 专业部门处置人员
    MANAGER = "manager"  # 指挥中心领导
    ADMIN = "admin"
    SYSTEM = "system"


class Action(StrEnum):
    VERIFY = "verify"
    VOID = "void"
    REGISTER = "register"
    DISPATCH = "dispatch"
    ACCEPT = "accept"
    SEND_BACK = "send_back"
    HANDLE = "handle"
    FEED_BACK = "feed_back"
    CHECK = "check"
    CLOSE = "close"
    REWORK = "rework"
    MERGE = "merge"
    EXTEND = "extend"
    PARK = "park"
    UNPARK = "unpark"
    SUPERVISE = "supervise"
    REOPEN = "reopen"


# The security work defines ``Forbidden`` (HTTP 403); until it lands, the base error (400).
_Forbidden: type[_errors.GridcoreError] = getattr(_errors, "Forbidden", _errors.GridcoreError)


class NotPermitted(_Forbidden):  # type: ignore[valid-type,misc]
    """The actor's role may not take this step (HTTP 403)."""

    kind = "not-permitted"
    title = "Not permitted"


S, R = State, Role
OPEN_STATES = frozenset(S) - {S.VOIDED, S.CLOSED, S.MERGED}
TERMINAL_STATES = frozenset({S.VOIDED, S.CLOSED, S.MERGED})
# The clock can be paused once a case is registered and until it is checked.
_PARKABLE = frozenset({S.REGISTERED, S.DISPATCHED, S.ACCEPTED, S.SENT_BACK, S.REWORK})
_HANDLERS = frozenset({R.DEPARTMENT_HANDLER, R.ADMIN})
_DESK = frozenset({R.DISPATCHER, R.MANAGER, R.ADMIN})
CHECK_RESULTS = ("pass", "fail")


@dataclass(frozen=True, slots=True)
class Transition:
    action: Action
    targets: dict[State, State | None]  # from-state → to-state (None: the state stays)
    roles: frozenset[Role]
    requires: tuple[str, ...] = ()  # payload fields that must be present
    stage: Stage | None = None  # the clock that starts when the step is taken
    zh: str = ""


def _t(action: Action, sources: set[State] | frozenset[State], to: State | None,
       roles: set[Role] | frozenset[Role], requires: tuple[str, ...] = (),
       stage: Stage | None = None, zh: str = "") -> Transition:
    return Transition(action, dict.fromkeys(sorted(sources), to), frozenset(roles), requires,
                      stage, zh)


TRANSITIONS: dict[Action, Transition] = {t.action: t for t in [
    _t(Action.VERIFY, {S.REPORTED}, S.VERIFIED, {R.GRID_WORKER, R.DISPATCHER, R.ADMIN},
       zh="核实"),
    _t(Action.VOID, {S.REPORTED, S.VERIFIED}, S.VOIDED, _DESK, ("reason",), zh="作废"),
    _t(Action.REGISTER, {S.VERIFIED}, S.REGISTERED, {R.DISPATCHER, R.ADMIN, R.SYSTEM},
       zh="立案"),
    _t(Action.DISPATCH, {S.REGISTERED, S.SENT_BACK}, S.DISPATCHED,
       {R.DISPATCHER, R.ADMIN, R.SYSTEM}, ("department",), Stage.HANDLE, "派遣"),
    _t(Action.ACCEPT, {S.DISPATCHED}, S.ACCEPTED, _HANDLERS, zh="签收"),
    _t(Action.SEND_BACK, {S.DISPATCHED}, S.SENT_BACK, _HANDLERS, ("reason",), zh="退单"),
    _t(Action.HANDLE, {S.ACCEPTED, S.REWORK}, S.HANDLED, _HANDLERS, zh="处置"),
    _t(Action.FEED_BACK, {S.HANDLED}, S.FED_BACK, _HANDLERS, stage=Stage.CHECK, zh="反馈"),
    _t(Action.CHECK, {S.FED_BACK}, S.CHECKED, {R.GRID_WORKER, R.ADMIN}, ("check_result",),
       zh="核查"),
    _t(Action.CLOSE, {S.CHECKED}, S.CLOSED, _DESK, ("check_result",), zh="结案"),
    _t(Action.REWORK, {S.CHECKED}, S.REWORK, _DESK, ("reason",), Stage.HANDLE, "返工"),
    _t(Action.MERGE, OPEN_STATES, S.MERGED, _DESK, ("primary_case_id",), zh="并案"),
    _t(Action.EXTEND, {S.REGISTERED, S.DISPATCHED, S.ACCEPTED, S.REWORK}, None,
       {R.MANAGER, R.ADMIN}, ("new_limit", "reason"), zh="延期"),
    _t(Action.PARK, _PARKABLE, None, {R.MANAGER, R.ADMIN}, ("reason",), zh="挂账"),
    _t(Action.UNPARK, _PARKABLE, None, {R.MANAGER, R.ADMIN, R.SYSTEM}, zh="解除挂账"),
    _t(Action.SUPERVISE, OPEN_STATES - {S.REPORTED}, None, {R.MANAGER, R.ADMIN, R.SYSTEM},
       ("reason",), zh="督办"),
    Transition(Action.REOPEN, {S.CLOSED: S.REWORK, S.VOIDED: S.REPORTED},
               frozenset({R.MANAGER, R.ADMIN}), ("reason",), Stage.HANDLE, "重新打开"),
]}


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the machine needs to know about a case besides its state."""

    state: State
    parked: bool = False
    check_result: str | None = None
    department: str | None = None
    case_id: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What a legal step writes: the new state and the case fields to update."""

    action: Action
    from_state: State
    to_state: State
    updates: dict[str, Any] = field(default_factory=dict)
    stage: Stage | None = None  # a new clock starts for this stage


def allowed_actions(facts: CaseFacts, role: Role | None = None) -> list[str]:
    """The steps possible from here (for ``role``, when given), in a stable order."""
    out = []
    for t in TRANSITIONS.values():
        if facts.state not in t.targets or (role is not None and role not in t.roles):
            continue
        if t.action is Action.PARK and facts.parked:
            continue
        if t.action is Action.UNPARK and not facts.parked:
            continue
        if t.action is Action.CLOSE and facts.check_result != "pass":
            continue
        if t.action is Action.REWORK and facts.check_result not in (None, "fail"):
            continue
        out.append(t.action.value)
    return out


def _illegal(facts: CaseFacts, action: str, why: str) -> Conflict:
    allowed = allowed_actions(facts)
    return Conflict(f"cannot {action} a case that is {facts.state.value}: {why}; "
                    f"allowed now: {', '.join(allowed) or 'nothing (the case is final)'}",
                    action=action, state=facts.state.value, allowed=allowed)


def plan(facts: CaseFacts, action: str, role: str, payload: dict[str, Any],
         now: datetime) -> Plan:
    """Check one step and say what to write. Raises Conflict (wrong state / order),
    NotPermitted (wrong role) or ValidationError (a missing or bad requirement)."""
    try:
        act = Action(action)
    except ValueError:
        raise ValidationError(f"unknown action {action!r}; actions are "
                              f"{', '.join(a.value for a in Action)}", field="action",
                              value=action) from None
    try:
        who = Role(role)
    except ValueError:
        raise ValidationError(f"unknown role {role!r}; roles are "
                              f"{', '.join(r.value for r in Role)}", field="role",
                              value=role) from None
    t = TRANSITIONS[act]
    if facts.state not in t.targets:
        raise _illegal(facts, act.value, f"{act.value} is only possible from "
                       f"{', '.join(s.value for s in t.targets)}")
    if act is Action.PARK and facts.parked:
        raise _illegal(facts, act.value, "the case is already parked (挂账)")
    if act is Action.UNPARK and not facts.parked:
        raise _illegal(facts, act.value, "the case is not parked")
    if who not in t.roles:
        raise NotPermitted(f"role {who.value} may not {act.value} ({t.zh}); allowed roles: "
                           f"{', '.join(sorted(r.value for r in t.roles))}",
                           action=act.value, role=who.value,
                           roles=sorted(r.value for r in t.roles),
                           allowed=allowed_actions(facts, who))
    missing = [f for f in t.requires if payload.get(f) in (None, "", [])]
    if act is Action.CLOSE and "check_result" in missing and facts.check_result:
        missing.remove("check_result")
    if missing:
        raise ValidationError(f"{act.value} ({t.zh}) needs {', '.join(missing)}",
                              action=act.value, missing=missing, field=missing[0])
    return _plan_updates(facts, act, t, payload, now)


def _plan_updates(facts: CaseFacts, act: Action, t: Transition, payload: dict[str, Any],
                  now: datetime) -> Plan:
    to = t.targets[facts.state] or facts.state
    updates: dict[str, Any] = {}
    if act is Action.DISPATCH:
        updates["department_code"] = payload["department"]
    elif act is Action.SEND_BACK:
        updates["department_code"] = None
    elif act is Action.CHECK:
        result = payload["check_result"]
        if result not in CHECK_RESULTS:
            raise ValidationError(f"check_result must be one of {', '.join(CHECK_RESULTS)}",
                                  field="check_result", value=result)
        updates["check_result"] = result
    elif act is Action.CLOSE:
        result = payload.get("check_result") or facts.check_result
        if result != "pass" or facts.check_result != "pass":
            raise _illegal(facts, act.value, "closing (结案) needs a passing on-site check; "
                           f"the check result is {facts.check_result!r}")
    elif act is Action.REWORK and facts.check_result == "pass":
        raise _illegal(facts, act.value, "the on-site check passed; close the case instead")
    elif act is Action.MERGE:
        primary = int(payload["primary_case_id"])
        if facts.case_id is not None and primary == facts.case_id:
            raise ValidationError("a case cannot be merged into itself",
                                  field="primary_case_id", value=primary)
        updates["primary_case_id"] = primary
    elif act is Action.EXTEND:
        updates["stage_limit"] = str(TimeLimit.parse(str(payload["new_limit"])))
    elif act is Action.PARK:
        updates["parked_since"] = now
    elif act is Action.UNPARK:
        updates["parked_since"] = None
    elif act is Action.SUPERVISE:
        updates["supervised"] = True
    if act in (Action.REWORK, Action.REOPEN):
        updates["check_result"] = None
    # A voided case brought back is reported again: its clock restarts at the dispatch stage.
    stage = Stage.DISPATCH if to is State.REPORTED else t.stage
    return Plan(act, facts.state, to, updates, stage)
