"""The front door (门户): a browser opening the service's root gets a page that leads each
person to the app of their role — the dispatchers' map, the departments' desk, the grid
workers' phone app, city health — in their language. OGC API clients (QGIS, GDAL, pygeoapi's
clients) ask for JSON and keep the landing document (``api.routes.features.landing``).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.pages import render

# (catalogue key under portal., path), in the order of the loop: dispatch, handle, report, watch
APPS = (("map", "/map"), ("desk", "/desk"), ("field", "/m/"), ("health", "/health/map"),
        ("evaluation", "/evaluation/board"))
DEVELOPER_LINKS = (("docs", "/docs"), ("collections", "/collections?f=json"),
                   ("open311", "/open311/v2/services.json"))
_JSON_TYPES = ("application/json", "application/geo+json", "application/vnd.oai.openapi+json")


def _quality(accept: str) -> dict[str, float]:
    """Each media range of an Accept header with its q (RFC 9110 §12.5.1); a range with a
    q that is not a number counts as q=1, as browsers never send one."""
    out: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 1.0
        out[media.lower()] = max(q, out.get(media.lower(), 0.0))
    return out


def wants_html(request: Request, f: str | None) -> bool:
    """``?f=html`` / ``?f=json`` decide; else HTML only when the caller names text/html and
    prefers it to every JSON type it names (a browser). ``*/*`` alone (curl, scripts) keeps
    the JSON document, as OGC API Features clients expect."""
    if f is not None:
        return f == "html"
    q = _quality(request.headers.get("accept", ""))
    html = q.get("text/html", 0.0)
    return html > 0 and html >= max((q.get(t, 0.0) for t in _JSON_TYPES), default=0.0)


def portal_page(request: Request) -> HTMLResponse:
    apps = [{"key": key, "path": path} for key, path in APPS]
    response = render(request, "portal.html", apps=apps, developer_links=DEVELOPER_LINKS)
    response.headers["Vary"] = "Accept, Accept-Language, Cookie"
    return response
