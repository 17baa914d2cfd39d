"""The grid worker's phone app (网格通) at ``/m/``: the page, its web manifest and its service
worker — an installable Progressive Web App that works offline.

The service worker is served from ``/m/sw.js`` so that its scope covers the app. Its version is
a hash of everything it caches (the page's template, the app's scripts and styles, icons,
Leaflet, both languages' messages, the categories), so any change to one of them installs a new
version on the phones. Who may call what: the page, manifest and worker are public (the app
signs in by itself); everything it shows comes from the API, which checks who asks.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import i18n, pages
from api.routes.categories import categories_etag
from api.routes.static_files import STATIC

router = APIRouter(tags=["field"], include_in_schema=False)
NAMESPACES = ("common", "field", "problem", "intel")
THEME = "#005c63"
# The app's own files (its shell), and what else the worker caches with them.
APP_DIR = "field"
VENDOR = ("vendor/leaflet/leaflet.js", "vendor/leaflet/leaflet.css")
TEMPLATE = Path(str(resources.files("api").joinpath("templates", "field.html")))


def app_files() -> list[str]:
    """The app's scripts, styles and icons, relative to ``api/static`` (the worker itself
    excepted: it is served at /m/sw.js)."""
    folder = STATIC / APP_DIR
    return sorted(str(p.relative_to(STATIC)) for p in folder.rglob("*")
                  if p.is_file() and p.name != "service-worker.js")


def messages_url(lang: str) -> str:
    # as the page's i18n.js asks for it (the worker matches URLs exactly)
    return f"/i18n/{lang}.json?ns={quote(','.join(NAMESPACES), safe='')}"


def shell(root: str) -> list[str]:
    return [f"{root}/m/", f"{root}/m/manifest.webmanifest", f"{root}/static/i18n.js",
            *(f"{root}/static/{f}" for f in (*app_files(), *VENDOR)),
            *(f"{root}{messages_url(lang)}" for lang in i18n.LANGUAGES), f"{root}/categories"]


@cache
def version() -> str:
    """A hash of everything the worker caches: a change anywhere is a new version."""
    digest = hashlib.sha256()
    for name in (*app_files(), *VENDOR, "i18n.js", f"{APP_DIR}/service-worker.js"):
        digest.update(name.encode())
        digest.update((STATIC / name).read_bytes())
    digest.update(TEMPLATE.read_bytes())
    for lang in i18n.LANGUAGES:
        digest.update(i18n.etag(lang).encode())
    digest.update(categories_etag().encode())
    return digest.hexdigest()[:16]


@router.get("/m")
def no_slash(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{pages.root_path(request)}/m/", status_code=308)


@router.get("/m/", response_class=HTMLResponse)
def page(request: Request) -> HTMLResponse:
    lang = pages.request_language(request)
    settings = request.app.state.settings
    config = {"patrol_interval_s": settings.field.patrol_interval_s,
              "timezone": settings.cases.city_timezone, "version": version(),
              # photos one report or step may carry (the server refuses more with a 422)
              "max_photos": settings.cases.max_photos}
    carried = {"lang": lang, "messages": i18n.messages_for(lang, NAMESPACES)}
    return pages.render(request, "field.html", config=config, carried=carried, theme=THEME)


@router.get("/m/manifest.webmanifest")
def manifest(request: Request) -> Response:
    root = pages.root_path(request)
    icons = f"{root}/static/{APP_DIR}/icons"
    body = {
        "id": f"{root}/m/", "name": "网格通 · 网格员", "short_name": "网格通",
        "description": i18n.translate("zh-CN", "field.manifest_description"),
        "lang": "zh-CN", "dir": "ltr", "start_url": f"{root}/m/", "scope": f"{root}/m/",
        "display": "standalone", "orientation": "portrait", "background_color": "#ffffff",
        "theme_color": THEME, "categories": ["productivity", "utilities"],
        "icons": [{"src": f"{icons}/icon-192.png", "sizes": "192x192", "type": "image/png",
                   "purpose": "any"},
                  {"src": f"{icons}/icon-512.png", "sizes": "512x512", "type": "image/png",
                   "purpose": "any"},
                  {"src": f"{icons}/maskable-512.png", "sizes": "512x512",
                   "type": "image/png", "purpose": "maskable"}],
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/manifest+json",
                    headers={"Cache-Control": "no-cache"})


@router.get("/m/sw.js")
def service_worker(request: Request) -> Response:
    root = pages.root_path(request)
    prelude = (f"const VERSION = {json.dumps(version())};\n"
               f"const ROOT = {json.dumps(root)};\n"
               f"const SHELL = {json.dumps(shell(root))};\n")
    body = prelude + (STATIC / APP_DIR / "service-worker.js").read_text("utf-8")
    return Response(body, media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": f"{root}/m/"})
