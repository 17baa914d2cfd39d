"""Outgoing webhooks (事件推送) for administrators: ``/admin/webhooks`` — register a receiver
(its signing secret is shown once), change or pause it, read its delivery log, send a delivery
again. ``gridcore webhooks …`` does the same from the command line."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from api.deps import EngineDep
from api.security.identity import Viewer
from layers.notifications import webhooks

router = APIRouter(prefix="/admin/webhooks", tags=["webhooks"])


class WebhookIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, examples=["wecom-city-ops"])
    url: str = Field(min_length=8, max_length=2000)
    format: Literal["json", "wecom", "dingtalk"] = "json"
    kinds: list[str] = Field(default_factory=list, description="event kinds; empty: all")
    areas: list[str] = Field(default_factory=list, description="area codes; empty: all")
    categories: list[str] = Field(default_factory=list, description="class keys or prefixes")
    secret: str | None = Field(None, description="the signing secret (a 钉钉 SEC… key); "
                                                 "generated when not given", max_length=200)


class WebhookPatch(BaseModel):
    url: str | None = Field(None, max_length=2000)
    active: bool | None = None
    kinds: list[str] | None = None
    areas: list[str] | None = None
    categories: list[str] | None = None


@router.get("", summary="Every webhook (without secrets)")
def list_all(viewer: Viewer, engine: EngineDep) -> dict[str, Any]:
    viewer.require("webhooks.admin")
    return {"webhooks": [h.as_dict() for h in webhooks.list_webhooks(engine)]}


@router.post("", status_code=201, summary="Register a webhook; its secret is shown this once")
def create(body: WebhookIn, viewer: Viewer, engine: EngineDep) -> dict[str, Any]:
    viewer.require("webhooks.admin")
    hook, secret = webhooks.add(engine, body.name, body.url, body.format, body.kinds,
                                body.areas, body.categories, body.secret)
    return {**hook.as_dict(), "secret": secret}


@router.get("/{ref}", summary="One webhook by id or name")
def one(ref: str, viewer: Viewer, engine: EngineDep) -> dict[str, Any]:
    viewer.require("webhooks.admin")
    return webhooks.get(engine, ref).as_dict()


@router.patch("/{ref}", summary="Change a webhook's URL or events, or pause it")
def change(ref: str, body: WebhookPatch, viewer: Viewer, engine: EngineDep) -> dict[str, Any]:
    viewer.require("webhooks.admin")
    return webhooks.update(engine, ref, active=body.active, url=body.url, kinds=body.kinds,
                           areas=body.areas, categories=body.categories).as_dict()


@router.delete("/{ref}", status_code=204, summary="Remove a webhook and its delivery log")
def delete(ref: str, viewer: Viewer, engine: EngineDep) -> Response:
    viewer.require("webhooks.admin")
    webhooks.remove(engine, ref)
    return Response(status_code=204)


@router.get("/{ref}/deliveries", summary="The delivery log: every delivery and attempt")
def log(ref: str, viewer: Viewer, engine: EngineDep,
        limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    viewer.require("webhooks.admin")
    return {"deliveries": webhooks.deliveries(engine, ref, limit)}


@router.post("/deliveries/{delivery_id}/retry", summary="Send a delivery again now")
def retry(delivery_id: int, viewer: Viewer, engine: EngineDep) -> dict[str, Any]:
    viewer.require("webhooks.admin")
    webhooks.retry(engine, delivery_id)
    return {"delivery": delivery_id, "state": "pending"}
