"""OGC API request parameters (bbox, bbox-crs, datetime), links and response classes."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pyproj import Transformer

from gridcore.errors import ValidationError

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"  # api.openapi.v30's translation
OPENAPI_31 = "application/vnd.oai.openapi+json;version=3.1"  # what FastAPI serves
MVT = "application/vnd.mapbox-vector-tile"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
]
_FROM_3857 = Transformer.from_crs(3857, 4326, always_xy=True)


class GeoJSONResponse(Response):
    """A body already serialised (by PostGIS) as GeoJSON text."""

    media_type = GEOJSON


class OgcJSONResponse(JSONResponse):
    media_type = JSON


def parse_bbox(raw: str | None, crs: str | None) -> tuple[float, float, float, float] | None:
    """``bbox`` as CRS84 (lon/lat). EPSG:4326 is lat/lon by its definition; EPSG:3857 metres."""
    if raw is None:
        return None
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError as exc:
        raise ValidationError(f"bbox {raw!r}: every value must be a number",
                              field="bbox") from exc
    if len(values) == 6:  # 3D: minx, miny, minz, maxx, maxy, maxz
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValidationError(f"bbox {raw!r}: expected 4 or 6 finite numbers", field="bbox")
    crs = crs or CRS84
    if crs in (EPSG4326, "EPSG:4326"):
        values = [values[1], values[0], values[3], values[2]]
    elif crs in (EPSG3857, "EPSG:3857"):
        x0, y0 = _FROM_3857.transform(values[0], values[1])
        x1, y1 = _FROM_3857.transform(values[2], values[3])
        values = [x0, y0, x1, y1]
    elif crs not in (CRS84, "CRS84", "OGC:CRS84"):
        raise ValidationError(f"bbox-crs {crs!r} is not supported; use {CRS84}, {EPSG4326} "
                              f"or {EPSG3857}", field="bbox-crs")
    x0, y0, x1, y1 = values
    if x0 > x1:  # crossing the antimeridian: not a case for one city's data
        raise ValidationError(f"bbox {raw!r}: minx > maxx (antimeridian boxes unsupported)",
                              field="bbox")
    if y0 > y1 or y0 < -90 or y1 > 90:
        raise ValidationError(f"bbox {raw!r}: latitudes out of order or range", field="bbox")
    return x0, y0, x1, y1


def _instant(raw: str) -> datetime | None:
    if raw in ("", ".."):
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(f"datetime {raw!r} is not RFC 3339", field="datetime") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_datetime(raw: str | None) -> tuple[datetime | None, datetime | None]:
    """An instant (``2026-01-01T00:00:00Z``, a date means its whole day) or an interval with
    open ends (``../2026-02-01``)."""
    if raw is None:
        return None, None
    if "/" in raw:
        start_raw, end_raw = raw.split("/", 1)
        start, end = _instant(start_raw), _instant(end_raw)
        if start and end and start > end:
            raise ValidationError(f"datetime {raw!r}: start after end", field="datetime")
        return start, end
    start = _instant(raw)
    if len(raw) == 10 and start is not None:  # a date: the whole day
        return start, start.replace(hour=23, minute=59, second=59, microsecond=999999)
    return start, start


def base_url(request: Request) -> str:
    """The root of the links the service writes: ``GRIDCORE_PUBLIC_URL`` when set; in
    development the address the request came to; otherwise links relative to the root (a
    ``Host`` header is the client's word, never written back into a link or a page)."""
    settings = request.app.state.settings
    if settings.api.public_url:
        return str(settings.api.public_url).rstrip("/")
    if settings.security.development:
        return str(request.base_url).rstrip("/")
    return str(request.scope.get("root_path", "")).rstrip("/")


def url_with(request: Request, **params: str) -> str:
    """This request's URL under :func:`base_url` with its query parameters replaced."""
    query = request.url.replace_query_params(**params).query
    return f"{base_url(request)}{request.url.path}" + (f"?{query}" if query else "")


def link(href: str, rel: str, type_: str, title: str = "") -> dict[str, Any]:
    out = {"href": href, "rel": rel, "type": type_}
    if title:
        out["title"] = title
    return out
