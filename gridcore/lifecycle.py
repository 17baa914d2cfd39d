"""The case lifecycle: the seven-step closed loop (七步闭环) as ONE explicit state machine.

::

    reported 上报 ─verify 核实→ verified ─register 立案→ registered ─dispatch 派遣→ dispatched
        └─void 作废→ voided        dispatched ─accept 签收→ accepted | ─send_back 退单→ sent_back
    sent_back ─dispatch→ dispatched (re-proposed without the refusing department)
    accepted | rework ─handle 处置→ handled ─feed_back 反馈→ fed_back ─check 核查→ checked
    checked ─close 结案→ closed (needs a passing check) | ─rework 返工→ rework (needs a reason)

Side actions that keep the state: extend 延期 (new limit + reason), park 挂账 (clock paused,
reason), unpark 解除挂账, supervise 督办 (reason; the system supervises overdue cases by itself,
:mod:`gridcore.supervision`), assign 指派 (a team leader names the handler of the team).
merge 并案 ends a duplicate as ``merged`` under a primary case, whose history records it too;
reopen 重新打开 brings back a closed case (→ rework) or a voided one (→ reported).

Dispatching to another department than the proposal (改派) needs a reason, recorded with the
step. Each step raises its domain event (:mod:`gridcore.events`), written with the change.

Levels and channels (:mod:`gridcore.coordination` checks what these need): locate 定位 (a
report without a place gets one from the map), self_handle 自处置 (reported → closed in one step
with photos before and after), escalate 上报 (the team of the level above takes the case; the
system escalates an overdue case when its class says so), whistle 吹哨 / report_in 报到,
assist 协同 / assist_done 协同反馈 / release 解除协同 (feed_back waits for every assisting task),
callback 回访 (after closing, for hotline and citizen cases).

Machine discovery (机器发现, :mod:`gridcore.devices`): the system records a device's repeated
alarm on its open case (alarm 重复告警), proposes closing when the device reads normal again
(propose_close 建议结案: the case keeps its state, a person still checks), or closes it when
the class may be closed on a machine's word (auto_close 自动结案); a trusted device's report is
verified by the system (verify).

:func:`plan` is the only gate: it checks the state, the actor's role and the requirements, and
says what the step needs from storage (a department that must exist, a primary case to check,
a new dispatch proposal after a send-back); an illegal step raises
:class:`gridcore.errors.Conflict` whose ``details["allowed"]`` lists the steps that *are*
possible now (the API answers 409 with them). :func:`changes` then works out everything the
step writes — the case's new fields, its clock, the history row's details — and storage
(``layers.cases.transitions``) stores that answer and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from gridcore import coordination
from gridcore.calendar import Interval, WorkingCalendar
from gridcore.errors import Conflict, Forbidden, ValidationError
from gridcore.events import EventKind
from gridcore.resolution import ResponsibleParty
from gridcore.security.access import Role
from gridcore.taxonomy import Stage, TimeLimit, default_taxonomy


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
    ALARM = "alarm"
    PROPOSE_CLOSE = "propose_close"
    AUTO_CLOSE = "auto_close"
    LOCATE = "locate"
    SELF_HANDLE = "self_handle"
    ESCALATE = "escalate"
    WHISTLE = "whistle"
    REPORT_IN = "report_in"
    ASSIST = "assist"
    ASSIST_DONE = "assist_done"
    RELEASE = "release"
    CALLBACK = "callback"
    ASSIGN = "assign"


class NotPermitted(Forbidden):
    """The actor's role may not take this step (HTTP 403)."""

    kind = "not-permitted"
    title = "Not permitted"


