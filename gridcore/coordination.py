"""The steps of levels and channels (小事不出社区，大事不出街道; 吹哨报到; 协同处置; 接诉即办) —
pure rules, no I/O. :mod:`gridcore.lifecycle` holds them in its one table; this module checks
what each needs and says what it writes.

* **locate 定位** — a report filed without a place (a hotline address below the geocoding
  confidence: the 待定位 queue) gets its point from a dispatcher; storage resolves it.
* **self_handle 自处置** — a grid worker or a community team solved a small problem on the
  spot: verified, handled and closed in one step, with a photo before and one after.
* **escalate 上报/升级** — the level holding a case (a community's or street's team) cannot solve
  it: the team of the level above receives it, with the reason; the system escalates an overdue
  case itself when its class says so (``gridcore/data/escalation.csv``).
* **whistle 吹哨 / report_in 报到** — a street names departments that must report within a set
  time; each reports for itself.
* **assist 协同 / assist_done 协同反馈 / release 解除协同** — assisting departments beside the lead,
  each with its own task, limit and feedback; the lead's feedback (反馈) waits until every task
  is done or released.
* **callback 回访** — after closing, a hotline or citizen case's caller is called back: reached
  or not, resolved or not, how satisfied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gridcore.class_flags import class_flags
from gridcore.errors import Conflict, ValidationError
from gridcore.taxonomy import TimeLimit

LEVELS_UP = ("community", "street", "district")  # a level escalates to the next one
DEPARTMENT_LEVELS = LEVELS_UP
SATISFACTION = ("satisfied", "basically_satisfied", "unsatisfied")  # 满意 / 基本满意 / 不满意
CALLBACK_SOURCES = ("hotline", "citizen")
PHOTO_ROLES = ("before", "after")
DEFAULT_WHISTLE_LIMIT = "30m"
MAX_PARTIES = 20
# A case filed without a place (待定位) is located by a dispatcher before it goes on.
LOCATABLE = ("unlocated",)
NEEDS_PLACE = ("register", "dispatch", "self_handle")
# The steps a department beside the lead takes on a case: its own report and task.
PARTY_STEPS = ("report_in", "assist_done")


def own_department(step: str, role: str, mine: str | None, payload: dict[str, Any]
                   ) -> dict[str, Any]:
    """A department handler reports in and answers its task for their own department: the
    payload's department defaults to theirs, another one is refused."""
    if step not in PARTY_STEPS or role != "department_handler" or mine is None:
        return payload
    named = str(payload.get("department") or "").strip()
    if named and named != mine:
        from gridcore.errors import Forbidden

        raise Forbidden(f"you act for {mine}; {named} reports for itself", department=named)
    return {**payload, "department": mine}


def level_above(level: str | None) -> str | None:
    """The level a case held at ``level`` escalates to (None at the top or without a level)."""
    if level not in LEVELS_UP:
        return None
    i = LEVELS_UP.index(level)
    return LEVELS_UP[i + 1] if i + 1 < len(LEVELS_UP) else None


def area_of(level: str, grid_code: str | None) -> str | None:
    """The code of the ``level`` area a grid lies in (district 6, street 9, community 12)."""
    digits = {"district": 6, "street": 9, "community": 12}[level]
    return grid_code[:digits] if grid_code and len(grid_code) >= digits else None


def _departments(payload: Mapping[str, Any], field: str = "departments") -> tuple[str, ...]:
    raw = payload.get(field)
    if isinstance(raw, str):
        raw = [d for d in raw.replace(";", ",").split(",")]
    if not isinstance(raw, list | tuple):
        raise ValidationError(f"{field} must be a list of department codes", field=field)
    codes = tuple(dict.fromkeys(str(d).strip() for d in raw if str(d).strip()))
    if not codes:
        raise ValidationError(f"{field} names no department", field=field)
    if len(codes) > MAX_PARTIES:
        raise ValidationError(f"{field}: at most {MAX_PARTIES} departments", field=field)
    return codes


def _limit(payload: Mapping[str, Any], default: str | None) -> str | None:
    text = payload.get("new_limit") or default
    return str(TimeLimit.parse(str(text))) if text else None


def _coordinate(payload: Mapping[str, Any], name: str) -> float:
    try:
        value = float(payload[name])
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a number", field=name) from None
    if not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number", field=name)
    return value


