"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from api.settings import ApiSettings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_api_settings(request: Request) -> ApiSettings:
    return request.app.state.api_settings


EngineDep = Annotated[Engine, Depends(get_engine)]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
