"""Who may do what, and see where (权限与数据范围) — pure rules, no I/O.

Two questions, answered separately:

* **May this role perform this action at all?** ``ACTIONS`` is the roles × actions matrix.
  A refusal is ``Forbidden`` (HTTP 403).
* **Does this record lie inside the principal's scope?** A ``Scope`` is city-wide, a set of
  area-code prefixes, or a department. Area codes nest by prefix (district 6 digits ⊂ street 9
  ⊂ community 12 ⊂ grid 15), so "a street sees its communities" is simply the street code as a
  prefix of every grid code below it. A record outside the scope is reported as ``NotFound``
  (HTTP 404) so that its existence is not leaked; an *action* on it is ``Forbidden``.

Storage code turns a ``Scope`` into a WHERE clause (``layers.security.scoping``) so that scoping is
enforced in the query, not only in the page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from gridcore.errors import Forbidden, ValidationError


class Role(StrEnum):
    """The one list of roles: the six a user can have, and ``system`` — the product itself
    acting (intake filing a machine report, an automatic step), never a user's role."""

    GRID_WORKER = "grid_worker"            # 网格员 / 监督员
    DISPATCHER = "dispatcher"              # 受理员 / 派遣员
    DEPARTMENT_HANDLER = "department_handler"  # 专业部门处置人员
    MANAGER = "manager"                    # 领导 / 指挥中心
    ANALYST = "analyst"                    # GIS 分析员
    ADMIN = "admin"                        # 系统管理员
    SYSTEM = "system"                      # the product itself


W, D, H, M, A, X = (Role.GRID_WORKER, Role.DISPATCHER, Role.DEPARTMENT_HANDLER, Role.MANAGER,
                    Role.ANALYST, Role.ADMIN)
USER_ROLES = frozenset(Role) - {Role.SYSTEM}  # what ``gridcore users add --role`` accepts
EVERYONE = USER_ROLES

# Workers report and check on site, dispatchers run the operations centre, departments handle,
# managers supervise, analysts read.
ACTIONS: dict[str, frozenset[Role]] = {
    "case.report": frozenset({W, D, X}),
    "case.read": EVERYONE,
    # Which role may take which lifecycle step is the state machine's own table
    # (gridcore.lifecycle.TRANSITIONS); see ``gridcore.lifecycle.transition_allowed``.
    "case.act": frozenset({W, D, H, M, X}),
    "case.export": frozenset({D, M, A, X}),
    "features.read": EVERYONE,
    "geocode": EVERYONE,                   # an address → places with a confidence
    "tiles.read": EVERYONE,
    "resolve": EVERYONE,                   # a location → grid, workers, department
    "health.read": EVERYONE,               # aggregates
    "health.details": frozenset({W, D, M, X}),  # the records behind a score
    "entity.read": frozenset({W, D, M, A, X}),
    "entity.unmask": frozenset({W, M, X}),  # 9+X personal data, with a stated purpose
    "layers.write": frozenset({X}),
    "dispatch_rules.write": frozenset({X}),
    "users.admin": frozenset({X}),
    "keys.admin": frozenset({X}),
    "audit.read": frozenset({X}),
    # evaluation (考评): rankings are public inside the service; a party's details (the cases
    # behind its figures) only for the party itself or whoever oversees it
    "evaluation.read": EVERYONE,
    "evaluation.details": frozenset({W, D, H, M, A, X}),
    "appeal.file": frozenset({W, H, M, X}),
    "appeal.decide": frozenset({M, X}),
    "briefing.read": frozenset({D, M, A, X}),
    # device sessions (sign in once per phone): everyone keeps their own; admins revoke any
    "sessions.admin": frozenset({X}),
    # patrols (巡查): workers record their own shifts; managers and admins read everyone's
    "patrol.record": frozenset({W, X}),
    "patrol.read_all": frozenset({M, X}),
    "device.read": frozenset({W, D, M, A, X}),  # the device registry and its open cases
    "alarm.ingest": frozenset({X}),        # machines send alarms with iot / video keys
    "case.locate": frozenset({D, M, X}),   # the 待定位 queue: reports waiting for a place
    "case.discuss": frozenset({W, D, H, M, X}),  # a case's consultation thread (会商)
    # intelligence (issue 22): the learned dispatch proposal is the dispatcher's; the forecast
    # (patrol list, warnings) for those who patrol, dispatch, supervise or analyse
    "dispatch.propose": frozenset({D, X}),
    "forecast.read": frozenset({W, D, M, A, X}),
    "webhooks.admin": frozenset({X}),       # outgoing webhooks (事件推送) and their log
}

