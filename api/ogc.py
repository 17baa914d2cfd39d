"""OGC API request parameters (bbox, bbox-crs, crs, datetime), links and response classes,
and the route class of the OGC routers (a bad or unknown query parameter is a 400)."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pyproj import Transformer

from gridcore.errors import InvalidParameter, ValidationError

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"  # api.openapi.v30's translation
OPENAPI_31 = "application/vnd.oai.openapi+json;version=3.1"  # what FastAPI serves
MVT = "application/vnd.mapbox-vector-tile"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
]
# Not claimed: OGC API – Tiles. The vector tiles are XYZ ({z}/{x}/{y}, TileJSON), where Tiles'
# core path is {tileMatrix}/{tileRow}/{tileCol} (row first) and /conf/tileset needs a tileset
# resource at …/tiles/WebMercatorQuad; a client that followed the claim got transposed tiles.
_FROM_3857 = Transformer.from_crs(3857, 4326, always_xy=True)


@dataclass(frozen=True)
class OutputCrs:
    """A CRS features can be served in (OGC API – Features Part 2): its URI, the PostGIS SRID
    the stored lon/lat become, whether its axis order is lat/lon (EPSG:4326 and EPSG:4490 by
    their definitions; CRS84 is lon/lat) and the decimals that keep about a centimetre."""

    uri: str
    srid: int
    lat_lon: bool
    decimals: int


# The CRSs of every collection, CRS84 first (the default, /req/crs/crs-uri); CGCS2000 is WGS 84
# to a few centimetres and is served as such (spatial.crs).
CRSS = (OutputCrs(CRS84, 4326, False, 7), OutputCrs(EPSG4326, 4326, True, 7),
        OutputCrs(EPSG4490, 4490, True, 7), OutputCrs(EPSG3857, 3857, False, 2))
CRS_URIS = [c.uri for c in CRSS]
_SHORT = {"CRS84": CRS84, "OGC:CRS84": CRS84, "EPSG:4326": EPSG4326, "EPSG:4490": EPSG4490,
          "EPSG:3857": EPSG3857}


def parse_crs(raw: str | None, parameter: str = "crs") -> OutputCrs:
    """One of :data:`CRSS` by URI (or its short form ``EPSG:4490``); 400 otherwise."""
    if raw is None or raw == "":
        return CRSS[0]
    uri = _SHORT.get(raw.strip().upper(), raw.strip())
    for found in CRSS:
        if found.uri == uri:
            return found
    raise InvalidParameter(f"{parameter} {raw!r} is not offered; use one of "
                           f"{', '.join(CRS_URIS)}", field=parameter, value=raw,
                           supported=CRS_URIS)


class OgcRoute(APIRoute):
    """The OGC routers' route class: a query parameter that cannot be read (``limit=
    unlimited``), is invalid or unknown is a 400 (``/req/core/query-param-invalid``,
    ``-unknown``), where the rest of the API answers 422."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = [{"field": ".".join(str(p) for p in err.get("loc", ())[1:]),
                           "reason": err.get("msg", "")} for err in exc.errors()]
                raise InvalidParameter("; ".join(f"{err['field']}: {err['reason']}"
                                                 for err in errors), errors=errors) from None
            except ValidationError as exc:
                if isinstance(exc, InvalidParameter) or type(exc) is not ValidationError:
                    raise
                raise InvalidParameter(exc.message, **exc.details) from None

        return handle


class GeoJSONResponse(Response):
    """A body already serialised (by PostGIS) as GeoJSON text."""

    media_type = GEOJSON


class OgcJSONResponse(JSONResponse):
    media_type = JSON


def parse_bbox(raw: str | None, crs: str | None) -> tuple[float, float, float, float] | None:
    """``bbox`` as CRS84 (lon/lat), from ``bbox-crs`` (one of :data:`CRSS`): EPSG:4326 and
    EPSG:4490 are lat/lon by their definitions, EPSG:3857 metres."""
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
    box_crs = parse_crs(crs, "bbox-crs")  # the same list as crs (/req/crs/fc-bbox-crs-…)
    if box_crs.lat_lon:
        values = [values[1], values[0], values[3], values[2]]
    elif box_crs.srid == 3857:  # Mercator keeps a box a box: its corners say it all
        x0, y0 = _FROM_3857.transform(values[0], values[1])
        x1, y1 = _FROM_3857.transform(values[2], values[3])
        values = [x0, y0, x1, y1]
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