S, R = State, Role
# The final states (办结): no step leads out of them but reopen. The one definition: storage
# spells them in SQL from here (layers.schema.cases), the API and the health model too.
TERMINAL_STATES = frozenset({S.CLOSED, S.VOIDED, S.MERGED})
OPEN_STATES = frozenset(S) - TERMINAL_STATES
# The clock can be paused once a case is registered and until it is checked.
_PARKABLE = frozenset({S.REGISTERED, S.DISPATCHED, S.ACCEPTED, S.SENT_BACK, S.REWORK})
# A department's case can be given to a handler of the team while the department holds it.
_ASSIGNABLE = frozenset({S.DISPATCHED, S.ACCEPTED, S.REWORK, S.HANDLED})
E = EventKind
_HANDLERS = frozenset({R.DEPARTMENT_HANDLER, R.ADMIN})
# A department holds the case (escalation, assisting tasks).
_HELD = frozenset({S.DISPATCHED, S.ACCEPTED, S.REWORK})
# A street's whistle calls departments to a case someone still has to handle.
_WHISTLE = frozenset({S.REGISTERED, S.DISPATCHED, S.ACCEPTED, S.SENT_BACK, S.REWORK})
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
    photos: bool = False  # the step may carry photos (on-site evidence)
    # Roles allowed this step only from some of its states (a grid worker voids a case only
    # when verifying it: 核实不实)
    only_from: dict[Role, frozenset[State]] = field(default_factory=dict)
    event: EventKind = EventKind.CHANGED  # the domain event the step raises


def _t(action: Action, sources: set[State] | frozenset[State], to: State | None,
       roles: set[Role] | frozenset[Role], requires: tuple[str, ...] = (),
       stage: Stage | None = None, zh: str = "", photos: bool = False,
       only_from: dict[Role, frozenset[State]] | None = None,
       event: EventKind = EventKind.CHANGED) -> Transition:
    return Transition(action, dict.fromkeys(sorted(sources), to), frozenset(roles), requires,
                      stage, zh, photos, only_from or {}, event)


