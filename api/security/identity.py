"""Identity over HTTP: short-lived JWT bearer tokens, API keys, and the permission checks.

Routers use the dependencies:

* ``CurrentUser`` — the authenticated principal (a user from a bearer token); 401 without one.
* ``Caller`` — a user *or* an API key (``X-Api-Key`` header or ``api_key`` query parameter),
  for endpoints that machine clients (Open311 apps, IoT sources) may call.
* ``require("case.dispatch")`` — a dependency that returns the principal after checking the
  roles × actions matrix of ``gridcore.security.access`` (403 otherwise);
* ``ActorDep`` — who takes a lifecycle step: the signed-in user, or in development the
  ``X-Actor`` / ``X-Role`` stand-in.

The token only names the user; the role, department, areas and the disabled flag are read
from the database on every request, so a change (or ``gridcore users disable``) takes effect
at once rather than when the token expires.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

import jwt
from fastapi import Depends, Header, Request
from sqlalchemy import Engine

from gridcore.errors import NotFound, Unauthenticated, ValidationError
from gridcore.security.access import Principal, Role, Scope
from gridcore.settings import SecuritySettings
from layers.security.sessions import session_active
from layers.security.users import get_user, principal_for_key

ALGORITHM = "HS256"
ISSUER = "gridcore"


def get_security_settings(request: Request) -> SecuritySettings:
    settings: SecuritySettings = request.app.state.settings.security
    return settings


async def _security_settings(request: Request) -> SecuritySettings:
    return get_security_settings(request)  # async: no thread hop (see api.deps)


SecurityDep = Annotated[SecuritySettings, Depends(_security_settings)]


def issue_token(settings: SecuritySettings, username: str, role: str,
                minutes: int | None = None, session_id: str | None = None) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds. ``session_id``: the device session
    it belongs to (``sid``): revoking that session ends the token at once."""
    lifetime = 60 * (minutes if minutes is not None else settings.token_minutes)
    now = datetime.now(UTC)
    claims: dict[str, Any] = {"sub": username, "role": role, "iss": ISSUER, "typ": "access",
                              "iat": now, "exp": now + timedelta(seconds=lifetime)}
    if session_id is not None:
        claims["sid"] = session_id
    return jwt.encode(claims, settings.signing_key(), algorithm=ALGORITHM), lifetime


def token_subject(settings: SecuritySettings, token: str) -> str:
    return str(token_claims(settings, token)["sub"])


