"""OGC API – Features over every layer, at the root of the service: ``/`` (landing),
``/conformance``, ``/collections``, ``/collections/{id}``, ``/collections/{id}/queryables``,
``/collections/{id}/items`` and ``/collections/{id}/items/{featureId}``.

Part 1 (core, GeoJSON, OpenAPI 3.0); Part 2 (CRS): features in CRS84 by default, or in
EPSG:4326, CGCS2000 (EPSG:4490) or Web Mercator with ``crs=`` and a ``Content-Crs`` header,
``bbox-crs`` from the same list; Part 3's queryables, as query parameters. A query parameter
that is invalid or unknown is a 400 (:class:`api.ogc.OgcRoute`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request, Response

from api.layer_view import LayerView, open_layer_view
from api.ogc import (
    CONFORMANCE,
    CRS84,
    CRS_URIS,
    GEOJSON,
    JSON,
    MVT,
    OPENAPI,
    OPENAPI_31,
    QUERYABLES_REL,
    GeoJSONResponse,
    OgcJSONResponse,
    OgcRoute,
    OutputCrs,
    base_url,
    link,
    parse_bbox,
    parse_crs,
    parse_datetime,
)
from api.openapi.v30 import openapi30
from api.routes.portal import portal_page, wants_html
from api.security.identity import identify, layer_scope
from api.security.policy import may_read_layer, public_layers
from gridcore.errors import NotFound, ValidationError
from layers.ogc import features as fq
from layers.ogc.collections import Collection

router = APIRouter(tags=["OGC API – Features"], route_class=OgcRoute)


class SchemaJSONResponse(OgcJSONResponse):
    media_type = "application/schema+json"

RESERVED = {"limit", "bbox", "bbox-crs", "crs", "datetime", "after", "before", "f"}
SCHEMA_JSON = "application/schema+json"


@router.get("/", summary="Landing page (OGC API); a browser gets the portal page (门户)",
            response_class=OgcJSONResponse,
            responses={200: {"content": {"application/json": {}, "text/html": {}}}})
def landing(request: Request, f: Annotated[Literal["json", "html"] | None, Query(
        description="json: the OGC API landing document; html: the portal page (default: "
                    "by the Accept header, JSON unless text/html is preferred)")] = None
            ) -> Any:
    if wants_html(request, f):
        return portal_page(request)
    base = base_url(request)
    return {
        "title": "gridcore",
        "description": "Grid-based city management (网格化管理): areas, unit grids, city parts, "
                       "9+X entities and cases as OGC API – Features and vector tiles.",
        "links": [
            link(f"{base}/", "self", JSON, "this document"),
            link(f"{base}/openapi-3.0.json", "service-desc", OPENAPI,
                 "OpenAPI definition (3.0)"),
            link(f"{base}/openapi.json", "service-desc", OPENAPI_31,
                 "OpenAPI definition (3.1, as FastAPI writes it)"),
            link(f"{base}/docs", "service-doc", "text/html", "API documentation"),
            link(f"{base}/conformance", "conformance", JSON, "conformance classes"),
            link(f"{base}/collections", "data", JSON, "collections"),
            link(f"{base}/?f=html", "alternate", "text/html", "the portal page (门户)"),
            link(f"{base}/map", "alternate", "text/html", "the dispatchers' map (一张图)"),
        ],
    }


@router.get("/openapi-3.0.json", include_in_schema=False)
def openapi_30(request: Request) -> Response:
    """The OpenAPI definition in version 3.0 (``api.openapi.v30``), made once per process."""
    body = getattr(request.app.state, "openapi30_body", None)
    if body is None:
        body = request.app.state.openapi30_body = orjson.dumps(openapi30(request.app.openapi()))
    return Response(body, media_type=OPENAPI)


@router.get("/conformance", summary="Conformance classes", response_class=OgcJSONResponse)
def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


def cached_extent(request: Request, cat: LayerView, c: Collection) -> list[float] | None:
    """A collection's extent, computed once per layer version (a full scan otherwise)."""
    cache = getattr(request.app.state, "extent_cache", None)
    if cache is None:
        cache = request.app.state.extent_cache = {}
    key = (c.id, cat.version_of(c))
    if key not in cache:
        if len(cache) > 256:
            cache.clear()
        cache[key] = fq.extent(cat.connection, c)
    return cache[key]