TRANSITIONS: dict[Action, Transition] = {t.action: t for t in [
    _t(Action.VERIFY, {S.REPORTED}, S.VERIFIED,
       {R.GRID_WORKER, R.DISPATCHER, R.ADMIN, R.SYSTEM}, zh="核实", photos=True),
    # A grid worker sent to verify a report finds nothing there (核实不实): the case is voided
    # with the worker's reason; once verified, only the desk voids.
    _t(Action.VOID, {S.REPORTED, S.VERIFIED}, S.VOIDED, _DESK | {R.GRID_WORKER}, ("reason",),
       zh="作废", photos=True, only_from={R.GRID_WORKER: frozenset({S.REPORTED})}),
    _t(Action.REGISTER, {S.VERIFIED}, S.REGISTERED, {R.DISPATCHER, R.ADMIN, R.SYSTEM},
       zh="立案"),
    _t(Action.DISPATCH, {S.REGISTERED, S.SENT_BACK}, S.DISPATCHED,
       {R.DISPATCHER, R.ADMIN, R.SYSTEM}, ("department",), Stage.HANDLE, "派遣",
       event=E.DISPATCHED),
    _t(Action.ACCEPT, {S.DISPATCHED}, S.ACCEPTED, _HANDLERS, zh="签收"),
    _t(Action.SEND_BACK, {S.DISPATCHED}, S.SENT_BACK, _HANDLERS, ("reason",), zh="退单",
       event=E.SENT_BACK),
    _t(Action.HANDLE, {S.ACCEPTED, S.REWORK}, S.HANDLED, _HANDLERS, zh="处置", photos=True),
    _t(Action.FEED_BACK, {S.HANDLED}, S.FED_BACK, _HANDLERS, stage=Stage.CHECK, zh="反馈",
       photos=True),
    _t(Action.CHECK, {S.FED_BACK}, S.CHECKED, {R.GRID_WORKER, R.ADMIN}, ("check_result",),
       zh="核查", photos=True),
    _t(Action.CLOSE, {S.CHECKED}, S.CLOSED, _DESK, ("check_result",), zh="结案",
       event=E.CLOSED),
    _t(Action.REWORK, {S.CHECKED}, S.REWORK, _DESK, ("reason",), Stage.HANDLE, "返工",
       event=E.REWORK),
    _t(Action.MERGE, OPEN_STATES, S.MERGED, _DESK, ("primary_case_id",), zh="并案",
       event=E.MERGED),
    _t(Action.EXTEND, {S.REGISTERED, S.DISPATCHED, S.ACCEPTED, S.REWORK}, None,
       {R.MANAGER, R.ADMIN}, ("new_limit", "reason"), zh="延期"),
    _t(Action.PARK, _PARKABLE, None, {R.MANAGER, R.ADMIN}, ("reason",), zh="挂账"),
    _t(Action.UNPARK, _PARKABLE, None, {R.MANAGER, R.ADMIN, R.SYSTEM}, zh="解除挂账"),
    _t(Action.SUPERVISE, OPEN_STATES - {S.REPORTED}, None, {R.MANAGER, R.ADMIN, R.SYSTEM},
       ("reason",), zh="督办", event=E.SUPERVISED),
    Transition(Action.REOPEN, {S.CLOSED: S.REWORK, S.VOIDED: S.REPORTED},
               frozenset({R.MANAGER, R.ADMIN}), ("reason",), Stage.HANDLE, "重新打开"),
    _t(Action.ALARM, OPEN_STATES, None, {R.SYSTEM}, zh="重复告警"),
    _t(Action.PROPOSE_CLOSE, OPEN_STATES, None, {R.SYSTEM}, ("reason",), zh="建议结案"),
    _t(Action.AUTO_CLOSE, OPEN_STATES, S.CLOSED, {R.SYSTEM}, ("reason",), zh="自动结案"),
    _t(Action.LOCATE, {S.REPORTED, S.VERIFIED, S.REGISTERED}, None, _DESK, ("lon", "lat"),
       zh="定位"),
    _t(Action.SELF_HANDLE, {S.REPORTED}, S.CLOSED,
       {R.GRID_WORKER, R.DEPARTMENT_HANDLER, R.ADMIN}, ("reason", "attachments"), zh="自处置",
       photos=True),
    _t(Action.ESCALATE, _HELD, S.DISPATCHED, _HANDLERS | _DESK | {R.SYSTEM}, ("reason",),
       Stage.HANDLE, "上报"),
    _t(Action.WHISTLE, _WHISTLE, None, _DESK, ("departments",), zh="吹哨"),
    _t(Action.REPORT_IN, _WHISTLE | {S.HANDLED}, None, _HANDLERS, ("department",),
       zh="报到"),
    _t(Action.ASSIST, _HELD | {S.HANDLED}, None, _DESK | _HANDLERS, ("departments",),
       zh="协同"),
    _t(Action.ASSIST_DONE, _HELD | {S.HANDLED}, None, _HANDLERS, ("department", "reason"),
       zh="协同反馈", photos=True),
    _t(Action.RELEASE, _HELD | {S.HANDLED}, None, _DESK, ("department", "reason"),
       zh="解除协同"),
    _t(Action.CALLBACK, {S.CLOSED}, None, {R.DISPATCHER, R.MANAGER, R.ADMIN}, ("reached",),
       zh="回访"),
    _t(Action.ASSIGN, _ASSIGNABLE, None, _HANDLERS, ("assignee",), zh="指派",
       event=E.ASSIGNED),
]}


# Roles that take lifecycle steps, in the order of Role (the map's role picker offers them).
STEP_ROLES = tuple(r for r in Role if r is not R.SYSTEM
                   and any(r in t.roles for t in TRANSITIONS.values()))


def is_open(state: str) -> bool:
    return State(state) in OPEN_STATES


def transition_allowed(role: Role | str | None, action: str) -> bool:
    """May ``role`` take the lifecycle step ``action`` (verify, dispatch, close…)?"""
    try:
        return role is not None and Role(role) in TRANSITIONS[Action(action)].roles
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the machine needs to know about a case besides its state. The fields after
    ``case_id`` are the stored case's, for :func:`changes` (the state machine alone needs none
    of them)."""

    state: State
    parked: bool = False
    check_result: str | None = None
    department: str | None = None
    case_id: int | None = None
    category: str | None = None
    proposed_department: str | None = None
    proposal_rule: str | None = None
    refused_departments: tuple[str, ...] = ()
    primary_case_id: int | None = None
    parked_since: datetime | None = None
    parked_intervals: tuple[Interval, ...] = ()
    parked_seconds: float = 0.0
    stage_started_at: datetime | None = None
    stage_limit: str | None = None
    part_code: str | None = None  # the city part the case is filed against (部件)
    source: str | None = None  # the channel it came in by (callbacks are for hotline, citizen)
    open_tasks: tuple[str, ...] = ()  # assisting departments whose tasks are open (协同)
    location_source: str = "point"  # unlocated: waits in the 待定位 queue for a place
    assignee: str | None = None


@dataclass(frozen=True, slots=True)
class Member:
    """A user as a department's teams see them (for assign 指派)."""

    username: str
    role: str
    department: str | None = None
    team: str | None = None
    leader: bool = False
    active: bool = True


