"""Vector tiles (OGC API – Tiles, WebMercatorQuad, MVT) and TileJSON per collection.

Freshness: ``Cache-Control: no-cache`` with a strong ``ETag`` — browsers keep the tile but ask
each time (a 304 costs a few hundred bytes), so a tile is never stale after a write; the
in-process cache is keyed by the layer versions read in the same connection.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import read_engine_sync
from api.layer_view import LayerView, open_layer_view, registry
from api.ogc import JSON, MVT, OgcRoute, base_url, link, parse_bbox, parse_datetime
from api.security.identity import layer_scope
from layers.ogc import part_cells, part_tiles
from layers.ogc import tiles as mvt
from layers.ogc.features import ItemsQuery, clean_filters
from layers.ogc.tile_cache import CachedTile, TileCache
from layers.ogc.version_watch import VersionReader
from spatial.crs import Shift

router = APIRouter(tags=["Vector tiles"], route_class=OgcRoute)
TMS = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
# v: a client's cache-busting layer version; bbox, bbox-crs: as for items (intersection)
RESERVED = {"datetime", "datum", "f", "v", "bbox", "bbox-crs"}
CACHE_CONTROL = "no-cache"  # store, but revalidate every time: never a stale tile


def tile_cache(request: Request) -> TileCache:
    state = request.app.state
    if getattr(state, "tile_cache", None) is None:
        state.tile_cache = TileCache()
    return state.tile_cache


def shift_for(datum: str, z: int, x: int, y: int) -> Shift:
    if datum == "wgs84":
        return Shift()
    from basemaps.datum import gcj02_shift_at_tile

    return gcj02_shift_at_tile(z, x, y)


def version_reader(request: Request) -> VersionReader:
    state = request.app.state
    if getattr(state, "version_reader", None) is None:
        state.version_reader = VersionReader(state.engine)
    return state.version_reader


def _draw(request: Request, collection_id: str, z: int, x: int, y: int, datum: str,
          datetime_: str | None) -> CachedTile:
    """A cache hit costs one tiny query on a dedicated connection (the layer versions) and no
    pooled connection; a miss draws the tile in a pooled one."""
    start, end = parse_datetime(datetime_)
    raw = tuple((k, v) for k, v in request.query_params.multi_items() if k not in RESERVED)
    box = parse_bbox(request.query_params.get("bbox"), request.query_params.get("bbox-crs"))
    cache = tile_cache(request)
    versions, schema = version_reader(request).read()
    collections = registry(request).current(schema)
    if collections is None:
        with request.app.state.engine.connect() as conn:
            collections = registry(request).collections(conn, schema)
    cat = LayerView(None, versions, collections)
    c = cat.get(collection_id)
    # checked and normalised before they become part of a cache key (unknown: a 400)
    filters = clean_filters(c, raw)
    query = ItemsQuery(bbox=box, start=start, end=end, filters=filters)
    scope = layer_scope(request, c.id)  # who asks (access rules: cases, 9+X entities)
    if scope is not None and scope.city_wide:
        scope = None  # every city-wide caller shares the same tiles
    query = replace(query, scope=scope)
    key = (c.id, cat.version_of(c), z, x, y, filters, box, start, end, datum, scope)
    hit = cache.get(key)
    if hit is not None:
        return hit
    # a miss is drawn on a replica that has caught up with the versions read above, if any
    with read_engine_sync(request).connect() as conn:
        drawn = mvt.tile(conn, c, z, x, y, query, shift_for(datum, z, x, y))
    return cache.put(key, drawn.data, drawn.expires)


@router.get(f"/collections/{{collection_id}}/tiles/{TMS}/{{z}}/{{x}}/{{y}}",
            summary="A Mapbox Vector Tile of the collection",
            response_class=Response,
            responses={200: {"content": {MVT: {}}, "description": "vector tile"},
                       304: {"description": "not modified (If-None-Match)"}})
async def get_tile(
    collection_id: str, z: int, x: int, y: int, request: Request,
    datum: Annotated[Literal["wgs84", "gcj02"], Query(
        description="gcj02 shifts the overlay onto GCJ-02 basemaps (AMap)")] = "wgs84",
    datetime_: Annotated[str | None, Query(alias="datetime")] = None,
) -> Response:
    mvt.check_tile(z, x, y)
    entry = await run_in_threadpool(_draw, request, collection_id, z, x, y, datum, datetime_)
    gz = entry.gzipped is not None and "gzip" in request.headers.get("accept-encoding", "")
    etag = entry.gzip_etag if gz else entry.etag
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if etag in (request.headers.get("if-none-match") or "").replace(" ", "").split(","):
        return Response(status_code=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
        return Response(entry.gzipped, media_type=MVT, headers=headers)
    return Response(entry.data, media_type=MVT, headers=headers)


@router.get(f"/collections/{{collection_id}}/tiles/{TMS}/tilejson.json",
            summary="TileJSON 3.0 of the collection's vector tiles")
def tilejson(collection_id: str, request: Request) -> dict[str, Any]:
    from api.routes.features import cached_extent

    with open_layer_view(request) as cat:
        c = cat.get(collection_id)
        bounds = cached_extent(request, cat, c) or [-180.0, -85.0511, 180.0, 85.0511]
        version = cat.version_of(c)
    base = base_url(request)
    fields = {f.name: f.kind for f in c.fields if f.in_tiles}
    if c.h3_aggregate_below is not None:
        fields.update(count="integer", h3="string", aggregated="boolean")
        fields.update(dict.fromkeys((*part_cells.STATES, "per_km2") if c.table == part_tiles.TABLE
                                    else ("red", "yellow", "green"), "integer"))
    return {
        "tilejson": "3.0.0", "name": c.id, "description": c.title, "version": version,
        "scheme": "xyz", "tiles": [f"{base}/collections/{c.id}/tiles/{TMS}/{{z}}/{{x}}/{{y}}"],
        "minzoom": c.tile_min_zoom, "maxzoom": mvt.MAX_ZOOM, "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 14],
        "vector_layers": [{"id": c.id, "fields": fields, "minzoom": c.tile_min_zoom,
                           "maxzoom": mvt.MAX_ZOOM, "description": c.description}],
        "attribution": "gridcore",
    }


@router.get("/collections/{collection_id}/tiles", summary="Tilesets of the collection",
            response_model=None)
def tilesets(collection_id: str, request: Request) -> dict[str, Any]:
    with open_layer_view(request) as cat:
        c = cat.get(collection_id)
    href = f"{base_url(request)}/collections/{c.id}/tiles/{TMS}"
    return {"tilesets": [{
        "title": f"{c.title}, {TMS}", "tileMatrixSetURI": TMS_URI, "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "links": [link(f"{href}/{{z}}/{{x}}/{{y}}", "item", MVT, "tile (templated)"),
                  link(f"{href}/tilejson.json", "describedby", JSON, "TileJSON")],
    }]}
