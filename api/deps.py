"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from api.settings import ApiSettings


# Dependencies that only read app state are ``async def``: FastAPI runs a plain ``def``
# dependency in the thread pool, one thread hop per dependency per request (measured on
# ``POST /cases``: a fifth of the worker's busy time went to three such hops).
async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_api_settings(request: Request) -> ApiSettings:
    return request.app.state.api_settings


EngineDep = Annotated[Engine, Depends(get_engine)]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