def describe(request: Request, cat: LayerView, c: Collection, base: str) -> dict[str, Any]:
    href = f"{base}/collections/{c.id}"
    bbox = cached_extent(request, cat, c) or [-180.0, -90.0, 180.0, 90.0]
    return {
        "id": c.id, "title": c.title, "description": c.description, "itemType": "feature",
        "keywords": list(c.keywords), "crs": CRS_URIS, "storageCrs": CRS84,
        "extent": {"spatial": {"bbox": [bbox], "crs": CRS84}},
        "links": [
            link(href, "self", JSON, c.title),
            link(f"{href}/items", "items", GEOJSON, "features"),
            link(f"{href}/queryables", QUERYABLES_REL, SCHEMA_JSON, "filterable properties"),
            link(f"{href}/tiles/WebMercatorQuad/tilejson.json", "describedby", JSON,
                 "TileJSON of the vector tiles"),
            link(f"{href}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}",
                 "item", MVT, "vector tiles (templated)"),
        ],
        "properties": {f.name: f.kind for f in c.fields},
        "filterableProperties": sorted(c.filterable),
        "version": cat.version_of(c),
    }


@router.get("/collections", summary="Every collection", response_class=OgcJSONResponse)
def collections(request: Request) -> dict[str, Any]:
    base = base_url(request)
    principal, public = identify(request), public_layers(request)
    with open_layer_view(request) as cat:
        return {"links": [link(f"{base}/collections", "self", JSON, "collections")],
                "collections": [describe(request, cat, c, base)
                                for c in cat.collections.values()
                                if may_read_layer(principal, public, c.id)]}


@router.get("/collections/{collection_id}", summary="One collection",
            response_class=OgcJSONResponse)
def collection(collection_id: str, request: Request) -> dict[str, Any]:
    with open_layer_view(request) as cat:
        return describe(request, cat, cat.get(collection_id), base_url(request))


@router.get("/collections/{collection_id}/queryables", summary="Filterable properties",
            response_class=SchemaJSONResponse)
def queryables(collection_id: str, request: Request) -> dict[str, Any]:
    with open_layer_view(request) as cat:
        c = cat.get(collection_id)
    kinds = {"date": ("string", "date"), "date-time": ("string", "date-time")}
    props = {}
    for name, f in c.filterable.items():
        kind, fmt = kinds.get(f.kind, (f.kind, None))
        props[name] = {"type": kind, **({"format": fmt} if fmt else {}),
                       **({"title": f.title} if f.title else {}),
                       **({"enum": list(f.values)} if f.values else {}),
                       **({"pattern": f.pattern} if f.pattern else {})}
    # additionalProperties false: any other query parameter is refused (a 400)
    return {"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "object",
            "$id": f"{base_url(request)}/collections/{c.id}/queryables",
            "title": c.title, "properties": props, "additionalProperties": False}


@router.get("/collections/{collection_id}/items", summary="Features, paged by key",
            response_class=GeoJSONResponse,
            responses={200: {"content": {GEOJSON: {}}, "description": "FeatureCollection"}})
