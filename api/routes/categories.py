"""The classes a report may name (部件 / 事件 categories), for pickers that work offline.

Public like Open311's service list: the taxonomy is no secret. The answer only changes when the
taxonomy does, hence an ETag of its content.
"""

from __future__ import annotations

import hashlib
from functools import cache

import orjson
from fastapi import APIRouter, Request, Response

from gridcore.taxonomy import default_taxonomy

router = APIRouter(tags=["cases"])


@cache
def _body() -> tuple[bytes, str]:
    classes = [{"key": c.key, "kind": c.kind.value, "code": c.code, "major": c.major,
                "minor": c.minor, "name_zh": c.name_zh, "name_en": c.name_en,
                "limits": {stage.value: str(limit) for stage, limit in c.limits.items()},
                "dedup_radius_m": c.dedup_radius_m} for c in default_taxonomy()]
    body = orjson.dumps({"categories": classes})
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


@router.get("/categories", summary="Every category a report may name (key, kind, names, "
                                   "time limits)", response_class=Response,
            responses={200: {"content": {"application/json": {}}},
                       304: {"description": "unchanged"}})
def categories(request: Request) -> Response:
    body, etag = _body()
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def categories_etag() -> str:
    """The version of the categories (the phone app's service worker follows it)."""
    return _body()[1]
