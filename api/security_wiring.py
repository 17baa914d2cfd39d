"""Everything security adds to the app, in one call from ``create_app``.

The settings are checked here, at start-up, so that a service with a default secret refuses to
start rather than failing on the first sign-in.
"""

from __future__ import annotations

from fastapi import FastAPI

from api import middleware
from api.openapi import problems as openapi_problems
from api.routes import auth, entities
from api.security_settings import SecuritySettings


def install(app: FastAPI, settings: SecuritySettings | None = None) -> None:
    settings = (settings or SecuritySettings()).check()
    app.state.security_settings = settings
    middleware.install(app, max_body_bytes=app.state.api_settings.max_body_bytes,
                       rate=settings.rate_per_s, burst=settings.rate_burst,
                       signin_rate=settings.signin_rate_per_s,
                       signin_burst=settings.signin_burst)
    openapi_problems.install(app)
    app.include_router(auth.router)
    app.include_router(entities.router)
