"""Sign-in (OAuth2 password flow) and who-am-I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import EngineDep
from api.security.identity import CurrentUser, SecurityDep, issue_token, remote_addr
from layers.security import audit
from layers.security.users import authenticate

router = APIRouter(prefix="/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    username: str
    role: str | None
    department: str | None
    areas: list[str]
    scope: dict[str, object]


@router.post("/token", response_model=Token,
             summary="Exchange a username and password for a short-lived bearer token",
             responses={401: {"description": "wrong username or password"}})
async def token(request: Request, engine: EngineDep, settings: SecurityDep,
                form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    # argon2 verification is deliberately slow: keep it off the event loop.
    user = await run_in_threadpool(authenticate, engine, form.username, form.password)
    access, lifetime = issue_token(settings, user.username, user.role.value)

    def log() -> None:
        with engine.begin() as conn:
            audit.record(conn, user.username, "auth.token", f"user:{user.username}",
                         remote_addr=remote_addr(request))

    await run_in_threadpool(log)
    return Token(access_token=access, expires_in=lifetime)


@router.get("/me", response_model=Me, summary="The signed-in user, role, areas and scope",
            responses={401: {"description": "not signed in"}})
def me(principal: CurrentUser) -> Me:
    scope = principal.scope
    return Me(username=principal.name, role=principal.role.value if principal.role else None,
              department=principal.department, areas=list(principal.areas),
              scope={"city_wide": scope.city_wide, "areas": list(scope.area_prefixes),
                     "department": scope.department})