# Machine clients (Open311 apps, IoT sensors) authenticate with API keys, not roles.
KEY_PURPOSES: dict[str, frozenset[str]] = {
    "open311": frozenset({"case.report", "case.read"}),
    "iot": frozenset({"case.report", "alarm.ingest"}),  # sensors (物联感知)
    "video": frozenset({"case.report", "alarm.ingest"}),  # video analytics (视频智能分析)
}
# The purposes whose requests are signed (HMAC over the body: gridcore.security.signatures).
SIGNED_PURPOSES = frozenset({"iot", "video"})


def parse_role(value: str) -> Role:
    """A user's role (``system`` is no user's)."""
    if value in USER_ROLES:
        return Role(value)
    raise ValidationError(f"unknown role {value!r}; expected one of "
                          f"{', '.join(r.value for r in Role if r in USER_ROLES)}",
                          field="role", value=value)


def role_allows(role: Role | str, action: str) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return Role(role) in ACTIONS[action]


@dataclass(frozen=True)
class Scope:
    """Where a principal may look. ``city_wide`` wins; otherwise a record is inside when its
    grid code starts with one of ``area_prefixes`` or it is dispatched to ``department``."""

    city_wide: bool = False
    area_prefixes: tuple[str, ...] = ()
    department: str | None = None
    # The signed-in user: the cases they filed are theirs to read wherever they lie (a worker
    # who reported across the edge of their grids still follows the case).
    user: str | None = None

    def covers_grid(self, grid_code: str | None) -> bool:
        if self.city_wide:
            return True
        return grid_code is not None and any(grid_code.startswith(p)
                                             for p in self.area_prefixes)

    def covers_case(self, grid_code: str | None, department: str | None,
                    filed_by: str | None = None) -> bool:
        if self.covers_grid(grid_code):
            return True
        if self.user is not None and filed_by is not None and filed_by == self.user:
            return True
        return self.department is not None and department == self.department

    @property
    def empty(self) -> bool:
        return not (self.city_wide or self.area_prefixes or self.department or self.user)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user (role + areas) or an API key (purpose)."""

    name: str
    role: Role | None = None
    department: str | None = None
    areas: tuple[str, ...] = field(default_factory=tuple)
    key_purpose: str | None = None
    # The development stand-in (a role named in a header, no sign-in): sees the whole city.
    unscoped: bool = False

    @property
    def is_key(self) -> bool:
        return self.key_purpose is not None

    def may(self, action: str) -> bool:
        if self.is_key:
            return action in KEY_PURPOSES.get(self.key_purpose or "", frozenset())
        return self.role is not None and role_allows(self.role, action)

    def require(self, action: str) -> None:
        if not self.may(action):
            who = f"key ({self.key_purpose})" if self.is_key else f"role {self.role}"
            raise Forbidden(f"{who} may not perform {action}", action=action,
                            role=str(self.role) if self.role else None)

    @property
    def scope(self) -> Scope:
        return scope_for(self)


def scope_for(principal: Principal) -> Scope:
    """Grid workers and street/community users see their areas; a department handler sees what
    is dispatched to their department (plus any areas assigned); dispatchers, managers and
    analysts see the city unless areas are assigned; admins and API keys see everything they
    may act on (keys are limited by purpose, and their reads by the cases they filed)."""
    areas = tuple(sorted(set(principal.areas)))
    if principal.is_key or principal.unscoped or principal.role == Role.ADMIN:
        return Scope(city_wide=True)
    user = principal.name
    if principal.role == Role.GRID_WORKER:
        return Scope(area_prefixes=areas, user=user)
    if principal.role == Role.DEPARTMENT_HANDLER:
        return Scope(area_prefixes=areas, department=principal.department, user=user)
    if areas:
        return Scope(area_prefixes=areas, user=user)
    return Scope(city_wide=True)


def validate_area_codes(codes: Iterable[str]) -> tuple[str, ...]:
    """Area codes for scoping: district 6, street 9, community 12 or grid 15 digits."""
    out = []
    for code in codes:
        code = code.strip()
        if not code.isdigit() or len(code) not in (6, 9, 12, 15):
            raise ValidationError(f"area code {code!r} must be 6 (district), 9 (street), "
                                  f"12 (community) or 15 (grid) digits", field="areas",
                                  value=code)
        out.append(code)
    return tuple(out)


def require_in_scope(principal: Principal, action: str, grid_code: str | None,
                     department: str | None = None) -> None:
    """An action on a record: role first (403), then area (403 — the caller already holds
    the record, so its existence is no secret)."""
    principal.require(action)
    if not principal.scope.covers_case(grid_code, department):
        raise Forbidden(f"{action} on a record outside your areas", action=action)
