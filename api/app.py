"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

import gridcore
from api import errors, security_headers, security_wiring
from api.routes import cases as case_routes
from api.routes import features, i18n, static_files, tiles
from api.routes import health as city_health
from api.routes import map as map_routes
from api.routes import open311 as open311_routes
from api.routes import probes as health
from api.routes import resolve as resolve_routes
from api.settings import ApiSettings
from basemaps.providers import tile_origins
from basemaps.settings import BasemapSettings
from layers.cases.resolving import make_resolver
from layers.db.engine import check_server, make_engine
from layers.settings import DatabaseSettings

log = logging.getLogger(__name__)


def _warm_resolver(app: FastAPI) -> None:
    """The case resolver and its grid snapshot, built before the first request: otherwise the
    first report each server process receives waits for the build (bench_intake saw 0.3–0.5 s
    reports, one per worker). A database without the layers yet (not migrated) is no reason
    not to start: the snapshot is then built on first use, as before."""
    try:
        resolver = make_resolver(app.state.engine)
        resolver.warm()
    except Exception as exc:  # noqa: BLE001
        log.warning("grid index not built at start-up (built on first use instead): %s", exc)
        return
    app.state.case_resolver = resolver


def create_app(api_settings: ApiSettings | None = None,
               db_settings: DatabaseSettings | None = None,
               engine: Engine | None = None) -> FastAPI:
    """Build the app. The engine is created (and the server checked) in the lifespan, and
    disposed when the app stops; a caller may pass its own engine (tests)."""
    api_settings = api_settings or ApiSettings()
    db_settings = db_settings or DatabaseSettings()
    owns_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = engine or make_engine(db_settings)
        check_server(app.state.engine)
        await asyncio.to_thread(_warm_resolver, app)
        # What start-up built (the grid snapshot, the taxonomy, the routes: 170,000 objects)
        # lives as long as the process: out of the collector's sight, a full collection no
        # longer walks it. Each such walk held the GIL for about 80 ms, a stall of every
        # request of the process (bench_intake's p99 at 16 connections).
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            executor = getattr(app.state, "intake_executor", None)  # POST /cases threads
            if executor is not None:
                executor.shutdown(wait=True)
            reader = getattr(app.state, "version_reader", None)  # the tiles' dedicated conn
            if reader is not None:
                reader.close()
            if owns_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="gridcore",
        version=gridcore.__version__,
        summary="Grid-based city management (网格化管理): layers, resolve, cases, one map, health",
        lifespan=lifespan,
    )
    app.state.api_settings = api_settings
    app.state.db_settings = db_settings
    errors.install(app)
    errors.install_database_errors(app)
    # The busiest paths first, case intake and the map's tiles: FastAPI matches a request
    # against the included routers' routes one by one, and POST /cases came after 23 other
    # routes, 57 µs of matching on every report (measured; about 1 µs per route plus each
    # router's bookkeeping), a tile after 17. No route of a router included later can match
    # their paths (a path parameter never spans a "/").
    app.include_router(case_routes.router)
    app.include_router(tiles.router)
    app.include_router(open311_routes.router)
    security_wiring.install(app)
    app.include_router(health.router)
    app.include_router(features.router)
    app.include_router(map_routes.router)
    app.include_router(resolve_routes.router)
    app.include_router(city_health.router)
    app.include_router(i18n.router)
    app.include_router(static_files.router)
    app.state.basemap_settings = BasemapSettings()
    security_headers.install(app, tile_origins(app.state.basemap_settings))
    app.state.grid_health = city_health.grid_health_summary  # the one map's grid panel
    return app
