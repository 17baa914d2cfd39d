"""Users, API keys, tokens, the audit chain and masked 9+X reads on a real PostGIS."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from api.security.identity import issue_token
from gridcore.errors import Conflict, Unauthenticated, ValidationError
from gridcore.settings import SecuritySettings
from layers.security import audit, users

GRID = "320582110152102"
OTHER_GRID = "320582110153001"
PASSWORD = "correct horse battery"


@pytest.fixture
def anon(db: Engine):  # type: ignore[no-untyped-def]
    """A client with no identity (the shared ``client`` fixture signs in as an admin)."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(engine=db)) as test_client:
        yield test_client


def _token(client, username: str, password: str = PASSWORD) -> dict[str, str]:  # type: ignore[no-untyped-def]
    response = client.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_users_and_password_flow(anon, db: Engine) -> None:  # type: ignore[no-untyped-def]
    client = anon
    users.add_user(db, "wang", PASSWORD, "grid_worker", areas=(GRID,))
    with pytest.raises(Conflict):
        users.add_user(db, "wang", PASSWORD, "grid_worker", areas=(GRID,))
    with pytest.raises(ValidationError, match="department"):
        users.add_user(db, "li", PASSWORD, "department_handler")
    with pytest.raises(ValidationError, match="unknown role"):
        users.add_user(db, "li", PASSWORD, "mayor")
    with db.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM app_user")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored

    assert client.get("/auth/me").status_code == 401
    bad = client.post("/auth/token", data={"username": "wang", "password": "wrong password!"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    assert bad.headers["content-type"] == "application/problem+json"
    unknown = client.post("/auth/token", data={"username": "nobody", "password": PASSWORD})
    assert unknown.json()["detail"] == bad.json()["detail"]  # no username probing
    # the desk's and the map's sign-in show the detail: in the page's language
    zh = client.post("/auth/token", data={"username": "wang", "password": "wrong password!"},
                     headers={"Accept-Language": "zh-CN"}).json()
    assert (zh["title"], zh["detail"]) == ("需要登录", "用户名或密码错误")
    en = client.post("/auth/token", data={"username": "nobody", "password": PASSWORD},
                     headers={"Accept-Language": "en"}).json()
    assert en["detail"] == "wrong username or password"

    headers = _token(client, "wang")
    me = client.get("/auth/me", headers=headers).json()
    assert me["role"] == "grid_worker" and me["scope"]["areas"] == [GRID]

    users.set_disabled(db, "wang")  # effective at once, not at token expiry
    assert client.get("/auth/me", headers=headers).status_code == 401
    assert client.post("/auth/token", data={"username": "wang",
                                            "password": PASSWORD}).status_code == 401


def test_expired_and_forged_tokens_are_refused(anon, db: Engine) -> None:  # type: ignore[no-untyped-def]
    client = anon
    users.add_user(db, "admin1", PASSWORD, "admin")
    settings = client.app.state.settings.security
    expired, _ = issue_token(settings, "admin1", "admin", minutes=-1)
    response = client.get("/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    forged, _ = issue_token(SecuritySettings(secret_key="x" * 40), "admin1", "admin")
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {forged}"}
                      ).status_code == 401
    good, _ = issue_token(settings, "admin1", "admin")
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {good}"}
                      ).status_code == 200




def test_api_keys_hashed_and_revocable(db: Engine) -> None:
    key = users.add_key(db, "citizen-app", "open311")
    principal = users.principal_for_key(db, key)
    assert principal.key_purpose == "open311" and principal.may("case.report")
    with db.connect() as conn:
        stored = conn.execute(text("SELECT secret_sha256 FROM api_key")).scalar_one()
    assert key.split("_", 2)[2] not in stored
    with pytest.raises(Unauthenticated):
        users.principal_for_key(db, key[:-2] + "xx")
    users.revoke_key(db, key)
    with pytest.raises(Unauthenticated):
        users.principal_for_key(db, key)


def _tamper(db: Engine, sql: str) -> None:
    with db.begin() as conn:
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        conn.execute(text(sql))
        conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def test_audit_chain_detects_edit_and_delete(db: Engine) -> None:
    with db.begin() as conn:
        for i in range(5):
            audit.record(conn, "wang", "case.report", f"case:{i}", {"n": i, "名": "测试"},
                         "127.0.0.1")
    assert audit.seal(db) in (0, 5)  # the background sealer may have been first
    assert audit.verify(db).ok and audit.verify(db).rows == 5
    with pytest.raises(Exception, match="append-only"), db.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'x' WHERE seq = 2"))
    _tamper(db, "UPDATE audit_log SET details = '{\"n\": 99}' WHERE seq = 3")
    report = audit.verify(db)
    assert not report.ok and report.first_broken_seq == 3 and "edited" in report.reason


def test_audit_chain_detects_deleted_row(db: Engine) -> None:
    with db.begin() as conn:
        for i in range(4):
            audit.record(conn, "li", "case.dispatch", f"case:{i}")
    audit.seal(db)
    _tamper(db, "DELETE FROM audit_log WHERE seq = 2")
    report = audit.verify(db)
    assert not report.ok and report.first_broken_pos == 2 and "missing" in report.reason
    assert report.first_broken_seq == 3


def test_concurrent_writers_seal_into_one_chain(db: Engine) -> None:
    import threading

    def writer(n: int) -> None:
        for i in range(25):
            with db.begin() as conn:
                audit.record(conn, f"w{n}", "case.report", f"case:{n}-{i}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    audit.seal(db)  # what the background sealers have not sealed yet
    report = audit.verify(db)
    assert report.ok and report.rows == 100 and report.unsealed == 0
    with db.connect() as conn:
        positions = conn.execute(text("SELECT chain_pos FROM audit_log ORDER BY 1")).scalars()
        assert list(positions) == list(range(1, 101))


def test_audit_rolls_back_with_its_write(db: Engine) -> None:
    with pytest.raises(RuntimeError), db.begin() as conn:
        audit.record(conn, "wang", "case.report", "case:1")
        raise RuntimeError("the write failed")
    assert audit.verify(db).rows == 0


def test_background_sealer_gives_way_to_a_running_one(db: Engine) -> None:
    with db.begin() as conn:
        audit.record(conn, "zhao", "case.report", "case:1")
    audit.seal(db)
    with db.begin() as conn:
        audit.record(conn, "zhao", "case.report", "case:2")
    with db.connect() as other, other.begin():  # another server process is sealing
        other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": audit._LOCK_KEY})
        assert audit.seal(db, wait=False) == 0  # no queueing behind it
    assert audit.seal(db, wait=False) in (0, 1)  # the lock is free again (0: sealer was first)
    assert audit.verify(db).unsealed == 0