def photo_roles(count: int, before_given: bool = False) -> list[str]:
    """The roles of a self-handling step's uploaded photos, in the order sent: the first is
    taken before the work, the others after it (so two photos at least); all after it when the
    step names its photo before already (the report's own, in a self-handled report)."""
    return ["before" if i == 0 and not before_given else "after" for i in range(count)]


SELF_HANDLERS = ("grid_worker", "department_handler", "admin")


def check_self_handled_report(role: str, placed: bool, handling: str, before: int,
                              after: int) -> None:
    """A report filed as solved on the spot (自处置 in one request), checked before anything is
    stored: by a grid worker or a community team's handler, at a point, with what was done,
    a photo before the work (the report's) and one after it."""
    from gridcore.errors import Forbidden

    if role not in SELF_HANDLERS:
        raise Forbidden(f"self-handling (自处置) is filed by a grid worker or a handler on the "
                        f"spot, not by role {role}", field="self_handled", role=role)
    if not placed:
        raise ValidationError("a self-handled report needs the point where it was solved "
                              "(lon, lat), not only an address", field="lon")
    if not handling.strip():
        raise ValidationError("a self-handled report says what was done on the spot "
                              "(handling)", field="handling")
    if before < 1:
        raise ValidationError("a self-handled report needs a photo taken before the work "
                              "(photos)", field="photos")
    if after < 1:
        raise ValidationError("a self-handled report needs a photo taken after the work "
                              "(after_photos)", field="after_photos")


def check_photo_roles(attachments: Any) -> list[dict[str, Any]]:
    """Self-handling's evidence: at least one photo taken before and one after."""
    items = attachments if isinstance(attachments, list) else []
    roles = {a.get("role") for a in items if isinstance(a, dict)}
    missing = [r for r in PHOTO_ROLES if r not in roles]
    if missing:
        raise ValidationError(f"self-handling (自处置) needs photos taken {' and '.join(missing)}"
                              " the work (attachments with role before / after)",
                              field="photos", missing=missing)
    return items


