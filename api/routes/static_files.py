"""The pages' own files (``api/static/``): scripts, styles, icons and vendored libraries.

Served by the app itself — no CDN — at ``/static/{path}`` (and, for the map page's existing
links, ``/map/static/{path}``), with an ETag so a page's later visits revalidate cheaply.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from gridcore.errors import NotFound

router = APIRouter(tags=["pages"])
STATIC = Path(str(resources.files("api").joinpath("static")))
MEDIA = {".mjs": "text/javascript", ".js": "text/javascript", ".css": "text/css",
         ".html": "text/html", ".svg": "image/svg+xml", ".png": "image/png",
         ".txt": "text/plain", ".md": "text/plain", ".json": "application/json",
         ".webmanifest": "application/manifest+json", ".woff2": "font/woff2"}


def static_file(path: str, max_age: int = 300) -> FileResponse:
    """A file below ``api/static`` (never outside it: ``..`` and links out are refused)."""
    target = (STATIC / path).resolve()
    if STATIC.resolve() not in target.parents or not target.is_file():
        raise NotFound(f"no static file {path!r}", path=path)
    return FileResponse(target, media_type=MEDIA.get(target.suffix, "application/octet-stream"),
                        headers={"Cache-Control": f"public, max-age={max_age}"})


@router.get("/static/{path:path}", include_in_schema=False)
def static(path: str) -> FileResponse:
    return static_file(path)
