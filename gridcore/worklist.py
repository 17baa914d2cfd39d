"""Worklists (待办): what waits for whom — pure rules, no I/O.

A case is a task for a role when the role takes the next step of its state (the lifecycle's
table says who takes which step); the worklist names the task by that step:

* grid worker (网格员) — **verify** (核实) reports in their grids that someone else filed (their
  own reports are verified at the desk), **check** (核查) fed-back cases on site;
* department handler (处置人员) — their department's dispatched cases to **accept** (签收) or
  send back, accepted and reworked ones to **handle** (处置), handled ones to **feed back**
  (反馈); the cases they sent back, until dispatched again, as **sent_back** (退单待派, no step);
* dispatcher (受理员 / 派遣员) and admin — **verify**, **register** (立案), **dispatch** (派遣,
  also after a send-back) and **close** (结案) after the check;
* manager (领导) — **overdue** (督办): every open case past its deadline in their areas.

Items are ordered by deadline (the stage clock's), soonest first; a case without one last.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gridcore.lifecycle import State
from gridcore.security.access import Role


class Task(StrEnum):
    VERIFY = "verify"  # 核实
    CHECK = "check"  # 核查
    ACCEPT = "accept"  # 签收
    HANDLE = "handle"  # 处置
    FEED_BACK = "feed_back"  # 反馈
    SENT_BACK = "sent_back"  # 退单待派 (waiting for the desk)
    REGISTER = "register"  # 立案
    DISPATCH = "dispatch"  # 派遣
    CLOSE = "close"  # 结案
    OVERDUE = "overdue"  # 督办


TASK_ZH = {Task.VERIFY: "核实", Task.CHECK: "核查", Task.ACCEPT: "签收", Task.HANDLE: "处置",
           Task.FEED_BACK: "反馈", Task.SENT_BACK: "退单待派", Task.REGISTER: "立案",
           Task.DISPATCH: "派遣", Task.CLOSE: "结案", Task.OVERDUE: "督办"}

S = State
_DESK = {S.REPORTED: Task.VERIFY, S.VERIFIED: Task.REGISTER, S.REGISTERED: Task.DISPATCH,
         S.SENT_BACK: Task.DISPATCH, S.CHECKED: Task.CLOSE}
# The state → task table of each role that has a worklist by state (managers' is by clock).
BY_STATE: dict[Role, dict[State, Task]] = {
    Role.GRID_WORKER: {S.REPORTED: Task.VERIFY, S.FED_BACK: Task.CHECK},
    Role.DEPARTMENT_HANDLER: {S.DISPATCHED: Task.ACCEPT, S.ACCEPTED: Task.HANDLE,
                              S.REWORK: Task.HANDLE, S.HANDLED: Task.FEED_BACK,
                              S.SENT_BACK: Task.SENT_BACK},
    Role.DISPATCHER: dict(_DESK),
    Role.ADMIN: dict(_DESK),
}


@dataclass(frozen=True, slots=True)
class Worklist:
    """What one role's worklist holds: tasks by state, or (managers) overdue cases."""

    role: Role
    by_state: dict[State, Task]
    overdue: bool = False
    # grid workers do not verify what they reported themselves
    skip_own_reports: bool = False
    # department handlers: their department's cases; sent-back ones by the refusal
    by_department: bool = False

    @property
    def tasks(self) -> tuple[Task, ...]:
        if self.overdue:
            return (Task.OVERDUE,)
        return tuple(dict.fromkeys(self.by_state.values()))

    def states(self, tasks: set[Task] | None = None) -> list[State]:
        """The states that hold the tasks (all of the role's when ``tasks`` is None)."""
        return [s for s, t in self.by_state.items() if tasks is None or t in tasks]

    def task_of(self, state: str) -> Task:
        return Task.OVERDUE if self.overdue else self.by_state[State(state)]


def worklist_for(role: Role | None) -> Worklist:
    """The worklist of a role (analysts and machine keys have an empty one)."""
    if role is Role.MANAGER:
        return Worklist(Role.MANAGER, {}, overdue=True)
    if role is None or role not in BY_STATE:
        return Worklist(role or Role.ANALYST, {})
    return Worklist(role, BY_STATE[role], skip_own_reports=role is Role.GRID_WORKER,
                    by_department=role is Role.DEPARTMENT_HANDLER)


def parse_tasks(text: str | None, worklist: Worklist) -> set[Task] | None:
    """``?task=verify,check`` → those tasks (None: all of the role's); a task that is not
    the role's is an error naming the role's tasks."""
    from gridcore.errors import ValidationError

    if not text:
        return None
    wanted = {t.strip() for t in text.split(",") if t.strip()}
    known = {t.value for t in worklist.tasks}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValidationError(f"task {', '.join(unknown)} is not on the worklist of role "
                              f"{worklist.role.value}; its tasks: "
                              f"{', '.join(sorted(known)) or 'none'}", field="task",
                              value=text, tasks=sorted(known))
    return {Task(t) for t in wanted}
