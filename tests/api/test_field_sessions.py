"""Device sessions: sign in once per phone, rotating refresh tokens, the grace period of a lost
answer, reuse detection, revocation by the user, by an admin and from the command line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gridcore.settings import SecuritySettings, Settings
from layers.security.users import add_user, set_disabled
from tests.support.database import serving

PASSWORD = "a-long-password-1"


@pytest.fixture
def api(db: Engine) -> Iterator[TestClient]:
    security = SecuritySettings(env="production", secret_key="s" * 40, refresh_grace_s=60)
    with serving(db, Settings(security=security)) as client:
        add_user(db, "wang", PASSWORD, "grid_worker", areas=("110101001001001",))
        add_user(db, "root", "a-long-password-2", "admin")
        yield client


def sign_in(api: TestClient, user: str = "wang", password: str = PASSWORD,
            device: str = "王的手机") -> dict:
    r = api.post("/auth/token", data={"username": user, "password": password,
                                      "scope": "offline_access", "device": device})
    assert r.status_code == 200, r.text
    return r.json()


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def refresh(api: TestClient, token: str):  # type: ignore[no-untyped-def]
    return api.post("/auth/refresh", json={"refresh_token": token})


def test_sign_in_without_offline_access_opens_no_session(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/auth/token", data={"username": "wang", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["refresh_token"] is None
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM device_session")).scalar() == 0


def test_refresh_rotates_and_the_old_token_dies_after_grace(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    first = sign_in(api)
    assert first["refresh_token"].startswith("gcr_") and first["session_id"]
    assert api.get("/auth/me", headers=bearer(first)).json()["username"] == "wang"
    second = refresh(api, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["session_id"] == first["session_id"]
    assert api.get("/auth/me", headers=bearer(second)).status_code == 200
    # The answer was lost: the phone retries with the old token within the grace period and
    # gets yet another; the token of the lost answer is dead now.
    third = refresh(api, first["refresh_token"])
    assert third.status_code == 200
    assert refresh(api, second["refresh_token"]).status_code == 401
    fourth = refresh(api, third.json()["refresh_token"])
    assert fourth.status_code == 200
    # Past the grace period a rotated token is a stolen copy: the session is revoked.
    with db.begin() as conn:
        conn.execute(text("UPDATE device_session SET rotated_at = now() - interval '1 hour'"))
    r = refresh(api, third.json()["refresh_token"])
    assert r.status_code == 401 and r.json()["reason"] == "reused"
    r = refresh(api, fourth.json()["refresh_token"])
    assert r.status_code == 401 and r.json()["reason"] == "revoked"
    assert api.get("/auth/me", headers=bearer(fourth.json())).status_code == 401
    with db.connect() as conn:
        actions = conn.execute(text("SELECT action FROM audit_log WHERE action LIKE "
                                    "'auth.session%' ORDER BY seq")).scalars().all()
    assert actions == ["auth.session.open", "auth.session.reuse"]


def test_bad_refresh_tokens(api: TestClient) -> None:
    assert refresh(api, "nonsense").status_code == 401
    assert refresh(api, "gcr_0123456789abcdef_x").status_code == 401
    r = api.post("/auth/refresh", json={})
    assert r.status_code == 422 and r.json()["field"] == "refresh_token"
    tokens = sign_in(api)
    form = api.post("/auth/refresh", data={"grant_type": "refresh_token",
                                           "refresh_token": tokens["refresh_token"]})
    assert form.status_code == 200  # the OAuth2 form works too


def test_revoked_session_ends_its_access_token_at_once(api: TestClient) -> None:
    phone, tablet = sign_in(api), sign_in(api, device="平板")
    mine = api.get("/auth/sessions", headers=bearer(phone)).json()
    assert {s["device"] for s in mine} == {"王的手机", "平板"}
    assert [s["current"] for s in mine if s["id"] == phone["session_id"]] == [True]
    r = api.delete(f"/auth/sessions/{tablet['session_id']}", headers=bearer(phone))
    assert r.status_code == 204
    r = api.get("/auth/me", headers=bearer(tablet))
    assert r.status_code == 401 and r.json()["reason"] == "session-revoked"
    assert refresh(api, tablet["refresh_token"]).status_code == 401
    assert api.get("/auth/me", headers=bearer(phone)).status_code == 200
    # signing out revokes this device's session
    r = api.post("/auth/signout", json={"refresh_token": phone["refresh_token"]})
    assert r.status_code == 204
    assert api.get("/auth/me", headers=bearer(phone)).status_code == 401


def test_admin_lists_and_revokes_sessions(api: TestClient) -> None:
    phone = sign_in(api)
    admin = bearer(sign_in(api, "root", "a-long-password-2", "desk"))
    assert api.get("/admin/sessions", headers=bearer(phone)).status_code == 403
    listed = api.get("/admin/sessions?user=wang", headers=admin).json()
    assert [s["id"] for s in listed] == [phone["session_id"]]
    assert "refresh_sha256" not in listed[0]
    r = api.delete(f"/admin/sessions/{phone['session_id']}", headers=admin)
    assert r.status_code == 204
    assert refresh(api, phone["refresh_token"]).status_code == 401
    again = sign_in(api)
    r = api.delete("/admin/sessions?user=wang", headers=admin)
    assert r.json() == {"user": "wang", "revoked": 1}
    assert refresh(api, again["refresh_token"]).status_code == 401
    assert api.get("/admin/sessions?user=wang&active=true", headers=admin).json() == []


def test_disabled_user_cannot_refresh(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    tokens = sign_in(api)
    set_disabled(db, "wang")
    assert refresh(api, tokens["refresh_token"]).status_code == 401


def test_cli_lists_and_revokes_sessions(api: TestClient, cli_env) -> None:  # type: ignore[no-untyped-def]
    from gridcore.cli import app

    tokens = sign_in(api)
    runner = CliRunner()
    listed = runner.invoke(app, ["users", "sessions", "list", "wang"])
    assert listed.exit_code == 0 and tokens["session_id"] in listed.output
    assert "王的手机" in listed.output and "active" in listed.output
    done = runner.invoke(app, ["users", "sessions", "revoke", tokens["session_id"]])
    assert done.exit_code == 0, done.output
    assert refresh(api, tokens["refresh_token"]).status_code == 401
    assert runner.invoke(app, ["users", "sessions", "revoke"]).exit_code != 0
