"""The phone's rules without a database: refresh-token verdicts, worklists by role, patrol
positions, the closest categories, the photo pixel limit."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from gridcore.errors import PayloadTooLarge, Unauthenticated, ValidationError
from gridcore.intake import check_photo
from gridcore.lifecycle import State
from gridcore.patrol import effective_end, instant, sort_positions
from gridcore.security.access import Role
from gridcore.security.sessions import (
    StoredSession,
    Verdict,
    digest,
    judge,
    parse_refresh_token,
    refresh_token,
)
from gridcore.taxonomy import default_taxonomy
from gridcore.worklist import Task, parse_tasks, worklist_for

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
GRACE = timedelta(seconds=120)


def session(**kw) -> StoredSession:  # type: ignore[no-untyped-def]
    base = {"refresh_sha256": digest("current"), "previous_sha256": digest("previous"),
            "rotated_at": NOW - timedelta(seconds=30), "expires_at": NOW + timedelta(days=1),
            "revoked": False}
    return StoredSession(**{**base, **kw})


@pytest.mark.parametrize(("secret", "kw", "verdict"), [
    ("current", {}, Verdict.ROTATE),
    ("previous", {}, Verdict.GRACE),
    ("previous", {"rotated_at": NOW - timedelta(minutes=5)}, Verdict.REUSED),
    ("other", {}, Verdict.WRONG),
    ("current", {"revoked": True}, Verdict.REVOKED),
    ("current", {"expires_at": NOW}, Verdict.EXPIRED),
    ("previous", {"previous_sha256": None}, Verdict.WRONG),
])
def test_refresh_verdicts(secret: str, kw: dict, verdict: Verdict) -> None:
    assert judge(session(**kw), secret, NOW, GRACE) is verdict


def test_refresh_token_format() -> None:
    assert parse_refresh_token(refresh_token("abc", "s_e_c")) == ("abc", "s_e_c")
    for bad in ("", "gcr_", "gcr__x", "xyz_a_b", "gcr_a"):
        with pytest.raises(Unauthenticated):
            parse_refresh_token(bad)


def test_worklists_by_role() -> None:
    worker = worklist_for(Role.GRID_WORKER)
    assert worker.tasks == (Task.VERIFY, Task.CHECK) and worker.skip_own_reports
    assert worker.states({Task.CHECK}) == [State.FED_BACK]
    handler = worklist_for(Role.DEPARTMENT_HANDLER)
    assert handler.by_department
    assert handler.task_of("rework") is Task.HANDLE
    assert set(handler.tasks) == {Task.ACCEPT, Task.HANDLE, Task.FEED_BACK, Task.SENT_BACK}
    assert worklist_for(Role.DISPATCHER).task_of("sent_back") is Task.DISPATCH
    manager = worklist_for(Role.MANAGER)
    assert manager.overdue and manager.tasks == (Task.OVERDUE,)
    assert worklist_for(Role.ANALYST).tasks == ()
    assert parse_tasks("check", worker) == {Task.CHECK}
    assert parse_tasks(None, worker) is None
    with pytest.raises(ValidationError) as err:
        parse_tasks("verify,close", worker)
    assert err.value.details["tasks"] == ["check", "verify"]


def test_patrol_positions_only_on_duty() -> None:
    start, end = NOW - timedelta(hours=1), NOW - timedelta(minutes=10)
    raw = [{"t": int((start + timedelta(minutes=1)).timestamp() * 1000), "lon": 24.9,
            "lat": 60.1, "accuracy_m": 5},
           {"t": (start - timedelta(seconds=1)).isoformat(), "lon": 24.9, "lat": 60.1},
           {"t": (end + timedelta(seconds=1)).isoformat(), "lon": 24.9, "lat": 60.1},
           {"t": start.isoformat(), "lon": 200, "lat": 60.1},
           {"t": start.isoformat(), "lon": 24.9, "lat": 60.1, "accuracy_m": -1},
           {"t": "yesterday", "lon": 24.9, "lat": 60.1},
           {"t": 1e300, "lon": 24.9, "lat": 60.1}]
    kept, refused = sort_positions(raw, start, end, NOW)
    assert [p.accuracy_m for p in kept] == [5.0]
    assert [r.index for r in refused] == [1, 2, 3, 4, 5, 6]
    assert "off duty" in refused[0].reason and "off duty" in refused[1].reason
    with pytest.raises(ValidationError):
        instant("2026-12-06T09:00:00", "t")  # no timezone
    longest = timedelta(hours=16)
    assert effective_end(start, None, None, NOW, longest) is None
    old = NOW - timedelta(hours=20)
    assert effective_end(old, None, old + timedelta(hours=2), NOW, longest) == \
        old + timedelta(hours=2)


@pytest.mark.parametrize(("typed", "first"), [
    ("P0121", "P0120"), ("0120", "P0120"), ("lamp", "P0120"), ("井盖", "P0101"),
    ("garbage", "E0102"),
])
def test_closest_categories(typed: str, first: str) -> None:
    assert default_taxonomy().closest(typed)[0].key == first
    with pytest.raises(ValidationError) as err:
        default_taxonomy().get(typed)
    assert err.value.details["closest"][0]["key"] == first


def test_photo_pixel_limit_refuses_bombs_before_decoding() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (6000, 6000)).save(buf, format="PNG")
    with pytest.raises(PayloadTooLarge) as err:
        check_photo("bomb.png", buf.getvalue(), 5_000_000, max_pixels=30_000_000)
    assert err.value.details["limit_pixels"] == 30_000_000
    assert check_photo("ok.png", buf.getvalue(), 5_000_000, max_pixels=40_000_000)


def test_worker_voids_only_when_verifying_and_a_failed_check_needs_a_note() -> None:
    from gridcore.lifecycle import CaseFacts, NotPermitted, allowed_actions, check_photos, plan

    assert allowed_actions(CaseFacts(State.REPORTED), Role.GRID_WORKER) == ["verify", "void"]
    assert allowed_actions(CaseFacts(State.VERIFIED), Role.GRID_WORKER) == []
    assert plan(CaseFacts(State.REPORTED), "void", "grid_worker", {"reason": "无"},
                NOW).to_state is State.VOIDED
    with pytest.raises(NotPermitted) as denied:
        plan(CaseFacts(State.VERIFIED), "void", "grid_worker", {"reason": "无"}, NOW)
    assert denied.value.details["allowed"] == []
    with pytest.raises(ValidationError) as err:
        plan(CaseFacts(State.FED_BACK), "check", "grid_worker", {"check_result": "fail",
                                                                  "reason": "  "}, NOW)
    assert err.value.details["field"] == "reason"
    step = plan(CaseFacts(State.FED_BACK), "check", "grid_worker",
                {"check_result": "fail", "reason": "仍有垃圾"}, NOW)
    check_photos(step, 3, 6)
    with pytest.raises(ValidationError):
        check_photos(step, 7, 6)
    register = plan(CaseFacts(State.VERIFIED), "register", "dispatcher", {}, NOW)
    check_photos(register, 0, 6)
    with pytest.raises(ValidationError) as err:
        check_photos(register, 1, 6)
    assert "verify" in str(err.value)
