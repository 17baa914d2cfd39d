"""A case's photos served back: ``GET /cases/{id}/photos/{n}`` (the n-th, 1-based, in the order
they came: the report's, then each step's) and its thumbnail (``?size=thumb``).

Scoped like the case (who may read the case may see its photos; outside the scope both are a
404). A photo never changes (stored by its SHA-256), so its ETag is that hash and a phone's
cached copy stays good: ``If-None-Match`` is a 304 without reading the file.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from sqlalchemy import text

from api.security.identity import Viewer
from gridcore.errors import NotFound
from layers.cases.photos import photo_at, thumbnail
from layers.db.partitions import report_time
from layers.security.scoping import party_to

router = APIRouter(prefix="/cases", tags=["cases"])
CACHE = "private, max-age=86400"


def _find(request: Request, case_id: int, n: int, viewer: Viewer) -> dict[str, str]:
    viewer.require("case.read")
    engine = request.app.state.engine
    with engine.connect() as conn:
        at = report_time(conn, case_id)  # planned on the case's own year
        case = None if at is None else conn.execute(text(
            "SELECT grid_code, department_code, filed_by FROM case_record "
            "WHERE id = :i AND created_at = :at"), {"i": case_id, "at": at}).first()
        if case is None or not viewer.scope.covers_case(case.grid_code, case.department_code,
                                                        case.filed_by) \
                and not party_to(engine, case_id, viewer.scope.department):
            raise NotFound(f"case {case_id} does not exist", case_id=case_id)
        photo = photo_at(conn, case_id, n)
    if photo is None:
        raise NotFound(f"case {case_id} has no photo {n}", case_id=case_id, n=n)
    return dict(photo)


@router.get("/{case_id}/photos/{n}", summary="A case's n-th photo (1-based) or its thumbnail",
            response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}},
                       304: {"description": "not modified (ETag)"}})
async def photo(case_id: int, n: int, request: Request, viewer: Viewer,
                size: Annotated[Literal["full", "thumb"], Query()] = "full") -> Response:
    found = await run_in_threadpool(_find, request, case_id, n, viewer)
    settings = request.app.state.settings.cases
    sha = found["sha256"].strip()
    etag = f'"{sha}"' if size == "full" else f'"{sha}-t{settings.thumb_px}"'
    headers = {"ETag": etag, "Cache-Control": CACHE}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    path = settings.media_dir / found["path"]
    if not path.is_file():
        raise NotFound(f"the file of photo {n} of case {case_id} is missing from the "
                       "media directory", case_id=case_id, n=n)
    if size == "full":
        return FileResponse(path, media_type=found["content_type"], headers=headers)
    thumb = await run_in_threadpool(thumbnail, settings.media_dir, found["path"], sha,
                                    settings.thumb_px)
    return FileResponse(thumb, media_type="image/jpeg", headers=headers)
