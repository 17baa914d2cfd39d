"""Devices and their alarms over HTTP (机器发现).

``POST /ingest/alarms`` — the webhook of sensors and video analytics: an API key of purpose
``iot`` or ``video`` (``X-Api-Key``) and an HMAC-signed body (``X-Gridcore-Timestamp``,
``X-Gridcore-Signature``: ``gridcore.security.signatures``). The body is one alarm
(``{"device", "alarm", "state", "at", "id", "value", "description"}``) or a list of up to
:data:`MAX_BATCH`. The case's ``source`` is the key's purpose, never the body's; the device must
be of that source. The alarms go to the same service as MQTT's (``layers.channels.alarms``), so
either channel works while the other is down.

``GET /devices``, ``GET /devices/{code}`` — the registry with each device's open cases.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep
from api.errors import localised_title, status_for
from api.security.identity import Viewer, identify
from gridcore.devices import Outcome, parse_alarm
from gridcore.errors import Forbidden, GridcoreError, ValidationError
from gridcore.security.signatures import signing_secret, verify
from layers.channels.alarms import AlarmService
from layers.channels.devices import list_devices

router = APIRouter(tags=["devices"])
MAX_BATCH = 100


def _signed_caller(request: Request, raw: bytes) -> str:
    """The key's purpose (the alarms' source), once key and signature hold."""
    key = request.headers.get("x-api-key")
    principal = identify(request)  # the access table let an iot / video key through
    if not key or principal is None or not principal.is_key:
        raise Forbidden("alarms come from devices: send the device's API key (X-Api-Key, "
                        "purpose iot or video) and a signed body", field="X-Api-Key")
    settings = request.app.state.settings
    secret = signing_secret(settings.security.signing_key(), key.split("_")[1])
    verify(secret, request.headers.get("x-gridcore-timestamp"),
           request.headers.get("x-gridcore-signature"), raw, time.time(),
           settings.channels.alarm_signature_tolerance_s)
    return str(principal.key_purpose)


@router.post("/ingest/alarms", summary="Alarms from sensors and video analytics (signed)",
             responses={200: {"description": "what became of each alarm"},
                        201: {"description": "a new case was filed"}})
async def ingest_alarms(request: Request) -> JSONResponse:
    raw = await request.body()
    source = await run_in_threadpool(_signed_caller, request, raw)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationError("the body must be JSON: one alarm object or a list of them",
                              field="body") from None
    batch = isinstance(body, list)
    items = body if batch else [body]
    if not items or len(items) > MAX_BATCH:
        raise ValidationError(f"send 1 to {MAX_BATCH} alarms at once", field="body",
                              count=len(items))
    service: AlarmService = request.app.state.alarms
    if not batch:
        alarm = parse_alarm(items[0])
        outcomes = await run_in_threadpool(service.receive, alarm, source)
        filed = any(o["outcome"] == Outcome.FILED for o in outcomes)
        return JSONResponse({"device": alarm.device, "source": source, "outcomes": outcomes},
                            status_code=201 if filed else 200)
    results: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        try:
            alarm = parse_alarm(item)
            outcomes = await run_in_threadpool(service.receive, alarm, source)
            results.append({"index": i, "device": alarm.device, "outcomes": outcomes})
        except GridcoreError as exc:  # one alarm's error, not the batch's
            results.append({"index": i, "error": {
                "status": status_for(exc), "title": localised_title(request, exc.kind,
                                                                   exc.title),
                "detail": exc.message, "field": exc.details.get("field")}})
    return JSONResponse({"source": source, "results": results})


@router.get("/devices", summary="The device registry (设备台账) with open cases")
def get_devices(engine: EngineDep, viewer: Viewer) -> dict[str, Any]:
    viewer.require("device.read")
    devices = list_devices(engine)
    return {"devices": devices, "count": len(devices)}


@router.get("/devices/{code}", summary="One device with its open cases")
def get_device(code: str, engine: EngineDep, viewer: Viewer) -> dict[str, Any]:
    viewer.require("device.read")
    return list_devices(engine, code)[0]
