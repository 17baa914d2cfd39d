"""Live notifications: ``GET /events`` (server-sent events) and what a user subscribed to.

Each open stream gets every event about a case its caller may see (their scope, as reading the
case), marked ``notify: true`` when it is one they subscribed to (area × class × kind): the
page refreshes its queue on every event and shows a toast for the notifying ones. A stream
starts with a ``hello`` event, resumes after ``Last-Event-ID`` (the header a browser's
EventSource sends on reconnecting, or ``?last_event_id=``) by replaying what it missed, sends a
comment every ``GRIDCORE_EVENTS_HEARTBEAT_S`` so proxies keep it open, and ends after
``GRIDCORE_EVENTS_STREAM_MAX_S`` (the page reconnects with a fresh token).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.deps import EngineDep
from api.events_hub import OVERFLOW, STOP, EventHub
from api.security.identity import CurrentUser, Viewer
from gridcore.errors import ServiceUnavailable
from gridcore.events import SUBSCRIBABLE, CaseEvent, Listener, Subscription
from gridcore.security.access import Principal
from layers.notifications import outbox
from layers.notifications.subscriptions import (
    get_subscription,
    reset_subscription,
    set_subscription,
)

router = APIRouter(tags=["events"])


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v for v in value.split(",") if v.strip()]


def _sse(kind: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def _listener(principal: Principal, sub: Subscription) -> Listener:
    return Listener(principal.name, principal.role, principal.scope, sub,
                    principal.department)


def _stored_or_default(engine: Any, principal: Principal) -> Subscription:
    return get_subscription(engine, principal.name, principal.role)[0]


@router.get("/events", summary="Live case events as server-sent events (text/event-stream)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(request: Request, viewer: Viewer, engine: EngineDep,
                 kinds: Annotated[str | None, Query(
                     description="comma-separated event kinds to be notified of "
                                 f"({', '.join(SUBSCRIBABLE)}); default: your subscription")
                 ] = None,
                 areas: Annotated[str | None, Query(description="area codes (prefixes)")
                                  ] = None,
                 categories: Annotated[str | None, Query(description="class keys or prefixes")
                                       ] = None,
                 only: Literal["all", "notify"] = "all",
                 last_event_id: Annotated[int | None, Query(ge=0)] = None,
                 last_event_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
                 ) -> StreamingResponse:
    viewer.require("case.read")
    hub: EventHub | None = getattr(request.app.state, "event_hub", None)
    if hub is None:
        raise ServiceUnavailable("live events are not running in this process")
    wanted = (_split(kinds), _split(areas), _split(categories))
    if any(v is not None for v in wanted):
        sub = Subscription.of(*(v or [] for v in wanted))
    else:
        sub = await run_in_threadpool(_stored_or_default, engine, viewer)
    listener = _listener(viewer, sub)
    after = last_event_id
    if after is None and last_event_header and last_event_header.strip().isdigit():
        after = int(last_event_header.strip())
    notify = request.app.state.settings.notifications
    stream = hub.open(listener)  # before the replay: nothing falls between the two
    missed: list[CaseEvent] = []
    if after is not None:
        def replay() -> list[CaseEvent]:
            with engine.connect() as conn:
                return outbox.fetch(conn, after=after, limit=notify.events_replay_max)
        missed = [e for e in await run_in_threadpool(replay) if listener.receives(e)]

    async def body() -> AsyncIterator[bytes]:
        deadline = time.monotonic() + notify.events_stream_max_s
        sent = after or 0
        try:
            yield b"retry: 2000\n\n"
            yield _sse("hello", {"worker": os.getpid(), "last_id": hub.last_id,
                                 "user": viewer.name, "role": viewer.role,
                                 "subscription": sub.as_dict(), "replayed": len(missed)})
            for event in missed:
                sent = max(sent, event.id or 0)
                if only == "all" or listener.notified(event):
                    yield _sse("case", {**event.as_dict(), "notify":
                                        listener.notified(event)}, event.id)
            while time.monotonic() < deadline:
                try:
                    item = await asyncio.wait_for(stream.queue.get(),
                                                  min(notify.events_heartbeat_s,
                                                      max(0.1, deadline - time.monotonic())))
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is STOP or item is OVERFLOW:
                    break
                assert isinstance(item, CaseEvent)
                if (item.id or 0) <= sent:
                    continue  # already replayed
                notified = listener.notified(item)
                if only == "all" or notified:
                    yield _sse("case", {**item.as_dict(), "notify": notified}, item.id)
            yield _sse("bye", {"reconnect": True})
        finally:
            hub.close(stream)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class SubscriptionIn(BaseModel):
    kinds: list[str] = Field(default_factory=list, description="event kinds; empty: all")
    areas: list[str] = Field(default_factory=list, description="area codes; empty: all")
    categories: list[str] = Field(default_factory=list, description="class keys or prefixes")


@router.get("/me/subscriptions", summary="What you are notified of (area × class × kind)")
def my_subscription(user: CurrentUser, engine: EngineDep) -> dict[str, Any]:
    sub, stored = get_subscription(engine, user.name, user.role)
    return {**sub.as_dict(), "stored": stored, "kinds_available": list(SUBSCRIBABLE)}


@router.put("/me/subscriptions", summary="Choose what you are notified of")
def put_subscription(body: SubscriptionIn, user: CurrentUser,
                     engine: EngineDep) -> dict[str, Any]:
    sub = Subscription.of(body.kinds, body.areas, body.categories)
    set_subscription(engine, user.name, sub)
    return {**sub.as_dict(), "stored": True, "kinds_available": list(SUBSCRIBABLE)}


@router.delete("/me/subscriptions", summary="Back to your role's default subscription")
def delete_subscription(user: CurrentUser, engine: EngineDep) -> dict[str, Any]:
    reset_subscription(engine, user.name)
    return my_subscription(user, engine)