@dataclass(frozen=True, slots=True)
class Plan:
    """A legal step: the new state, the case fields it sets by itself, the clock it starts,
    and what storage must look up before :func:`changes` can finish it."""

    action: Action
    from_state: State
    to_state: State
    updates: dict[str, Any] = field(default_factory=dict)
    stage: Stage | None = None  # a new clock starts for this stage
    payload: dict[str, Any] = field(default_factory=dict)  # as taken (defaults filled in)
    department: str | None = None  # dispatch: this department must exist
    primary_case_id: int | None = None  # merge: this case must exist, open and not merged
    repropose_without: tuple[str, ...] | None = None  # send-back: propose again without these
    side: dict[str, Any] = field(default_factory=dict)  # levels and channels: gridcore.coordination
    assignee: str | None = None  # assign: this user must be a handler of the leader's team


@dataclass(frozen=True, slots=True)
class Change:
    """Everything a step writes: the case's new state and fields, and its history row."""

    to_state: State
    updates: dict[str, Any]
    reason: str
    attachments: list[Any]
    details: dict[str, Any]
    part_state: str | None = None  # the linked city part's new state (部件状态), if it changes
    # rows written beside the case (gridcore.coordination): whistles, assisting tasks, reports
    records: dict[str, Any] = field(default_factory=dict)
    # History rows of other cases the step also writes: (case id, action, details) — a merge
    # is recorded on its primary too.
    related: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)


def allowed_actions(facts: CaseFacts, role: Role | None = None) -> list[str]:
    """The steps possible from here (for ``role``, when given), in a stable order; the steps
    only the system takes (a device's alarm) are listed for the system alone."""
    out = []
    for t in TRANSITIONS.values():
        if facts.state not in t.targets or (role is not None and role not in t.roles):
            continue
        if role is not None and role in t.only_from and facts.state not in t.only_from[role]:
            continue
        if t.roles == {R.SYSTEM} and role is not R.SYSTEM:
            continue
        if t.action is Action.CALLBACK and facts.source not in coordination.CALLBACK_SOURCES:
            continue
        if t.action is Action.SELF_HANDLE:  # the reporter's own step right after reporting,
            continue                       # not one a worklist offers on others' reports
        unplaced = facts.location_source in coordination.LOCATABLE
        if (t.action is Action.LOCATE and not unplaced) or (
                unplaced and t.action in coordination.NEEDS_PLACE):
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
                    msg_key="illegal_step", action=action, state=facts.state.value,
                    allowed=allowed)


