"""9+X governance entities, one at a time, masked by default (``?unmask=true&purpose=…``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import EngineDep
from api.security.identity import CurrentUser, remote_addr
from layers.security.restricted import read_entity

router = APIRouter(prefix="/entities", tags=["entities"])


@router.get("/{code}", summary="One 9+X entity; personal data masked unless a purpose is given",
            responses={401: {"description": "not signed in"},
                       403: {"description": "role may not read or unmask entities"},
                       404: {"description": "no such entity in your areas"}})
async def entity(code: str, request: Request, engine: EngineDep, principal: CurrentUser,
                 unmask: bool = False,
                 purpose: Annotated[str | None, Query(max_length=500)] = None
                 ) -> dict[str, Any]:
    return await run_in_threadpool(read_entity, engine, code, principal, unmask, purpose,
                                   remote_addr(request))
