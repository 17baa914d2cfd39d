"""Device sessions over HTTP: refresh (rotating), sign out, one's own sessions, and the admin's
view of everyone's (rules: ``gridcore.security.sessions``; storage:
``layers.security.sessions``).

Who may call what: ``POST /auth/refresh`` and ``POST /auth/signout`` — whoever holds the
refresh token (no access token needed: it may have expired); ``/auth/sessions`` — the
signed-in user, their own sessions only; ``/admin/sessions`` — ``sessions.admin`` (admins).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import EngineDep
from api.json_body import parse_json
from api.routes.auth import Token, tokens
from api.security.identity import (
    CurrentUser,
    SecurityDep,
    remote_addr,
    token_claims,
)
from gridcore.errors import ValidationError
from layers.security import sessions

router = APIRouter(tags=["auth"])


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class SessionOut(BaseModel):
    id: str
    username: str
    device: str
    user_agent: str
    created_at: datetime
    last_used_at: datetime
    last_addr: str | None
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    rotations: int
    active: bool
    current: bool = False


async def _refresh_token_of(request: Request) -> str:
    """The refresh token from a JSON body or an OAuth2 form (grant_type=refresh_token)."""
    if request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("refresh_token")
    else:
        # parse_json: a body nested beyond reason is a 422, not a RecursionError (a 500)
        data = parse_json(await request.body() or b"{}", '{"refresh_token": "gcr_…"}')
        try:
            value = RefreshIn.model_validate(data).refresh_token
        except ValueError:
            value = None
    if not isinstance(value, str) or not value:
        raise ValidationError("send the refresh token: {\"refresh_token\": \"gcr_…\"}",
                              field="refresh_token")
    return value


_REFRESH_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": RefreshIn.model_json_schema()},
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": ["refresh_token"],
        "properties": {"grant_type": {"type": "string", "enum": ["refresh_token"]},
                       "refresh_token": {"type": "string"}}}}}}}


@router.post("/auth/refresh", response_model=Token, openapi_extra=_REFRESH_BODY,
             summary="A new access token for a device session; the refresh token rotates",
             responses={401: {"description": "revoked, expired, reused or unknown: sign in "
                                             "again"}})
async def refresh(request: Request, engine: EngineDep, settings: SecurityDep) -> Token:
    token = await _refresh_token_of(request)
    issued = await run_in_threadpool(sessions.rotate, engine, token, settings.session_days,
                                     settings.refresh_grace_s, remote_addr(request))
    return tokens(settings, issued, issued.user.username, issued.user.role.value)


@router.post("/auth/signout", status_code=204, openapi_extra=_REFRESH_BODY,
             summary="Sign this device out: its session is revoked")
async def signout(request: Request, engine: EngineDep, settings: SecurityDep) -> None:
    token = await _refresh_token_of(request)
    await run_in_threadpool(sessions.sign_out, engine, token, settings.refresh_grace_s,
                            remote_addr(request))


def _current_sid(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    claims = token_claims(request.app.state.settings.security, header.split(" ", 1)[1].strip())
    return claims.get("sid")


@router.get("/auth/sessions", response_model=list[SessionOut],
            summary="My device sessions (the one this token belongs to is marked current)")
def my_sessions(request: Request, engine: EngineDep, user: CurrentUser) -> list[SessionOut]:
    current = _current_sid(request)
    return [SessionOut(**s, current=s["id"] == current)
            for s in sessions.list_sessions(engine, user.name)]


@router.delete("/auth/sessions/{session_id}", status_code=204,
               summary="Revoke one of my device sessions (a lost phone)")
def revoke_mine(session_id: str, request: Request, engine: EngineDep,
                user: CurrentUser) -> None:
    sessions.revoke(engine, session_id, user.name, "revoked by its user", username=user.name,
                    addr=remote_addr(request))


@router.get("/admin/sessions", response_model=list[SessionOut], tags=["admin"],
            summary="Device sessions of every user, or of one (admins)")
def all_sessions(engine: EngineDep, admin: CurrentUser,
                 user: Annotated[str | None, Query(max_length=64)] = None,
                 active: bool = False) -> list[SessionOut]:
    admin.require("sessions.admin")
    return [SessionOut(**s) for s in sessions.list_sessions(engine, user, active)]


@router.delete("/admin/sessions/{session_id}", status_code=204, tags=["admin"],
               summary="Revoke a device session (admins)")
def revoke_one(session_id: str, request: Request, engine: EngineDep, admin: CurrentUser,
               reason: Annotated[str, Query(max_length=200)] = "revoked by an admin") -> None:
    admin.require("sessions.admin")
    sessions.revoke(engine, session_id, admin.name, reason, addr=remote_addr(request))


@router.delete("/admin/sessions", tags=["admin"],
               summary="Revoke every session of a user (admins)")
def revoke_all(request: Request, engine: EngineDep, admin: CurrentUser,
               user: Annotated[str, Query(min_length=1, max_length=64)],
               reason: Annotated[str, Query(max_length=200)] = "revoked by an admin"
               ) -> dict[str, Any]:
    admin.require("sessions.admin")
    count = sessions.revoke_user(engine, user, admin.name, reason, addr=remote_addr(request))
    return {"user": user, "revoked": count}

