"""Sign-in (OAuth2 password flow) and who-am-I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.deps import EngineDep
from api.security.identity import CurrentUser, SecurityDep, issue_token, remote_addr
from gridcore.security.sessions import OFFLINE_SCOPE
from gridcore.settings import SecuritySettings
from layers.security import audit
from layers.security.sessions import Issued, open_session
from layers.security.users import authenticate

router = APIRouter(prefix="/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    # With scope=offline_access (a device that stays signed in): the device session's refresh
    # token for POST /auth/refresh, shown once; it rotates on every use.
    refresh_token: str | None = None
    session_id: str | None = None
    refresh_expires_at: datetime | None = None


class SignInForm:
    """OAuth2's password grant (username, password, scope…) plus ``device``: the name a user
    will recognise in their list of sessions ("王芳's phone")."""

    def __init__(self, username: Annotated[str, Form()], password: Annotated[str, Form()],
                 grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
                 scope: Annotated[str, Form()] = "",
                 client_id: Annotated[str | None, Form()] = None,
                 device: Annotated[str, Form(max_length=200)] = "") -> None:
        self.username, self.password, self.grant_type = username, password, grant_type
        self.scopes = scope.split()
        self.device = device or client_id or ""


def tokens(settings: SecuritySettings, issued: Issued | None, username: str, role: str
           ) -> Token:
    """The answer of a sign-in or a refresh: an access token, and the session's new refresh
    token when there is a session."""
    sid = issued.session_id if issued else None
    access, lifetime = issue_token(settings, username, role, session_id=sid)
    if issued is None:
        return Token(access_token=access, expires_in=lifetime)
    return Token(access_token=access, expires_in=lifetime, refresh_token=issued.refresh_token,
                 session_id=sid, refresh_expires_at=issued.expires_at)


class Me(BaseModel):
    username: str
    role: str | None
    department: str | None
    areas: list[str]
    scope: dict[str, object]


@router.post("/token", response_model=Token,
             summary="Exchange a username and password for a short-lived bearer token "
                     "(and, with scope=offline_access, a device session's refresh token)",
             responses={401: {"description": "wrong username or password"}})
async def token(request: Request, engine: EngineDep, settings: SecurityDep,
                form: Annotated[SignInForm, Depends()]) -> Token:
    # argon2 verification is deliberately slow: keep it off the event loop.
    user = await run_in_threadpool(authenticate, engine, form.username, form.password)
    addr = remote_addr(request)

    def log() -> Issued | None:
        with engine.begin() as conn:
            audit.record(conn, user.username, "auth.token", f"user:{user.username}",
                         remote_addr=addr)
        if OFFLINE_SCOPE not in form.scopes:
            return None
        return open_session(engine, user, settings.session_days, form.device,
                            request.headers.get("user-agent", ""), addr)

    issued = await run_in_threadpool(log)
    return tokens(settings, issued, user.username, user.role.value)


@router.get("/me", response_model=Me, summary="The signed-in user, role, areas and scope",
            responses={401: {"description": "not signed in"}})
def me(principal: CurrentUser) -> Me:
    scope = principal.scope
    return Me(username=principal.name, role=principal.role.value if principal.role else None,
              department=principal.department, areas=list(principal.areas),
              scope={"city_wide": scope.city_wide, "areas": list(scope.area_prefixes),
                     "department": scope.department})