def plan_side(action: str, source: str | None, department: str | None,
              open_tasks: tuple[str, ...], payload: Mapping[str, Any]
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the case's new fields, what storage must look up or write) of one of this module's
    steps, after the state machine allowed it; ValidationError / Conflict otherwise."""
    updates: dict[str, Any] = {}
    side: dict[str, Any] = {}
    if action == "locate":
        side["locate"] = (_coordinate(payload, "lon"), _coordinate(payload, "lat"),
                          str(payload.get("crs") or "EPSG:4326"))
    elif action == "self_handle":
        check_photo_roles(payload.get("attachments"))
        updates.update(check_result="pass", self_handled=True)
    elif action == "escalate":
        if department is None:
            raise Conflict("only a case held by a department can be escalated (上报): this one "
                           "is held by none", allowed=["dispatch"])
        side["escalate_from"] = department
    elif action == "whistle":
        side["departments"] = _departments(payload)
        side["limit"] = _limit(payload, DEFAULT_WHISTLE_LIMIT)
    elif action in ("report_in", "assist_done", "release"):
        side["task_department"] = str(payload["department"]).strip()
    elif action == "assist":
        codes = _departments(payload)
        if department is not None and department in codes:
            raise ValidationError(f"{department} leads this case; it cannot also assist",
                                  field="departments", value=department)
        side["departments"] = codes
        side["limit"] = _limit(payload, None)  # None: the class's handling limit
    elif action == "feed_back" and open_tasks:
        raise Conflict(f"the lead's feedback (反馈) waits for the assisting departments: "
                       f"{', '.join(open_tasks)} still have open tasks (done or released "
                       "first)", open_tasks=list(open_tasks), allowed=["assist_done", "release"])
    elif action == "callback":
        updates["callback"] = _callback(source, payload)
    return updates, side


def _callback(source: str | None, payload: Mapping[str, Any]) -> dict[str, Any]:
    if source not in CALLBACK_SOURCES:
        raise Conflict(f"callbacks (回访) are for hotline and citizen cases; this one came "
                       f"from {source}", source=source, allowed=[])
    reached = payload.get("reached")
    if not isinstance(reached, bool):
        raise ValidationError("reached must be true or false (was the caller reached?)",
                              field="reached")
    out: dict[str, Any] = {"reached": reached, "resolved": None, "satisfaction": None}
    if reached:
        satisfaction, resolved = payload.get("satisfaction"), payload.get("resolved")
        if satisfaction not in SATISFACTION:
            raise ValidationError(f"satisfaction must be one of {', '.join(SATISFACTION)}",
                                  field="satisfaction", value=satisfaction)
        if not isinstance(resolved, bool):
            raise ValidationError("resolved must be true or false (does the caller say the "
                                  "problem is solved?)", field="resolved")
        out.update(resolved=resolved, satisfaction=satisfaction)
    return out


def _escalation() -> dict[str, bool]:
    return class_flags("escalation", "escalate_when_overdue")


def escalates_when_overdue(category: str) -> bool:
    """Does an overdue case of this class go up a level by itself? (``escalation.csv``)"""
    return _escalation().get(category, False)


def auto_escalated() -> frozenset[str]:
    return frozenset(k for k, v in _escalation().items() if v)


SIDE_ACTIONS = frozenset({"locate", "self_handle", "escalate", "whistle", "report_in",
                          "assist", "assist_done", "release", "callback"})


def side_changes(action: str, side: Mapping[str, Any], payload: Mapping[str, Any],
                 category: str | None, department: str | None, calendar: Any, now: Any,
                 found: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any],
                                                    dict[str, Any]]:
    """(the case's new fields, the history row's details, the rows storage writes beside the
    case) of one of this module's steps; ``found``: what storage looked up for it (the team
    above, the resolved place). ``calendar``: the city's working calendar (deadlines)."""
    from gridcore.taxonomy import Stage, default_taxonomy

    updates: dict[str, Any] = {}
    details: dict[str, Any] = {}
    records: dict[str, Any] = {}
    if action == "locate":
        updates.update(found["location"])
        details = {"lon": side["locate"][0], "lat": side["locate"][1], "crs": side["locate"][2],
                   "grid": found["location"].get("grid_code")}
    elif action == "self_handle":
        details = {"photos": [a for a in payload.get("attachments") or []
                              if isinstance(a, dict) and a.get("role") in PHOTO_ROLES]}
    elif action == "escalate":
        team = found["team"]
        updates.update(department_code=team["department"], proposed_department=team["department"],
                       proposal_rule=f"escalated (上报) from {team['from_level']} "
                                     f"{department} to the {team['level']} team")
        details = {"from": department, "to": team["department"],
                   "from_level": team["from_level"], "to_level": team["level"],
                   "auto": bool(payload.get("auto"))}
    elif action in ("whistle", "assist"):
        if side.get("limit"):
            limit = TimeLimit.parse(side["limit"])
        else:
            limit = default_taxonomy().limit(str(category), Stage.HANDLE)
        deadline = calendar.stage_marks(now, limit, [])[1]
        records[action] = [{"department": d, "limit": str(limit), "deadline": deadline}
                           for d in side["departments"]]
        details = {"departments": list(side["departments"]), "limit": str(limit),
                   "deadline": deadline.isoformat()}
    elif action in ("report_in", "assist_done", "release"):
        records[action] = {"department": side["task_department"]}
        details = {"department": side["task_department"]}
    elif action == "callback":
        details = dict(payload_callback(payload))
    return updates, details, records


def payload_callback(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: payload.get(k) for k in ("reached", "resolved", "satisfaction")}


# The steps whose offer depends on the coordination state, not on the state machine alone.
COORDINATION_STEPS = ("escalate", "whistle", "report_in", "assist", "assist_done", "release")


def follow_coordination(actions: list[str], *, role: str | None, my_department: str | None,
                        lead: str | None, waiting_whistles: tuple[str, ...],
                        open_tasks: tuple[str, ...], can_escalate: bool) -> list[str]:
    """The state machine's steps (``lifecycle.allowed_actions``) narrowed by who waits for
    whom: 报到 only while a whistle waits (a handler: for their own department), 协同反馈 only
    on an open task (a handler: their own), 解除协同 only while a task is open, the lead's 反馈
    not while assisting tasks are open, 上报 only where a level team above exists. A handler
    of a department that is a party, not the lead, takes its own steps only."""
    # a handler's own department when known (the map's role picker asks for a role without one)
    handler = role == "department_handler" and my_department is not None
    party_only = handler and my_department is not None and my_department != lead
    out = []
    for a in actions:
        if a == "report_in" and not (waiting_whistles and (
                not handler or my_department in waiting_whistles)):
            continue
        if a == "assist_done" and not (open_tasks and (
                not handler or my_department in open_tasks)):
            continue
        if a == "release" and not open_tasks:
            continue
        if a == "feed_back" and open_tasks:
            continue
        if a == "escalate" and not can_escalate:
            continue
        if party_only and a not in PARTY_STEPS:
            continue
        out.append(a)
    return out