def plan(facts: CaseFacts, action: str, role: str, payload: dict[str, Any],
         now: datetime) -> Plan:
    """Check one step and say what to write. Raises Conflict (wrong state / order),
    NotPermitted (wrong role) or ValidationError (a missing or bad requirement)."""
    try:
        act = Action(action)
    except ValueError:
        raise ValidationError(f"unknown action {action!r}; actions are "
                              f"{', '.join(a.value for a in Action)}", field="action",
                              value=action, msg_key="unknown_action") from None
    try:
        who = Role(role)
    except ValueError:
        raise ValidationError(f"unknown role {role!r}; roles are "
                              f"{', '.join(r.value for r in Role)}", field="role",
                              value=role) from None
    if act is Action.DISPATCH and not payload.get("department"):
        # Dispatching without naming a department accepts the proposal (采纳建议).
        payload = {**payload, "department": facts.proposed_department}
    t = TRANSITIONS[act]
    if facts.state not in t.targets:
        raise _illegal(facts, act.value, f"{act.value} is only possible from "
                       f"{', '.join(s.value for s in t.targets)}")
    if act is Action.PARK and facts.parked:
        raise _illegal(facts, act.value, "the case is already parked (挂账)")
    if act is Action.UNPARK and not facts.parked:
        raise _illegal(facts, act.value, "the case is not parked")
    if who in t.roles and who in t.only_from and facts.state not in t.only_from[who]:
        raise NotPermitted(f"role {who.value} may {act.value} ({t.zh}) only a case that is "
                           f"{', '.join(sorted(s.value for s in t.only_from[who]))}; this "
                           f"one is {facts.state.value}", action=act.value, role=who.value,
                           roles=sorted(r.value for r in t.roles),
                           allowed=allowed_actions(facts, who))
    if act is Action.LOCATE and facts.location_source not in coordination.LOCATABLE:
        raise _illegal(facts, act.value, "the case has its place from the report itself")
    if act in coordination.NEEDS_PLACE and facts.location_source in coordination.LOCATABLE:
        raise _illegal(facts, act.value, "the case has no place yet (待定位): locate it first")
    if who not in t.roles:
        raise NotPermitted(f"role {who.value} may not {act.value} ({t.zh}); allowed roles: "
                           f"{', '.join(sorted(r.value for r in t.roles))}",
                           msg_key="role_may_not", action=act.value, role=who.value,
                           roles=sorted(r.value for r in t.roles),
                           allowed=allowed_actions(facts, who))
    missing = [f for f in t.requires if payload.get(f) in (None, "", [])]
    if act is Action.CLOSE and "check_result" in missing and facts.check_result:
        missing.remove("check_result")
    if missing:
        raise ValidationError(f"{act.value} ({t.zh}) needs {', '.join(missing)}",
                              msg_key="step_needs", action=act.value, missing=missing,
                              field=missing[0])
    if act is Action.DISPATCH:
        _check_override(facts, payload)
    return _plan_updates(facts, act, t, payload, now)


def accepted_by(step: Plan, facts: CaseFacts, actor: str, role: str) -> None:
    """签收: the handler who accepts a case holds it — it is assigned to them (as a team
    leader's 指派 would), unless a leader has already assigned it to someone."""
    if step.action is Action.ACCEPT and facts.assignee is None \
            and role == Role.DEPARTMENT_HANDLER.value and actor:
        step.updates["assignee"] = actor


def _check_override(facts: CaseFacts, payload: dict[str, Any]) -> None:
    """Dispatching elsewhere than the proposal (改派) is the dispatcher's call, with a reason
    that stays in the history: the proposal names the rule, the override must name why."""
    chosen, proposed = payload["department"], facts.proposed_department
    if proposed and chosen != proposed and not str(payload.get("reason") or "").strip():
        raise ValidationError(
            f"dispatching to {chosen} instead of the proposed {proposed} (改派) needs a reason",
            msg_key="override_needs_reason", field="reason", proposed=proposed, chosen=chosen)


def _plan_updates(facts: CaseFacts, act: Action, t: Transition, payload: dict[str, Any],
                  now: datetime) -> Plan:
    to = t.targets[facts.state] or facts.state
    updates: dict[str, Any] = {}
    needs: dict[str, Any] = {}
    if act is Action.DISPATCH:
        updates["department_code"] = needs["department"] = payload["department"]
        updates["assignee"] = None
    elif act is Action.ASSIGN:
        updates["assignee"] = needs["assignee"] = str(payload["assignee"]).strip()
    elif act is Action.SEND_BACK:
        updates["department_code"] = updates["assignee"] = None
        needs["repropose_without"] = tuple(d for d in (*facts.refused_departments,
                                                       facts.department) if d)
    elif act is Action.CHECK:
        result = payload["check_result"]
        if result not in CHECK_RESULTS:
            raise ValidationError(f"check_result must be one of {', '.join(CHECK_RESULTS)}",
                                  field="check_result", value=result)
        if result == "fail" and not str(payload.get("reason") or "").strip():
            # the department reworks from this note: what is still wrong on site
            raise ValidationError("a failed check (核查不通过) needs a note (reason) saying "
                                  "what is still wrong on site", action=act.value,
                                  missing=["reason"], field="reason")
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
        updates["primary_case_id"] = needs["primary_case_id"] = primary
    elif act is Action.EXTEND:
        updates["stage_limit"] = str(TimeLimit.parse(str(payload["new_limit"])))
    elif act is Action.PARK:
        updates["parked_since"] = now
    elif act is Action.UNPARK:
        updates["parked_since"] = None
    elif act is Action.SUPERVISE:
        updates["supervised"] = True
    elif act is Action.PROPOSE_CLOSE:
        updates["close_proposal"] = {"at": now.isoformat(), "reason": payload["reason"]}
    if act in (Action.REWORK, Action.REOPEN):
        updates["check_result"] = None
    if act.value in coordination.SIDE_ACTIONS or act is Action.FEED_BACK:
        more, side = coordination.plan_side(act.value, facts.source, facts.department,
                                            facts.open_tasks, payload)
        updates.update(more)
        if side:
            needs["side"] = side
    # A voided case brought back is reported again: its clock restarts at the dispatch stage.
    stage = Stage.DISPATCH if to is State.REPORTED else t.stage
    return Plan(act, facts.state, to, updates, stage, payload, **needs)


