"""The dispatcher's queue (待办队列): the operations centre's open cases by what they wait for.

Each bucket is the set of lifecycle states a case waits in for the centre's next step, except
督办 (overdue), which holds every open case whose clock is red, whatever its state — a case is
both "in handling" and "overdue". Buckets are listed in the order of the closed loop.
"""

from __future__ import annotations

from enum import StrEnum

from gridcore.lifecycle import OPEN_STATES, State


class Bucket(StrEnum):
    VERIFY = "verify"  # 待核实: reported, to be verified
    REGISTER = "register"  # 待立案: verified, to be registered
    DISPATCH = "dispatch"  # 待派遣: registered or sent back, to be dispatched
    HANDLING = "handling"  # 处置中: with a department
    CHECK = "check"  # 待核查: fed back, to be checked on site
    CLOSE = "close"  # 待结案: checked, to be closed (or sent to rework)
    OVERDUE = "overdue"  # 督办: any open case past its deadline


BUCKET_STATES: dict[Bucket, tuple[State, ...]] = {
    Bucket.VERIFY: (State.REPORTED,),
    Bucket.REGISTER: (State.VERIFIED,),
    Bucket.DISPATCH: (State.REGISTERED, State.SENT_BACK),
    Bucket.HANDLING: (State.DISPATCHED, State.ACCEPTED, State.HANDLED, State.REWORK),
    Bucket.CHECK: (State.FED_BACK,),
    Bucket.CLOSE: (State.CHECKED,),
    Bucket.OVERDUE: tuple(sorted(OPEN_STATES)),
}


def bucket_of(state: str) -> Bucket | None:
    """The bucket a case in ``state`` waits in (督办 aside), or None for a final state."""
    for bucket, states in BUCKET_STATES.items():
        if bucket is not Bucket.OVERDUE and state in states:
            return bucket
    return None


def counts(by_state: dict[str, int], overdue: int) -> dict[str, int]:
    """Per-bucket counts from per-state counts of open cases and the number overdue."""
    out = {b.value: sum(by_state.get(s.value, 0) for s in BUCKET_STATES[b])
           for b in Bucket if b is not Bucket.OVERDUE}
    out[Bucket.OVERDUE.value] = overdue
    return out