def items(
    collection_id: str, request: Request,
    limit: Annotated[int | None, Query(ge=1, description="page size; capped by the server")]
    = None,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (in bbox-crs, "
                                              "CRS84 by default): features that intersect it")]
    = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs",
                                          description=f"one of {', '.join(CRS_URIS)}")]
    = None,
    crs: Annotated[str | None, Query(description=f"CRS of the geometries returned: one of "
                                                 f"{', '.join(CRS_URIS)}")] = None,
    datetime_: Annotated[str | None, Query(alias="datetime",
                                           description="instant or interval a/b, ../b, a/..")]
    = None,
    after: Annotated[str | None, Query(description="page after this feature id")] = None,
    before: Annotated[str | None, Query(description="page before this feature id")] = None,
    f: Annotated[str | None, Query(description="json or geojson")] = None,
) -> GeoJSONResponse:
    settings = request.app.state.settings.api
    size = min(limit or settings.page_limit_default, settings.page_limit_max)
    filters = tuple((k, v) for k, v in request.query_params.multi_items() if k not in RESERVED)
    start, end = parse_datetime(datetime_)
    if f not in (None, "json", "geojson"):
        raise ValidationError(f"f={f!r}: only json / geojson are served", field="f")
    out = parse_crs(crs)
    query = fq.ItemsQuery(parse_bbox(bbox, bbox_crs), start, end, filters, size, after, before,
                          output=_output(out))
    with open_layer_view(request) as cat:
        c = cat.get(collection_id)
        # cases and 9+X entities are scoped to who asks (gridcore.security.access)
        query = replace(query, scope=layer_scope(request, c.id))
        page = fq.items(cat.connection, c, query)
    href = f"{base_url(request)}/collections/{c.id}/items"
    keep = [(k, v) for k, v in request.query_params.multi_items()
            if k not in ("after", "before", "limit")] + [("limit", str(size))]
    query_text = urlencode(request.query_params.multi_items())
    links = [link(f"{href}?{query_text}" if query_text else href, "self", GEOJSON),
             link(f"{base_url(request)}/collections/{c.id}", "collection", JSON),
             link(f"{base_url(request)}/collections/{c.id}/queryables", QUERYABLES_REL,
                  SCHEMA_JSON)]
    if page.has_next and page.ids:
        links.append(link(f"{href}?{urlencode(keep + [('after', page.ids[-1])])}", "next",
                          GEOJSON, "next page"))
    elif page.has_next and before is not None:
        links.append(link(f"{href}?{urlencode(keep + [('after', before)])}", "next", GEOJSON))
    if page.has_prev and page.ids:
        links.append(link(f"{href}?{urlencode(keep + [('before', page.ids[0])])}", "prev",
                          GEOJSON, "previous page"))
    elif page.has_prev and after is not None:
        links.append(link(f"{href}?{urlencode(keep + [('before', after)])}", "prev", GEOJSON))
    head: dict[str, Any] = {"type": "FeatureCollection",
                            "timeStamp": datetime.now(UTC).isoformat(timespec="seconds"),
                            "numberReturned": len(page.features), "links": links}
    if page.number_matched is not None:
        head["numberMatched"] = page.number_matched
    body = json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [' \
        + ",".join(page.features) + "]}"
    return GeoJSONResponse(body, headers={
        "Content-Crs": f"<{out.uri}>",
        "Link": ", ".join(f'<{lk["href"]}>; rel="{lk["rel"]}"; type="{lk["type"]}"'
                          for lk in links)})


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature",
            response_class=GeoJSONResponse,
            responses={200: {"content": {GEOJSON: {}}, "description": "Feature"}})
def feature(collection_id: str, feature_id: str, request: Request,
            crs: Annotated[str | None, Query(description=f"CRS of the geometry: one of "
                                                         f"{', '.join(CRS_URIS)}")] = None
            ) -> GeoJSONResponse:
    out = parse_crs(crs)
    unknown = sorted(set(request.query_params) - {"crs", "f"})
    if unknown:
        raise ValidationError(f"unknown query parameter(s) {', '.join(unknown)}",
                              field=unknown[0])
    with open_layer_view(request) as cat:
        c = cat.get(collection_id)
        doc = fq.item(cat.connection, c, feature_id, layer_scope(request, c.id),
                      _output(out))
    if doc is None:
        raise NotFound(f"collection {c.id} has no feature {feature_id!r}",
                       collection=c.id, feature_id=feature_id)
    base = base_url(request)
    links = [link(f"{base}/collections/{c.id}/items/{feature_id}", "self", GEOJSON),
             link(f"{base}/collections/{c.id}", "collection", JSON)]
    return GeoJSONResponse(doc[:-1] + ', "links": ' + json.dumps(links) + "}",
                           headers={"Content-Crs": f"<{out.uri}>"})


def _output(crs: OutputCrs) -> fq.Output:
    return fq.Output(crs.srid, crs.lat_lon, crs.decimals)
