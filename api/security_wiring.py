"""Everything security adds to the app, in one call from ``create_app`` (which has checked the
security settings already: a service with a default secret refuses to start)."""

from __future__ import annotations

from fastapi import FastAPI

from api import middleware
from api.openapi import problems as openapi_problems
from api.routes import auth, entities


def install(app: FastAPI) -> None:
    settings = app.state.settings.security
    middleware.install(app, max_body_bytes=app.state.settings.api.max_body_bytes,
                       rate=settings.rate_per_s, burst=settings.rate_burst,
                       signin_rate=settings.signin_rate_per_s,
                       signin_burst=settings.signin_burst)
    openapi_problems.install(app)
    app.include_router(auth.router)
    app.include_router(entities.router)
