"""``GET /geocode?q=``: an address, a named place or an intersection → ranked candidates with a
confidence (地址解析). ``layers.channels.geocoder`` looks them up in the address layer (pg_trgm
and full text, no external service); the answer says how the query was read, each
candidate's terms (text similarity, house-number agreement, precision, ambiguity), its grid,
and the confidence above which intake files a report at the geocoded point."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from api.security.identity import Viewer
from layers.channels.geocoder import Geocoder

router = APIRouter(tags=["geocode"])


@router.get("/geocode", summary="Geocode an address, named place or intersection (地址解析)")
async def geocode(request: Request, viewer: Viewer,
                  q: Annotated[str, Query(min_length=1, max_length=200, description=(
                      "an address (Mannerheimintie 6, 建国路88号), a named place, or an "
                      "intersection (A路与B路交叉口, X St & Y St)"))],
                  limit: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, Any]:
    viewer.require("geocode")
    geocoder: Geocoder = request.app.state.geocoder
    answer = await run_in_threadpool(geocoder.geocode, q, limit)
    answer["min_confidence"] = request.app.state.settings.channels.geocode_min_confidence
    return answer
