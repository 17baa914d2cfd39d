"""FastAPI dependencies shared by the routers: the engine, the settings tree and its sections,
the one resolver — all built by the app factory (``api.app``) and kept on ``app.state``.

``EngineDep`` is the primary: writes and the reads that answer them. ``ReadEngineDep`` is for
read-only routes (tiles, feature items, health, queues and lists, evaluation, search): a
replica that has caught up with the primary when ``GRIDCORE_READ_DATABASE_URL`` names any,
else the primary (``layers.db.reads``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from gridcore.settings import CaseSettings, Settings
from layers.grids.resolver import Resolver


# Dependencies that only read app state are ``async def``: FastAPI runs a plain ``def``
# dependency in the thread pool, one thread hop per dependency per request (what such hops
# cost ``POST /cases``: benchmarks/README.md, "Design figures").
async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_read_engine(request: Request) -> Engine:
    """A caught-up replica's engine or the primary's; without replicas no I/O at all."""
    return await read_engine(request)


async def read_engine(request: Request) -> Engine:
    reads = getattr(request.app.state, "reads", None)
    if reads is None or not reads.enabled:
        return request.app.state.engine
    return await run_in_threadpool(reads.engine)


def read_engine_sync(request: Request) -> Engine:
    """The same, from code already running in a worker thread."""
    reads = getattr(request.app.state, "reads", None)
    if reads is None or not reads.enabled:
        return request.app.state.engine
    return reads.engine()


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_case_settings(request: Request) -> CaseSettings:
    return request.app.state.settings.cases


async def get_resolver(request: Request) -> Resolver:
    """The app's one resolver (its grid index is shared by /resolve, intake and the steps)."""
    return request.app.state.resolver


EngineDep = Annotated[Engine, Depends(get_engine)]
ReadEngineDep = Annotated[Engine, Depends(get_read_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CaseSettingsDep = Annotated[CaseSettings, Depends(get_case_settings)]
ResolverDep = Annotated[Resolver, Depends(get_resolver)]