def token_claims(settings: SecuritySettings, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, settings.signing_key(), algorithms=[ALGORITHM], issuer=ISSUER,
            options={"require": ["exp", "iat", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the access token has expired; request a new one") from None
    except jwt.PyJWTError:
        raise Unauthenticated("the access token is invalid") from None
    if claims.get("typ") != "access":
        raise Unauthenticated("not an access token")
    return claims


def principal_for_token(engine: Engine, settings: SecuritySettings, token: str) -> Principal:
    claims = token_claims(settings, token)
    user = get_user(engine, str(claims["sub"]))
    if user is None or user.disabled:
        raise Unauthenticated("the user of this token is unknown or disabled")
    sid = claims.get("sid")
    if sid is not None and not session_active(engine, str(sid)):
        raise Unauthenticated("this device's session was revoked or has expired; sign in "
                              "again", reason="session-revoked")
    return user.principal()


SIGN_IN = "sign in first: POST /auth/token, then send 'Authorization: Bearer <token>'"


def stand_in(request: Request, settings: SecuritySettings) -> Principal | None:
    """Development only: the caller named by ``X-Actor`` / ``X-Role`` (default admin),
    unscoped. None when the service does not trust role headers."""
    if not settings.trusts_role_headers:
        return None
    role_name = request.headers.get("x-role") or Role.ADMIN.value
    role = Role(role_name) if role_name in {r.value for r in Role} else Role.ADMIN
    name = request.headers.get("x-actor") or role_name
    return Principal(name, role, unscoped=True)


_UNKNOWN = object()


def needs_lookup(request: Request) -> bool:
    """Whether identifying the caller reads the database (a token's user, an API key)."""
    headers = request.headers
    return bool(headers.get("authorization", "")[:7].lower() == "bearer "
                or headers.get("x-api-key") or request.query_params.get("api_key"))


def key_principal(request: Request, key: str) -> Principal:
    """The API key's principal: a key of ``gridcore keys add``, or one of the stand-in keys
    of ``GRIDCORE_OPEN311_API_KEYS`` (purpose open311)."""
    if key in request.app.state.settings.cases.api_keys():
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return Principal(f"key:open311-stand-in:{digest}", key_purpose="open311")
    principal = principal_for_key(request.app.state.engine, key)
    verifier = getattr(request.app.state, "verifier", None)
    if verifier is not None:  # its requests now take from the key's own rate-limit bucket
        verifier.remember_key(key)
    return principal


def identify(request: Request, form_key: str | None = None) -> Principal | None:
    """Who sends ``request``: the bearer token's user, else the API key's principal (header,
    ``api_key`` query parameter, or ``form_key`` from an Open311 form), else in development
    the ``X-Role`` stand-in, else None (anonymous). A presented credential that does not hold
    is a 401, never anonymous. Worked out once per request (``request.state.principal``)."""
    known = getattr(request.state, "principal", _UNKNOWN)
    if known is not _UNKNOWN:
        return cast(Principal | None, known)
    settings = get_security_settings(request)
    header = request.headers.get("authorization", "")
    principal: Principal | None
    if header[:7].lower() == "bearer ":
        principal = principal_for_token(request.app.state.engine, settings, header[7:].strip())
    else:
        key = (request.headers.get("x-api-key") or request.query_params.get("api_key")
               or form_key)
        principal = key_principal(request, key) if key else stand_in(request, settings)
    request.state.principal = principal
    return principal


# The dependencies below are ``async``: the access table's dependency (``api.security.policy``)
# has identified the caller already, off the event loop, so they only read it (no thread hop).
async def current_user(request: Request) -> Principal:
    """A signed-in user (not an API key, not the development stand-in)."""
    principal = identify(request)
    if principal is None or principal.is_key or principal.unscoped:
        raise Unauthenticated(SIGN_IN)
    return principal


def viewer_principal(request: Request) -> Principal:
    """Who reads: the signed-in user, or in development the stand-in."""
    principal = identify(request)
    if principal is None or principal.is_key:
        raise Unauthenticated(SIGN_IN)
    return principal


async def viewer(request: Request) -> Principal:
    return viewer_principal(request)


async def caller(request: Request) -> Principal:
    """A user token, or an API key from the header or the ``api_key`` query parameter."""
    principal = identify(request)
    if principal is None:
        raise Unauthenticated("send a bearer token or an API key (X-Api-Key)")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
Viewer = Annotated[Principal, Depends(viewer)]
Caller = Annotated[Principal, Depends(caller)]


def require(action: str, allow_keys: bool = False):  # type: ignore[no-untyped-def]
    """Dependency factory: the principal, after checking that its role may do ``action``."""
    source = caller if allow_keys else current_user

    def dependency(principal: Annotated[Principal, Depends(source)]) -> Principal:
        principal.require(action)
        return principal

    dependency.__name__ = f"require_{action.replace('.', '_')}"
    return Depends(dependency)


def remote_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_scope(request: Request, action: str = "case.read") -> Scope:
    """The scope of whoever sends ``request`` (for routes where only some resources are
    scoped, such as the case layer among the map's collections): the signed-in user's, the
    development stand-in's, else 401."""
    principal = viewer_principal(request)
    principal.require(action)
    return principal.scope


def layer_scope(request: Request, collection_id: str) -> Scope | None:
    """The scope a collection's rows are read in for this caller: the case layer's as for
    ``GET /cases``, 9+X entities within the caller's areas (a department sees none by its
    department), None for the layers every reader sees whole."""
    if collection_id == "cases":
        return request_scope(request, "case.read")
    if collection_id == "entities":
        scope = request_scope(request, "entity.read")
        return Scope(city_wide=scope.city_wide, area_prefixes=scope.area_prefixes)
    return None


def require_area(request: Request, code: str, action: str = "health.read") -> None:
    """The details of one area (a grid's or community's health and the records behind it)
    only for callers whose scope holds it; others get the 404 of an unknown area."""
    scope = request_scope(request, action)
    if not (scope.city_wide or any(code.startswith(p) for p in scope.area_prefixes)):
        raise NotFound(f"no area {code!r} in your areas", code=code)


@dataclass(frozen=True)
class Actor:
    """Who takes a lifecycle step: a name and a role (of ``gridcore.security.access.Role``)."""

    name: str
    role: str
    principal: Principal | None = None  # the signed-in user (None for the stand-in)


def get_actor(request: Request, x_actor: Annotated[str | None, Header()] = None,
              x_role: Annotated[str | None, Header()] = None,
              authorization: Annotated[str | None, Header()] = None) -> Actor:
    """The signed-in user (``Authorization: Bearer …`` from ``POST /auth/token``): name and
    role come from the user record. In development only (``GRIDCORE_ENV=development``) a
    request without a token may name its actor and role in ``X-Actor`` / ``X-Role``."""
    settings = get_security_settings(request)
    if authorization and authorization.lower().startswith("bearer "):
        principal = identify(request)
        if principal is None or principal.role is None:
            raise ValidationError("the token names no role", field="Authorization")
        return Actor(principal.name, str(principal.role.value), principal)
    if not settings.trusts_role_headers:
        raise Unauthenticated(SIGN_IN)  # outside development the headers prove nothing
    if not x_role:
        raise ValidationError("the X-Role header is required (one of "
                              f"{', '.join(r.value for r in Role)}); it stands in for a "
                              "signed-in user in development mode", field="X-Role")
    if x_role not in {r.value for r in Role}:
        raise ValidationError(f"unknown role {x_role!r}", field="X-Role", value=x_role)
    return Actor(x_actor or x_role, x_role)


ActorDep = Annotated[Actor, Depends(get_actor)]
