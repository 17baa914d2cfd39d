"""Domain events: which step raises which, who sees an event, who is notified (area × class ×
kind), and the closing of merged reports with their primary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gridcore.errors import ValidationError
from gridcore.events import (
    SUBSCRIBABLE,
    CaseEvent,
    EventKind,
    Listener,
    Subscription,
    merged_closed,
    visible,
)
from gridcore.lifecycle import TRANSITIONS, Action
from gridcore.security.access import Role, Scope

AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
GRID = "110101001001001"


def event(kind: EventKind, **kw: object) -> CaseEvent:
    base: dict[str, object] = {"grid_code": GRID, "category_key": "P0120",
                               "department_code": "D_LAMP"}
    base.update(kw)
    return CaseEvent(kind, 7, AT, "C00000007", **base)  # type: ignore[arg-type]


def test_the_steps_that_notify_raise_their_own_kind() -> None:
    assert TRANSITIONS[Action.DISPATCH].event is EventKind.DISPATCHED
    assert TRANSITIONS[Action.SEND_BACK].event is EventKind.SENT_BACK
    assert TRANSITIONS[Action.SUPERVISE].event is EventKind.SUPERVISED
    assert TRANSITIONS[Action.CLOSE].event is EventKind.CLOSED
    assert TRANSITIONS[Action.ASSIGN].event is EventKind.ASSIGNED
    assert TRANSITIONS[Action.VERIFY].event is EventKind.CHANGED  # refreshes pages only
    assert EventKind.CHANGED not in SUBSCRIBABLE


def test_an_event_is_seen_where_its_case_is_seen() -> None:
    e = event(EventKind.DISPATCHED)
    assert visible(e, Scope(city_wide=True))
    assert visible(e, Scope(area_prefixes=("110101001",)))
    assert visible(e, Scope(department="D_LAMP"))
    assert not visible(e, Scope(area_prefixes=("110102",)))
    assert not visible(e, Scope(department="D_WATER"))


def test_subscriptions_match_area_class_and_kind_by_prefix() -> None:
    sub = Subscription.of(["dispatched", "red"], ["110101001"], ["P02"])
    assert not sub.matches(event(EventKind.DISPATCHED))  # P0120 is not a P02 class
    sub = Subscription.of(["dispatched", "red"], ["110101001"], ["P0120", "E"])
    assert sub.matches(event(EventKind.DISPATCHED))
    assert not sub.matches(event(EventKind.NEW))
    assert not sub.matches(event(EventKind.RED, grid_code="110102001001001"))
    assert Subscription().matches(event(EventKind.YELLOW))  # empty = everything
    assert not Subscription().matches(event(EventKind.CHANGED))  # never a notification
    assert sub.as_dict() == {"kinds": ["dispatched", "red"], "areas": ["110101001"],
                             "categories": ["E", "P0120"]}


@pytest.mark.parametrize(("kinds", "areas", "categories"), [
    (["teleported"], [], []), ([], ["1101"], []), ([], [], ["X01"]), ([], [], ["P012345"])])
def test_bad_subscriptions_are_refused_naming_the_field(kinds, areas, categories) -> None:
    with pytest.raises(ValidationError) as err:
        Subscription.of(kinds, areas, categories)
    assert err.value.details["field"] in ("kinds", "areas", "categories")


def test_a_handler_is_notified_of_their_own_department_only() -> None:
    me = Listener("h1", Role.DEPARTMENT_HANDLER, Scope(department="D_LAMP", area_prefixes=(
        "110101",)), Subscription.default_for(Role.DEPARTMENT_HANDLER), "D_LAMP")
    mine, theirs = event(EventKind.DISPATCHED), event(EventKind.DISPATCHED,
                                                       department_code="D_WATER")
    assert me.receives(mine) and me.notified(mine)
    assert me.receives(theirs) and not me.notified(theirs)  # in my areas: refresh, no toast
    assert me.notified(event(EventKind.ASSIGNED, assignee="h1"))
    assert not me.notified(event(EventKind.ASSIGNED, assignee="h2"))
    assert not me.notified(event(EventKind.NEW, department_code=None))  # not a handler's kind


def test_default_subscriptions_follow_the_role() -> None:
    assert EventKind.NEW in Subscription.default_for(Role.DISPATCHER).kinds
    assert EventKind.NEW not in Subscription.default_for(Role.DEPARTMENT_HANDLER).kinds
    assert Subscription.default_for(None).kinds == frozenset(SUBSCRIBABLE)


def test_closing_a_primary_closes_its_merged_reports_for_their_reporters() -> None:
    closed = event(EventKind.CLOSED, state="closed")
    out = merged_closed(closed, [(8, "C00000008", GRID, "P0120"), (9, None, None, "E0103")])
    assert [(e.kind, e.case_id, e.state) for e in out] == [
        (EventKind.CLOSED, 8, "merged"), (EventKind.CLOSED, 9, "merged")]
    assert out[0].details == {"primary_case_id": 7, "primary_public_no": "C00000007"}
    assert out[0].as_dict()["kind"] == "closed"


def test_every_open_state_waits_in_exactly_one_queue_bucket() -> None:
    from gridcore.lifecycle import OPEN_STATES
    from gridcore.queues import BUCKET_STATES, Bucket, bucket_of, counts

    for state in OPEN_STATES:
        holders = [b for b, states in BUCKET_STATES.items()
                   if b is not Bucket.OVERDUE and state in states]
        assert len(holders) == 1, state
        assert bucket_of(state) is holders[0]
    assert bucket_of("closed") is None
    assert counts({"reported": 2, "sent_back": 1, "registered": 4, "checked": 1}, 3) == {
        "verify": 2, "register": 0, "dispatch": 5, "handling": 0, "check": 0, "close": 1,
        "overdue": 3}
