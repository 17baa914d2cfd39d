"""The pages' own files (``api/static/``): scripts, styles, icons and vendored libraries.

Served by the app itself — no CDN — at ``/static/{path}`` (and, for the map page's existing
links, ``/map/static/{path}``), with an ETag so a page's later visits revalidate cheaply.
Scripts and styles go gzip-compressed to a client that accepts it (made once per file and
kept): on a phone's slow network a page's scripts are most of its bytes (Leaflet shrinks to a
third; the figures: benchmarks/README.md).
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

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


COMPRESSIBLE = {".js", ".mjs", ".css", ".json", ".svg", ".html", ".txt", ".md", ".webmanifest"}
_compressed: dict[Path, tuple[int, bytes, str]] = {}  # path → (mtime_ns, gzip bytes, ETag)
_lock = threading.Lock()


def _gzipped(target: Path) -> tuple[bytes, str]:
    mtime = target.stat().st_mtime_ns
    with _lock:
        known = _compressed.get(target)
    if known is not None and known[0] == mtime:
        return known[1], known[2]
    raw = target.read_bytes()
    body = gzip.compress(raw, compresslevel=9, mtime=0)
    etag = '"' + hashlib.sha256(raw).hexdigest()[:20] + '-gz"'
    with _lock:
        _compressed[target] = (mtime, body, etag)
    return body, etag


def static_response(request: Request, path: str, max_age: int = 300) -> Response:
    """``static_file``, compressed when the client accepts gzip and the file is text."""
    answer = static_file(path, max_age)
    target = Path(answer.path)
    if target.suffix not in COMPRESSIBLE or "gzip" not in request.headers.get(
            "accept-encoding", ""):
        return answer
    body, etag = _gzipped(target)
    headers = {"Cache-Control": f"public, max-age={max_age}", "ETag": etag,
               "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=answer.media_type,
                    headers={**headers, "Content-Encoding": "gzip"})


@router.get("/static/{path:path}", include_in_schema=False)
def static(path: str, request: Request) -> Response:
    return static_response(request, path)
