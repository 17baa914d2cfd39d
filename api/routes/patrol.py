"""Patrols (巡查): a grid worker goes on duty, the phone uploads positions in batches, the worker
goes off duty; each shift is kept with its track (rules: ``gridcore.patrol``).

Who may call what: recording (start, points, end) — ``patrol.record`` (grid workers, admins),
their own shifts only; reading — one's own shifts, anyone's with ``patrol.read_all`` (managers,
admins). A shift is named by the phone (a UUID), so going on duty works offline and a resend
changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from api.responses import FastJSONResponse
from api.security.identity import CurrentUser
from gridcore.errors import NotFound, ValidationError
from gridcore.patrol import instant
from layers.patrol import shifts

router = APIRouter(prefix="/patrol", tags=["patrol"])


class ShiftStart(BaseModel):
    id: UUID = Field(description="made by the phone when the worker goes on duty")
    started_at: float | str = Field(description="epoch milliseconds or ISO 8601")


class ShiftEnd(BaseModel):
    ended_at: float | str


class Points(BaseModel):
    points: list[dict[str, Any]] = Field(description=(
        "positions: {t: epoch ms or ISO 8601, lon, lat, accuracy_m}"))


def _longest(request: Request) -> timedelta:
    return timedelta(hours=request.app.state.settings.field.patrol_shift_max_h)


@router.post("/shifts", status_code=201, summary="Go on duty: a shift starts")
def start(body: ShiftStart, request: Request, user: CurrentUser) -> Response:
    user.require("patrol.record")
    shift, created = shifts.start(request.app.state.engine, user, str(body.id),
                                  instant(body.started_at, "started_at"), _longest(request))
    return FastJSONResponse(shift, status_code=201 if created else 200,
                            headers={"Location": f"/patrol/shifts/{body.id}"})


@router.post("/shifts/{shift_id}/points", summary="Positions recorded on duty (a batch)")
def points(shift_id: UUID, body: Points, request: Request, user: CurrentUser) -> dict[str, Any]:
    user.require("patrol.record")
    limit = request.app.state.settings.field.patrol_batch_max
    if len(body.points) > limit:
        raise ValidationError(f"{len(body.points)} positions in one batch; the limit is "
                              f"{limit} (GRIDCORE_FIELD_PATROL_BATCH_MAX)", field="points",
                              limit=limit)
    return shifts.add_points(request.app.state.engine, user, str(shift_id), body.points,
                             _longest(request))


@router.post("/shifts/{shift_id}/end", summary="Go off duty: the shift ends")
def end(shift_id: UUID, body: ShiftEnd, request: Request, user: CurrentUser) -> dict[str, Any]:
    user.require("patrol.record")
    return shifts.end(request.app.state.engine, user, str(shift_id),
                      instant(body.ended_at, "ended_at"), _longest(request))


@router.get("/shifts", summary="Shifts, newest first (mine; anyone's for managers)")
def list_shifts(request: Request, user: CurrentUser,
                username: Annotated[str | None, Query(alias="user", max_length=64)] = None,
                since: datetime | None = None, until: datetime | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    if username is None or username != user.name:
        if username is None and not user.may("patrol.read_all"):
            username = user.name
        elif username is not None:
            user.require("patrol.read_all")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValidationError(f"{name} must carry a timezone", field=name)
    found = shifts.shifts(request.app.state.engine, username, since, until, limit,
                          _longest(request))
    return {"shifts": found, "count": len(found)}


@router.get("/shifts/{shift_id}", summary="One shift with its track (GeoJSON Feature)")
def one(shift_id: UUID, request: Request, user: CurrentUser) -> Response:
    owner, feature = shifts.track(request.app.state.engine, str(shift_id), _longest(request))
    if owner != user.name and not user.may("patrol.read_all"):
        raise NotFound(f"no shift {shift_id}", shift_id=str(shift_id))
    return FastJSONResponse(feature, media_type="application/geo+json")
