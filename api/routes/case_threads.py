"""Beside the lifecycle steps: the 待定位 queue (hotline reports whose address could not be
placed surely enough; a dispatcher locates them with ``POST /cases/{id}/locate``) and a case's
consultation thread (会商), open to every party — the lead department, the assisting ones, the
ones a whistle called, the operations centre.

Included before :mod:`api.routes.cases`, whose ``POST /cases/{id}/{action}`` would otherwise
take ``messages`` for a step."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticError

from api.deps import CaseSettingsDep, EngineDep
from api.errors import pydantic_problem
from api.json_body import parse_json
from api.routes.case_photos import CACHE
from api.security.identity import ActorDep, Viewer
from api.uploads import form_photos, read_form
from gridcore.errors import NotFound, PayloadTooLarge, ValidationError
from gridcore.intake import Photo
from gridcore.security.access import Role
from gridcore.settings import CaseSettings
from layers.cases.coordination_view import coordination_state, party_cases
from layers.cases.photos import store_photo
from layers.cases.threads import (
    MAX_ATTACHMENTS,
    MAX_BODY,
    message_photo,
    messages,
    post_message,
    unlocated,
    with_links,
)
from layers.security.scoping import case_in_scope

router = APIRouter(prefix="/cases", tags=["cases"])


class MessageIn(BaseModel):
    body: str = Field(min_length=1, max_length=MAX_BODY)
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=10)


async def read_message(request: Request, settings: CaseSettings
                       ) -> tuple[MessageIn, list[Photo]]:
    """A message from a JSON body, or from a multipart form with ``photos`` file parts."""
    cap = settings.max_photo_bytes * MAX_ATTACHMENTS + 1_000_000
    length = int(request.headers.get("content-length") or 0)
    if length > cap:
        raise PayloadTooLarge(f"request body is {length} bytes; the limit is {cap}",
                              size=length, limit=cap)
    photos: list[Photo] = []
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await read_form(request, MAX_ATTACHMENTS, settings.max_photo_bytes + 1)
        data: Any = {"body": form.get("body") or ""}
        photos = await form_photos(form, settings)
    else:
        data = parse_json(await request.body(), "a message object: {\"body\": \"…\"}")
        if not isinstance(data, dict):
            raise ValidationError("the JSON body must be an object", field="body")
    try:
        return MessageIn.model_validate(data), photos
    except PydanticError as exc:
        raise pydantic_problem(exc) from None


@router.get("/unlocated", summary="The 待定位 queue: open cases waiting for a place")
def get_unlocated(engine: EngineDep, settings: CaseSettingsDep, viewer: Viewer,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    viewer.require("case.locate")
    cases, count = unlocated(engine, settings, limit)
    return {"cases": cases, "count": count}


@router.get("/party-tasks", summary="Cases my department is a party to and has to answer "
            "(报到, 协同反馈)")
def get_party_tasks(engine: EngineDep, actor: ActorDep,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    department = actor.principal.scope.department if actor.principal is not None else None
    items = party_cases(engine, department, limit)
    return {"department": department, "items": items, "count": len(items)}


@router.get("/{case_id}/coordination",
            summary="The case's coordination state (吹哨报到, 协同, 上报) and the caller's steps")
def get_coordination(case_id: int, engine: EngineDep, actor: ActorDep) -> dict[str, Any]:
    case_in_scope(engine, case_id, actor.principal, "case.read")
    principal = actor.principal
    role = principal.role if principal is not None else _role(actor.role)
    department = principal.scope.department if principal is not None else None
    return coordination_state(engine, case_id, role, department)


def _role(name: str) -> Role | None:
    try:
        return Role(name)
    except ValueError:
        return None


@router.get("/{case_id}/messages", summary="The case's consultation thread (会商)")
def get_messages(case_id: int, engine: EngineDep, actor: ActorDep,
                 after: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    case_in_scope(engine, case_id, actor.principal, "case.discuss")
    items = [with_links(case_id, m) for m in messages(engine, case_id, after)]
    return {"case_id": case_id, "messages": items, "count": len(items)}


@router.post("/{case_id}/messages", status_code=201,
             summary="Add to the case's consultation thread (会商): JSON, or multipart with photos",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": MessageIn.model_json_schema()},
                 "multipart/form-data": {"schema": {
                     "type": "object", "required": ["body"], "additionalProperties": False,
                     "properties": {"body": {"type": "string", "maxLength": MAX_BODY},
                                    "photos": {"type": "array", "items": {
                                        "type": "string", "format": "binary"}}}}}}}})
async def post_messages(case_id: int, request: Request, actor: ActorDep) -> dict[str, Any]:
    state = request.app.state
    engine, settings = state.engine, state.settings.cases
    await run_in_threadpool(case_in_scope, engine, case_id, actor.principal, "case.discuss")
    body, photos = await read_message(request, settings)
    department = actor.principal.scope.department if actor.principal is not None else None
    if any(k in a for a in body.attachments for k in ("path", "sha256")):
        raise ValidationError("attachments cannot name files on the server: send photos as "
                              "multipart `photos` parts", field="attachments")

    def write() -> dict[str, Any]:
        attachments = [*body.attachments, *(
            {"name": p.name, "path": store_photo(p, settings.media_dir), "sha256": p.sha256,
             "content_type": p.content_type, "size_bytes": len(p.data)} for p in photos)]
        return post_message(engine, case_id, actor.name, actor.role, department, body.body,
                            attachments)

    return with_links(case_id, await run_in_threadpool(write))


@router.get("/{case_id}/messages/{message_id}/photos/{n}", response_class=Response,
            summary="A photo attached to a message of the consultation thread (1-based)",
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}})
def get_message_photo(case_id: int, message_id: int, n: int, request: Request,
                      actor: ActorDep) -> Response:
    engine, settings = request.app.state.engine, request.app.state.settings.cases
    case_in_scope(engine, case_id, actor.principal, "case.discuss")
    found = message_photo(engine, case_id, message_id, n)
    path = settings.media_dir / found["path"]
    if not path.is_file():
        raise NotFound(f"the file of photo {n} of message {message_id} is missing",
                       case_id=case_id, message_id=message_id, n=n)
    return FileResponse(path, media_type=found["content_type"],
                        headers={"ETag": f'"{found["sha256"]}"', "Cache-Control": CACHE})
