"""The FastAPI application factory: it builds the settings tree (unless given one), checks the
security settings, and at start-up makes the engine, the one resolver and the intake service
with its group commit — everything the routes find on ``app.state``."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

from fastapi import Depends, FastAPI
from sqlalchemy import Engine

import gridcore
from api import background, errors, filing
from api.openapi import problems as openapi_problems
from api.routes import (
    auth,
    briefings,
    case_photos,
    case_threads,
    categories,
    desk,
    entities,
    evaluation,
    evaluation_page,
    events,
    features,
    field,
    health,
    i18n,
    me,
    patrol,
    probes,
    sessions,
    static_files,
    tiles,
    webhooks,
)
from api.routes import cases as case_routes
from api.routes import devices as device_routes
from api.routes import geocode as geocode_routes
from api.routes import intelligence as intelligence_routes
from api.routes import map as map_routes
from api.routes import open311 as open311_routes
from api.routes import resolve as resolve_routes
from api.security import guards, policy
from api.security import headers as security_headers
from basemaps.providers import tile_origins
from gridcore.settings import Settings
from layers.db.engine import check_server, is_superuser, make_engine
from layers.db.reads import ReadRouter
from layers.grids.resolver import Resolver
from layers.security import audit
from layers.security.anchor import AnchorFile

log = logging.getLogger(__name__)


def _warm(resolver: Resolver, settings: Settings) -> None:
    """The grid snapshot, built before the first request: otherwise the first report each
    server process receives waits for the build. A database without the layers yet (not
    migrated) is no reason not to start: the snapshot is then built on first use. The working
    calendar's running counts of the last years too (a list of clocks years old needs them:
    about 0.1 s the first time)."""
    today = datetime.now(UTC).date()
    try:
        settings.cases.working_calendar.workdays_between(date(today.year - 5, 1, 1), today)
    except Exception as exc:  # noqa: BLE001 - the first clock says what is wrong with it
        log.warning("working calendar not read at start-up: %s", exc)
    try:
        resolver.warm()
    except Exception as exc:  # noqa: BLE001
        log.warning("grid index not built at start-up (built on first use instead): %s", exc)


def _install_security(app: FastAPI) -> None:
    """The request guards (body size, rate limits), problem+json in the OpenAPI document, and
    the routes of identity (sign-in) and of 9+X records."""
    security, api = app.state.settings.security, app.state.settings.api
    guards.install(app, max_body_bytes=api.max_body_bytes, rate=security.rate_per_s,
                   burst=security.rate_burst, signin_rate=security.signin_rate_per_s,
                   signin_burst=security.signin_burst)
    openapi_problems.install(app)
    app.include_router(auth.router)
    app.include_router(sessions.router)
    app.include_router(entities.router)


def anchor_file(settings: Settings) -> AnchorFile:
    """Where the sealer anchors the audit chain's heads, signed with the service's key."""
    return AnchorFile(settings.security.audit_anchor_path(settings.database.data_dir),
                      settings.security.signing_key())


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app. ``settings``: the tree, read from the environment when not given (a
    worker process of ``gridcore serve --workers`` builds its own). The engine is created
    (and the server checked) in the lifespan, and disposed when the app stops; a caller may
    pass its own engine (tests)."""
    settings = settings if settings is not None else Settings()
    settings.security.check()  # a default secret stops the start, not the first sign-in
    owns_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = app.state
        # the application role, not the owner: it cannot truncate or rewrite the audit log
        state.engine = engine or make_engine(settings.database, role="app")
        check_server(state.engine)
        if engine is None and not settings.security.development and is_superuser(state.engine):
            log.warning("gridcore serve connects as a database superuser: it could truncate "
                        "the audit log; connect as the application role (README, 'The two "
                        "database roles')")
        audit.configure_anchor(state.engine, anchor_file(settings))
        # read-only routes go to a caught-up replica when GRIDCORE_READ_DATABASE_URL names any
        state.reads = ReadRouter(state.engine, settings.database)
        await asyncio.to_thread(state.reads.start)
        state.resolver = Resolver(state.engine, settings.resolve, settings.h3_resolution)
        await asyncio.to_thread(_warm, state.resolver, settings)
        filing.start(app)
        background.start(app)  # events to the pages, supervision sweep, webhooks
        # What start-up built (the grid snapshot, the taxonomy, the routes) lives as long as
        # the process: out of the collector's sight, a full collection no longer walks it
        # (each such walk stalled every request of the process: benchmarks/README.md).
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            background.stop(app)
            filing.stop(app)
            await asyncio.to_thread(state.reads.stop)
            reader = getattr(state, "version_reader", None)  # the tiles' dedicated conn
            if reader is not None:
                reader.close()
            if owns_engine:
                state.engine.dispose()

    app = FastAPI(
        title="gridcore",
        version=gridcore.__version__,
        summary="Grid-based city management (网格化管理): layers, resolve, cases, one map, health",
        lifespan=lifespan,
        # who may call what: one table, checked before every route (api/security/policy.py)
        dependencies=[Depends(policy.enforce)],
    )
    app.state.settings = settings
    errors.install(app)
    errors.install_database_errors(app)
    # The busiest paths first, case intake and the map's tiles: FastAPI matches a request
    # against the included routers' routes one by one, a cost every report paid for each
    # route before its own (benchmarks/README.md, "Design figures"). No route of a router
    # included later can match their paths (a path parameter never spans a "/").
    # (the 待定位 queue and the 会商 thread first: /cases/{id} and /cases/{id}/{action} would
    # take their paths)
    app.include_router(case_threads.router)
    app.include_router(case_routes.router)
    app.include_router(tiles.router)
    app.include_router(open311_routes.router)
    _install_security(app)
    app.include_router(probes.router)
    app.include_router(features.router)
    app.include_router(map_routes.router)
    app.include_router(resolve_routes.router)
    app.include_router(geocode_routes.router)
    app.include_router(device_routes.router)
    app.include_router(health.router)
    app.include_router(evaluation_page.router)  # before /evaluation/{kind}
    app.include_router(evaluation.router)
    app.include_router(briefings.router)
    app.include_router(case_photos.router)
    app.include_router(categories.router)
    app.include_router(me.router)
    app.include_router(patrol.router)
    app.include_router(field.router)
    app.include_router(intelligence_routes.router)
    app.include_router(i18n.router)
    app.include_router(events.router)
    app.include_router(desk.router)
    app.include_router(webhooks.router)
    app.include_router(static_files.router)
    security_headers.install(app, tile_origins(settings.map))
    app.state.grid_health = health.grid_health_summary  # the one map's grid panel
    policy.check_routes(app)  # a route without a line in the access table stops the start
    return app
