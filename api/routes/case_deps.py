"""Dependencies of the case routes: settings, resolver, the acting user.

The actor of a lifecycle step is the authenticated user when the request carries a bearer
token (``Authorization: Bearer …`` from ``POST /auth/token``): name and role come from the user
record. **Temporary stand-in:** without a token, the actor and role are taken from the
``X-Actor`` and ``X-Role`` headers (roles of ``gridcore.lifecycle.Role``). That is
trust-the-client, kept only until the security work makes the token mandatory here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from pydantic import ValidationError as PydanticError

from gridcore.errors import Unauthenticated, ValidationError
from gridcore.lifecycle import Role
from gridcore.security.access import Principal
from layers.case_settings import CaseSettings
from layers.cases.resolving import Resolves, make_resolver


async def get_case_settings(request: Request) -> CaseSettings:  # async: see api.deps
    settings = getattr(request.app.state, "case_settings", None)
    if settings is None:
        settings = request.app.state.case_settings = CaseSettings()
    return settings


async def get_resolver(request: Request) -> Resolves:  # async: see api.deps
    resolver = getattr(request.app.state, "case_resolver", None)
    if resolver is None:
        resolver = request.app.state.case_resolver = make_resolver(request.app.state.engine)
    return resolver


@dataclass(frozen=True)
class Actor:
    name: str
    role: str
    principal: Principal | None = None  # the signed-in user (None for the stand-in)


def get_actor(request: Request, x_actor: Annotated[str | None, Header()] = None,
              x_role: Annotated[str | None, Header()] = None,
              authorization: Annotated[str | None, Header()] = None) -> Actor:
    if authorization and authorization.lower().startswith("bearer "):
        from api.security import get_security_settings, principal_for_token

        principal = principal_for_token(request.app.state.engine,
                                        get_security_settings(request),
                                        authorization.split(" ", 1)[1].strip())
        if principal.role is None:
            raise ValidationError("the token names no role", field="Authorization")
        return Actor(principal.name, str(principal.role.value), principal)
    from api.security import SIGN_IN, get_security_settings

    if not get_security_settings(request).trusts_role_headers:
        raise Unauthenticated(SIGN_IN)  # outside development the headers prove nothing
    if not x_role:
        raise ValidationError("the X-Role header is required (one of "
                              f"{', '.join(r.value for r in Role)}); it stands in for "
                              "authentication until that lands", field="X-Role")
    if x_role not in {r.value for r in Role}:
        raise ValidationError(f"unknown role {x_role!r}", field="X-Role", value=x_role)
    return Actor(x_actor or x_role, x_role)


def pydantic_problem(exc: PydanticError) -> ValidationError:
    """A pydantic error as one precise domain ValidationError (field + reason for each)."""
    errors = [{"field": ".".join(str(p) for p in err["loc"]), "reason": err["msg"]}
              for err in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    return ValidationError(detail, errors=errors, field=errors[0]["field"] if errors else None)


CaseSettingsDep = Annotated[CaseSettings, Depends(get_case_settings)]
ResolverDep = Annotated[Resolves, Depends(get_resolver)]
ActorDep = Annotated[Actor, Depends(get_actor)]
