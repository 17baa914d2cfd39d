"""Beside the lifecycle steps: the 待定位 queue (hotline reports whose address could not be
placed surely enough; a dispatcher locates them with ``POST /cases/{id}/locate``) and a case's
consultation thread (会商), open to every party — the lead department, the assisting ones, the
ones a whistle called, the operations centre.

Included before :mod:`api.routes.cases`, whose ``POST /cases/{id}/{action}`` would otherwise
take ``messages`` for a step."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import CaseSettingsDep, EngineDep
from api.security.identity import ActorDep, Viewer
from layers.cases.threads import MAX_BODY, messages, post_message, unlocated
from layers.security.scoping import case_in_scope

router = APIRouter(prefix="/cases", tags=["cases"])


class MessageIn(BaseModel):
    body: str = Field(min_length=1, max_length=MAX_BODY)
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=10)


@router.get("/unlocated", summary="The 待定位 queue: open cases waiting for a place")
def get_unlocated(engine: EngineDep, settings: CaseSettingsDep, viewer: Viewer,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    viewer.require("case.locate")
    cases = unlocated(engine, settings, limit)
    return {"cases": cases, "count": len(cases)}


@router.get("/{case_id}/messages", summary="The case's consultation thread (会商)")
def get_messages(case_id: int, engine: EngineDep, actor: ActorDep,
                 after: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    case_in_scope(engine, case_id, actor.principal, "case.discuss")
    items = messages(engine, case_id, after)
    return {"case_id": case_id, "messages": items, "count": len(items)}


@router.post("/{case_id}/messages", status_code=201,
             summary="Add to the case's consultation thread (会商)")
def post_messages(case_id: int, body: MessageIn, engine: EngineDep,
                  actor: ActorDep) -> dict[str, Any]:
    case_in_scope(engine, case_id, actor.principal, "case.discuss")
    department = actor.principal.scope.department if actor.principal is not None else None
    return post_message(engine, case_id, actor.name, actor.role, department, body.body,
                        body.attachments)
