"""A signed-in identity for API tests: an admin user and its bearer token.

The ``client`` fixture uses it so that every route test runs as an authenticated admin (and,
as in development mode, may name the lifecycle role it acts under with ``X-Role``); tests of
identity itself build their own clients.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

from api.security.identity import issue_token
from layers.schema.security import app_user

TEST_ADMIN = "test-admin"


@cache
def _password_hash() -> str:
    from layers.security.users import hash_password

    return hash_password("test-admin-password")  # argon2 once per session, not per test


def admin_headers(app: FastAPI, engine: Engine, trust_role_headers: bool = True
                  ) -> dict[str, str]:
    """Insert the test admin (if absent) and return its ``Authorization`` header."""
    settings = app.state.settings.security
    if trust_role_headers:
        app.state.settings.security = settings.model_copy(
            update={"env": "development", "trust_role_headers": True})
    with engine.begin() as conn:
        exists = conn.execute(app_user.select().where(app_user.c.username == TEST_ADMIN)).first()
        if exists is None:
            conn.execute(app_user.insert().values(username=TEST_ADMIN, role="admin",
                                                  password_hash=_password_hash()))
    token, _ = issue_token(app.state.settings.security, TEST_ADMIN, "admin", minutes=60)
    return {"Authorization": f"Bearer {token}"}


def bearer(client: Any, username: str, role: str) -> dict[str, str]:
    """The ``Authorization`` header of a token for ``username`` (who must exist to be
    accepted), signed with the settings of the ``client``'s app."""
    token, _ = issue_token(client.app.state.settings.security, username, role)
    return {"Authorization": f"Bearer {token}"}
