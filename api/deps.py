"""FastAPI dependencies shared by the routers: the engine, the settings tree and its sections,
the one resolver — all built by the app factory (``api.app``) and kept on ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from gridcore.settings import CaseSettings, Settings
from layers.grids.resolver import Resolver


# Dependencies that only read app state are ``async def``: FastAPI runs a plain ``def``
# dependency in the thread pool, one thread hop per dependency per request (what such hops
# cost ``POST /cases``: benchmarks/README.md, "Design figures").
async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_case_settings(request: Request) -> CaseSettings:
    return request.app.state.settings.cases


async def get_resolver(request: Request) -> Resolver:
    """The app's one resolver (its grid index is shared by /resolve, intake and the steps)."""
    return request.app.state.resolver


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CaseSettingsDep = Annotated[CaseSettings, Depends(get_case_settings)]
ResolverDep = Annotated[Resolver, Depends(get_resolver)]