def check_primary(step: Plan, primary: CaseFacts | None) -> None:
    """Merging (并案) needs a primary case that exists, is open and is not merged itself."""
    if primary is None or primary.state not in OPEN_STATES or primary.primary_case_id:
        raise Conflict(f"case {step.primary_case_id} cannot be a primary case: it must exist, "
                       "be open and not itself merged", primary_case_id=step.primary_case_id,
                       allowed=["merge"])


def check_photos(step: Plan, count: int, limit: int) -> None:
    """On-site photos go with the steps taken on site (核实, 作废 at verification, 处置, 反馈,
    核查); any other step with photos, or more than ``limit`` of them, is refused."""
    if not count:
        return
    t = TRANSITIONS[step.action]
    if not t.photos:
        takes = ", ".join(a.value for a, tr in TRANSITIONS.items() if tr.photos)
        raise ValidationError(f"{step.action.value} ({t.zh}) takes no photos; photos go with "
                              f"{takes}", field="photos", action=step.action.value)
    if count > limit:
        raise ValidationError(f"{count} photos; a step takes at most {limit}", field="photos",
                              count=count, limit=limit)


def check_assignment(step: Plan, facts: CaseFacts, role: str, actor: Member | None,
                     assignee: Member | None) -> None:
    """Assigning (指派) gives the department's case to a handler of the department; a handler
    may do so only as the leader of the assignee's team (an admin always)."""
    if assignee is None or not assignee.active or assignee.role != R.DEPARTMENT_HANDLER.value \
            or assignee.department != facts.department:
        raise ValidationError(
            f"{step.assignee!r} is not an active handler of department {facts.department}",
            msg_key="assignee_not_handler", field="assignee", value=step.assignee,
            department=facts.department)
    if role == R.ADMIN.value:
        return
    if actor is None or not actor.leader or actor.team is None \
            or actor.department != facts.department:
        raise NotPermitted(f"only the leader of {step.assignee}'s team may assign cases to them",
                           msg_key="assign_not_leader", action=Action.ASSIGN.value,
                           assignee=step.assignee)
    if actor.team != assignee.team:
        raise ValidationError(f"{step.assignee!r} is not a member of team {actor.team}",
                              msg_key="assignee_not_in_team", field="assignee",
                              value=step.assignee, team=actor.team)


HISTORY_FIELDS = ("department", "check_result", "new_limit", "primary_case_id", "alarm",
                  "assignee")


# A registered case that is not final holds its city part in the class's case state (破损,
# 丢失, 占用): registering (立案) or reopening sets it, leaving these states (结案, 并案)
# releases it — back to intact (完好) unless another such case still holds the part.
PART_HOLDING_STATES = OPEN_STATES - {S.REPORTED, S.VERIFIED}


def moves_part(step: Plan, facts: CaseFacts) -> bool:
    """Does this step change the state of the case's city part? (Storage then looks up the
    other cases holding the part, for :func:`changes`.)"""
    if facts.part_code is None or not (facts.category or "").startswith("P"):
        return False
    return (step.from_state in PART_HOLDING_STATES) != (step.to_state in PART_HOLDING_STATES)


