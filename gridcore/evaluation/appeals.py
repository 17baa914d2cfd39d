"""Appeals (申诉): a party asks that one case's penalty not count against it.

::

    filed 已提交 ─approve 批准→ approved 已批准   (the penalty is waived for that party only)
                 └reject 驳回→ rejected 已驳回

Who: a department handler for their own department; a street or community account (a manager
whose areas hold the area) for an area; a grid worker for themselves; a manager for any party
in their areas; an admin for any. Deciding: a manager or admin, never the one who filed it,
always with a reason. An appeal must be filed within ``window_days`` working days after the
period it concerns ends, and is due for decision ``decision_days`` working days after filing
(its own clock, 申诉时限, on the working calendar). Storage checks the rest against the data:
the case exists and does carry that penalty for that party in that period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gridcore.calendar import WorkingCalendar, city_time
from gridcore.errors import Conflict, Forbidden, ValidationError
from gridcore.evaluation.model import Kind
from gridcore.evaluation.period import Period
from gridcore.security.access import Principal, Role
from gridcore.taxonomy import LimitUnit, TimeLimit


class AppealState(StrEnum):
    FILED = "filed"
    APPROVED = "approved"
    REJECTED = "rejected"


DECISIONS = {"approve": AppealState.APPROVED, "reject": AppealState.REJECTED}
MAX_REASON = 2000


@dataclass(frozen=True)
class AppealRules:
    window_days: int = 5  # working days after the period's end to file
    decision_days: int = 5  # working days from filing to decide


def may_file_for(principal: Principal, kind: str, party: str) -> bool:
    role = principal.role
    if principal.unscoped or role is Role.ADMIN:
        return True
    if kind == "department":
        return (role is Role.DEPARTMENT_HANDLER and principal.department == party) or (
            role is Role.MANAGER and not principal.areas)
    if kind == "area":
        return role is Role.MANAGER and (not principal.areas or any(
            party.startswith(a) for a in principal.areas))
    if kind == "worker":
        return (role is Role.GRID_WORKER and principal.name == party) or role is Role.MANAGER
    return False


def filing_closes_at(period: Period, calendar: WorkingCalendar, rules: AppealRules) -> datetime:
    """The last moment an appeal about ``period`` may be filed: ``window_days`` working days
    after the period's end."""
    end = period.window(calendar.timezone).end
    return calendar.deadline(end, TimeLimit(rules.window_days, LimitUnit.WORKING_DAYS))[0]


def may_decide(principal: Principal, state: str, filed_by: str) -> bool:
    """Whether ``principal`` may decide an appeal now (what :func:`check_decision` allows,
    reasons aside): a manager or admin, not its filer, while it is filed."""
    return (principal.unscoped or principal.role in (Role.MANAGER, Role.ADMIN)) and (
        state == AppealState.FILED and principal.name != filed_by)


def check_filing(principal: Principal, kind: Kind, party: str, penalty: str, reason: str,
                 period: Period, now: datetime, calendar: WorkingCalendar,
                 rules: AppealRules) -> datetime:
    """Check a new appeal; returns its decision deadline."""
    if not may_file_for(principal, kind.key, party):
        raise Forbidden(f"{principal.name} may not appeal for {kind.key} {party}",
                        msg_key="appeal_not_yours", action="appeal.file", party=party)
    kind.check_penalty(penalty)
    if not reason or not reason.strip():
        raise ValidationError("an appeal needs a reason", msg_key="reason_missing",
                              field="reason")
    if len(reason) > MAX_REASON:
        raise ValidationError(f"the reason is longer than {MAX_REASON} characters",
                              msg_key="reason_too_long", field="reason", limit=MAX_REASON)
    if now < period.window(calendar.timezone).start:
        raise ValidationError(f"period {period} has not begun", msg_key="period_not_begun",
                              field="period", value=str(period))
    last = filing_closes_at(period, calendar, rules)
    if now > last:
        raise Conflict(f"appeals for {period} closed at {last.isoformat()} "
                       f"({rules.window_days} working days after the period)",
                       msg_key="appeal_window_closed", period=str(period),
                       closed_at=last.isoformat(), days=rules.window_days,
                       closed=city_time(last, calendar.timezone))
    return calendar.deadline(now, TimeLimit(rules.decision_days, LimitUnit.WORKING_DAYS))[0]


def check_decision(principal: Principal, state: str, filed_by: str, action: str,
                   reason: str) -> AppealState:
    """The appeal's new state; refuses the filer, a settled appeal, a decision without a
    reason."""
    if action not in DECISIONS:
        raise ValidationError(f"decide with approve or reject, not {action!r}",
                              field="action", value=action, allowed=list(DECISIONS))
    if not (principal.unscoped or principal.role in (Role.MANAGER, Role.ADMIN)):
        raise Forbidden("only a manager or an admin decides appeals", action="appeal.decide",
                        msg_key="appeal_decider")
    if state != AppealState.FILED:
        raise Conflict(f"the appeal is already {state}", msg_key="appeal_settled",
                       state=state, allowed=[])
    if principal.name == filed_by:
        raise Forbidden("an appeal is decided by someone other than who filed it",
                        msg_key="appeal_own", action="appeal.decide")
    if not reason or not reason.strip():
        raise ValidationError("a decision needs a reason", msg_key="reason_missing",
                              field="reason")
    return DECISIONS[action]


def clock_colour(decide_by: datetime, decided_at: datetime | None, now: datetime) -> str:
    """green while open and in time, red once past the deadline; settled: done."""
    if decided_at is not None:
        return "late" if decided_at > decide_by else "done"
    return "red" if now > decide_by else "green"
