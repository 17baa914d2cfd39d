"""``/resolve``: a location → grid, hierarchy, responsible party, linked city part, H3 cell.

``GET /resolve?lon=&lat=&crs=&category=`` for one point; ``POST /resolve`` for up to
``batch_limit`` (10,000) points given as a GeoJSON FeatureCollection of Points (``category`` in
the properties) or a JSON list of ``{"lon", "lat", "category"?}`` objects or ``[lon, lat]``
pairs. Over the limit → 413 problem+json carrying the limit.

The app's one :class:`layers.grids.resolver.Resolver` (``app.state.resolver``, built by the app
factory), so its in-memory grid index is shared by all requests and by case intake, and
refreshed when the grid layer's version changes — no restart after an import or redraw.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from api.deps import ResolverDep
from api.json_body import parse_json
from gridcore.errors import PayloadTooLarge, ValidationError
from gridcore.resolution import Resolution

router = APIRouter(tags=["resolve"])


def _public(res: Resolution) -> dict[str, Any]:
    return res.as_dict()


@router.get("/resolve")
async def resolve_one(resolver: ResolverDep,
                      lon: Annotated[float, Query(description="x: longitude or easting")],
                      lat: Annotated[float, Query(description="y: latitude or northing")],
                      crs: Annotated[str, Query(description="EPSG:4326, EPSG:4490, GCJ-02, "
                                                            "BD-09 or EPSG:n")] = "EPSG:4326",
                      category: Annotated[str | None, Query(
                          description="class key, e.g. P0101 or E0103")] = None
                      ) -> dict[str, Any]:
    res = await run_in_threadpool(resolver.resolve, lon, lat, crs, category)
    return _public(res)


def _points(body: Any) -> tuple[list[float], list[float], list[str | None]]:
    if isinstance(body, dict) and body.get("type") == "FeatureCollection":
        items = body.get("features")
        if not isinstance(items, list):
            raise ValidationError("a FeatureCollection needs a 'features' list",
                                  field="features")
        kind = "feature"
    elif isinstance(body, list):
        items, kind = body, "point"
    else:
        raise ValidationError("send a GeoJSON FeatureCollection of Points or a JSON list of "
                              "points ({\"lon\", \"lat\"} objects or [lon, lat] pairs)",
                              field="body")
    return _collect(items, kind)


def _collect(items: list[Any], kind: str) -> tuple[list[float], list[float], list[str | None]]:
    xs: list[float] = []
    ys: list[float] = []
    cats: list[str | None] = []
    for i, item in enumerate(items):
        try:
            if kind == "feature":
                geom = item.get("geometry") or {}
                if geom.get("type") != "Point":
                    raise ValidationError(f"feature {i}: geometry must be a Point, got "
                                          f"{geom.get('type')!r}", index=i, field="geometry")
                x, y = geom["coordinates"][:2]
                cat = (item.get("properties") or {}).get("category")
            elif isinstance(item, dict):
                x, y, cat = item["lon"], item["lat"], item.get("category")
            else:
                x, y = item[:2]
                cat = None
            xs.append(float(x))
            ys.append(float(y))
            cats.append(cat)
        except ValidationError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ValidationError(f"{kind} {i} is not a point with numeric coordinates "
                                  f"({exc.__class__.__name__}: {exc})", index=i,
                                  field="coordinates") from exc
    return xs, ys, cats


@router.post("/resolve")
async def resolve_batch(request: Request, resolver: ResolverDep,
                        crs: Annotated[str, Query()] = "EPSG:4326") -> dict[str, Any]:
    body = parse_json(await request.body(), "a GeoJSON FeatureCollection of Points or a "
                                            "list of points")
    features = body.get("features") if isinstance(body, dict) else body
    size = len(features) if isinstance(features, list) else 0
    limit = resolver.settings.batch_limit
    if size > limit:
        raise PayloadTooLarge(f"{size} points in one request; the limit is {limit} — split "
                              "the batch (or use `gridcore resolve FILE` for files)",
                              limit=limit, count=size)
    xs, ys, cats = _points(body)
    results = await run_in_threadpool(resolver.resolve_many, xs, ys, crs, cats)
    return {"count": len(results),
            "grid_version": results[0].grid_version if results else None,
            "results": [_public(r) for r in results]}
