"""Domain events (事件通知): what happened to a case, for the pages' live notifications and the
outgoing webhooks.

Intake, every lifecycle step and the supervision sweep write their events in the same
transaction as the change (the outbox, ``case_event``); storage delivers them
(``layers.notifications``). This module says which events there are, which step raises which
(:data:`STEP_EVENTS`, used by :mod:`gridcore.lifecycle`'s table), who sees an event (the
caller's scope, :mod:`gridcore.security.access`) and who wants to be told (a
:class:`Subscription`: area × class × kind).

Every event in a caller's scope reaches the caller's open pages, so that their queues refresh
without polling; ``notify`` says whether it is one the caller subscribed to (a toast, a badge).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from gridcore.errors import ValidationError
from gridcore.security.access import Role, Scope
from gridcore.taxonomy import is_class_prefix


class EventKind(StrEnum):
    NEW = "new"  # 新案卷 (a report was filed)
    DISPATCHED = "dispatched"  # 派遣 (to a department)
    ASSIGNED = "assigned"  # 指派 (a team leader named the handler)
    YELLOW = "yellow"  # 预警 (≥ 80 % of the stage's time used)
    RED = "red"  # 超期 (the deadline passed)
    SENT_BACK = "sent_back"  # 退单
    SUPERVISED = "supervised"  # 督办 (by a manager, or automatically when red)
    REWORK = "rework"  # 返工
    CLOSED = "closed"  # 结案 (also sent for each case merged into the closed one)
    MERGED = "merged"  # 并案
    CHANGED = "changed"  # any other step: pages refresh, nobody is notified


# The kinds a user can subscribe to (CHANGED only refreshes pages).
SUBSCRIBABLE = tuple(k for k in EventKind if k is not EventKind.CHANGED)

# Without a stored subscription a user hears what the role's work needs.
DEFAULT_KINDS: dict[Role, frozenset[EventKind]] = {
    Role.DISPATCHER: frozenset({EventKind.NEW, EventKind.SENT_BACK, EventKind.YELLOW,
                                EventKind.RED}),
    Role.DEPARTMENT_HANDLER: frozenset({EventKind.DISPATCHED, EventKind.ASSIGNED,
                                        EventKind.REWORK, EventKind.YELLOW, EventKind.RED,
                                        EventKind.SUPERVISED}),
    Role.MANAGER: frozenset({EventKind.RED, EventKind.SUPERVISED}),
    Role.GRID_WORKER: frozenset({EventKind.CLOSED, EventKind.REWORK}),
    Role.ADMIN: frozenset({EventKind.RED, EventKind.SUPERVISED}),
}
# For a department handler these kinds are about *their* department's (or their own) cases;
# others' cases in their areas refresh the page but notify nobody.
_MINE_FOR_HANDLERS = frozenset({EventKind.DISPATCHED, EventKind.ASSIGNED, EventKind.REWORK,
                                EventKind.YELLOW, EventKind.RED, EventKind.SUPERVISED,
                                EventKind.CLOSED})


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One event about one case. ``department_code`` is the case's department after the step
    (before it, for a send-back: the refusing one); ``details`` what the step adds (reason,
    colour, deadline, primary case…)."""

    kind: EventKind
    case_id: int
    at: datetime
    public_no: str | None = None
    grid_code: str | None = None
    category_key: str | None = None
    department_code: str | None = None
    assignee: str | None = None
    state: str | None = None
    actor: str = ""
    details: dict[str, Any] = field(default_factory=dict, hash=False)
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind.value, "case_id": self.case_id,
                "at": self.at.isoformat(), "public_no": self.public_no,
                "grid_code": self.grid_code, "category": self.category_key,
                "department": self.department_code, "assignee": self.assignee,
                "state": self.state, "actor": self.actor, "details": self.details}


def visible(event: CaseEvent, scope: Scope) -> bool:
    """May a caller with ``scope`` see this event? The same rule as reading the case."""
    return scope.covers_case(event.grid_code, event.department_code)


def _prefixes(values: Iterable[str], what: str) -> tuple[str, ...]:
    out = []
    for raw in values:
        value = raw.strip()
        if not value:
            continue
        if what == "areas" and (not value.isdigit() or len(value) not in (6, 9, 12, 15)):
            raise ValidationError(f"area {value!r} must be a 6, 9, 12 or 15-digit area code",
                                  field="areas", value=value)
        if what == "categories" and not is_class_prefix(value):
            raise ValidationError(f"class {value!r} must be a class key or its prefix "
                                  "(P0120, E01, P)", field="categories", value=value)
        out.append(value)
    return tuple(sorted(set(out)))


@dataclass(frozen=True, slots=True)
class Subscription:
    """Area × class × kind. An empty dimension means "all" (within the caller's scope); areas
    and classes match by prefix (``110101001`` a street, ``P01`` the manhole covers)."""

    kinds: frozenset[EventKind] = frozenset()
    areas: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @classmethod
    def of(cls, kinds: Iterable[str] = (), areas: Iterable[str] = (),
           categories: Iterable[str] = ()) -> Subscription:
        """Checked: unknown kinds, malformed area codes or class keys are refused."""
        wanted = set()
        for k in kinds:
            k = k.strip()
            if not k:
                continue
            try:
                wanted.add(EventKind(k))
            except ValueError:
                raise ValidationError(f"unknown event kind {k!r}; kinds are "
                                      f"{', '.join(SUBSCRIBABLE)}", field="kinds",
                                      value=k) from None
        return cls(frozenset(wanted), _prefixes(areas, "areas"),
                   _prefixes(categories, "categories"))

    @classmethod
    def default_for(cls, role: Role | None) -> Subscription:
        kinds = DEFAULT_KINDS.get(role, frozenset()) if role is not None else frozenset()
        return cls(kinds=kinds or frozenset(SUBSCRIBABLE))

    def matches(self, event: CaseEvent) -> bool:
        if event.kind is EventKind.CHANGED:
            return False
        if self.kinds and event.kind not in self.kinds:
            return False
        if self.areas and not (event.grid_code and event.grid_code.startswith(self.areas)):
            return False
        return not self.categories or bool(
            event.category_key and event.category_key.startswith(self.categories))

    def as_dict(self) -> dict[str, list[str]]:
        return {"kinds": sorted(k.value for k in self.kinds), "areas": list(self.areas),
                "categories": list(self.categories)}


@dataclass(frozen=True, slots=True)
class Listener:
    """Who listens: the scope decides what reaches them, the subscription what notifies."""

    username: str
    role: Role | None
    scope: Scope
    subscription: Subscription
    department: str | None = None

    def receives(self, event: CaseEvent) -> bool:
        return visible(event, self.scope)

    def notified(self, event: CaseEvent) -> bool:
        if not self.subscription.matches(event):
            return False
        if self.role is Role.DEPARTMENT_HANDLER and event.kind in _MINE_FOR_HANDLERS:
            return (event.assignee == self.username if event.kind is EventKind.ASSIGNED
                    else event.department_code is not None
                    and event.department_code == self.department)
        return True


def merged_closed(event: CaseEvent, merged: Iterable[tuple[int, str | None, str | None,
                                                          str | None]]) -> list[CaseEvent]:
    """Closing a primary case closes its merged reports for their reporters: one CLOSED event
    per merged case ``(id, public_no, grid, category)``, naming the primary."""
    return [CaseEvent(EventKind.CLOSED, case_id, event.at, public_no, grid, category,
                      event.department_code, None, "merged", event.actor,
                      {"primary_case_id": event.case_id, "primary_public_no": event.public_no})
            for case_id, public_no, grid, category in merged]