def part_state_after(step: Plan, facts: CaseFacts, holders: tuple[str, ...] = ()) -> str | None:
    """The part's state after ``step`` (None: unchanged). ``holders``: the categories of the
    other registered, open cases on the same part, most recent first."""
    if not moves_part(step, facts):
        return None
    taxonomy = default_taxonomy()
    if step.to_state in PART_HOLDING_STATES:
        return taxonomy.get(str(facts.category)).case_state
    for category in holders:
        if category in taxonomy:
            return taxonomy.get(category).case_state
    return "intact"


def changes(step: Plan, facts: CaseFacts, calendar: WorkingCalendar, now: datetime,
            reproposal: ResponsibleParty | None = None,
            part_holders: tuple[str, ...] = (),
            found: dict[str, Any] | None = None) -> Change:
    """Everything ``step`` writes, once storage has checked what it needed: the new fields
    (a new clock's stage, limit and marks on the working calendar, closing or reopening, the
    parked time), the linked part's state, and the history row. ``reproposal``: after a
    send-back, the dispatch proposal made without the refusing departments;
    ``part_holders``: see :func:`part_state_after`; ``found``: what storage looked up for a
    step of :mod:`gridcore.coordination` (the team above, the resolved place)."""
    updates = dict(step.updates)
    details: dict[str, Any] = {}
    records: dict[str, Any] = {}
    pauses = list(facts.parked_intervals)
    if step.action.value in coordination.SIDE_ACTIONS:
        more, details, records = coordination.side_changes(
            step.action.value, step.side, step.payload, facts.category, facts.department,
            calendar, now, found or {})
        updates.update(more)
    if step.action is Action.DISPATCH:
        chosen = step.payload["department"]
        details = {"proposed": facts.proposed_department, "rule": facts.proposal_rule,
                   "chosen": chosen, "override": chosen != facts.proposed_department}
    elif step.action is Action.SEND_BACK:
        again = reproposal or ResponsibleParty(None, None, "no responsible party could be "
                                                           "resolved")
        updates.update(refused_departments=list(step.repropose_without or ()),
                       proposed_department=again.department_code, proposal_rule=again.rule)
        details = {"refused_by": facts.department, "reproposed": again.department_code,
                   "rule": again.rule, "basis": {"source": again.source,
                                                 "rule_id": again.rule_id}}
    elif step.action is Action.UNPARK and facts.parked_since is not None:
        pauses.append((facts.parked_since, now))
        updates["parked_intervals"] = [[a.isoformat(), b.isoformat()] for a, b in pauses]
        updates["parked_seconds"] = facts.parked_seconds + (
            now - facts.parked_since).total_seconds()
    if step.stage is not None and facts.category is not None:
        limit = default_taxonomy().limit(facts.category, step.stage)
        updates.update(stage=step.stage.value, stage_started_at=now, stage_limit=str(limit))
    if step.to_state in TERMINAL_STATES:
        updates["closed_at"] = now
    elif step.action is Action.REOPEN:
        updates["closed_at"] = None
    if any(k in updates for k in ("stage_limit", "parked_intervals")):
        start = updates.get("stage_started_at", facts.stage_started_at)
        limit_text = updates.get("stage_limit", facts.stage_limit)
        if start is not None and limit_text:
            updates["warn_at"], updates["deadline_at"] = calendar.stage_marks(
                start, TimeLimit.parse(limit_text), pauses)
    if step.action is Action.EXTEND:
        details = {"old_limit": facts.stage_limit, "new_limit": updates["stage_limit"]}
    related: list[tuple[int, str, dict[str, Any]]] = []
    if step.action is Action.MERGE and step.primary_case_id is not None \
            and facts.case_id is not None:
        related.append((step.primary_case_id, Action.MERGE.value,
                        {"merged_case_id": facts.case_id, "role": "primary"}))
    if step.action is Action.ASSIGN:
        details = {"previous_assignee": facts.assignee}
    payload = step.payload
    details.update({k: payload[k] for k in HISTORY_FIELDS if payload.get(k) is not None})
    part_state = part_state_after(step, facts, part_holders)
    if part_state is not None:
        details["part_state"] = {"part": facts.part_code, "state": part_state}
    return Change(step.to_state, updates, payload.get("reason") or "",
                  list(payload.get("attachments") or []), details, part_state, records,
                  related)

