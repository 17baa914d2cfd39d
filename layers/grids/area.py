"""A user's own area for the phone (``GET /me/area``): their current unit grids and the city
parts in them, as one GeoJSON document the phone keeps offline.

The phone works out which grid it stands in from this document (point in polygon), so it must
be the current generation's grids exactly; its version follows the layers it is made of (grids,
areas, parts) and the user's areas, so the phone downloads it again only when one of them
changed (``ETag``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, text

from gridcore.security.access import Scope

_PRECISION = 7  # decimal degrees: ~1 cm, far below GPS error

_GRIDS = f"""
SELECT g.code, g.name, g.community_code, a.name AS community_name, g.worker_codes,
       ST_AsGeoJSON(g.geom, {_PRECISION}) AS geometry
FROM unit_grid g LEFT JOIN admin_area a ON a.code = g.community_code
WHERE g.gen_to IS NULL AND (%(where)s)
ORDER BY g.code LIMIT :limit
"""
_PARTS = f"""
SELECT p.code, p.class_code, p.name, p.state, p.grid_code,
       ST_AsGeoJSON(p.geom, {_PRECISION}) AS geometry
FROM city_part p WHERE p.grid_code = ANY(:grids) ORDER BY p.code LIMIT :limit
"""
_VERSIONS = ("SELECT layer, version FROM layer_version "
             "WHERE layer IN ('grids', 'areas', 'parts') ORDER BY layer")


def area_version(conn: Connection, scope: Scope) -> str:
    """The version of a user's area document: it changes when their grids, communities or
    parts change, or when their areas do."""
    versions = conn.execute(text(_VERSIONS)).all()
    key = json.dumps([[r.layer, int(r.version)] for r in versions]
                     + [scope.city_wide, sorted(scope.area_prefixes)])
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def area_document(conn: Connection, scope: Scope, max_grids: int,
                  max_parts: int = 20_000) -> dict[str, Any]:
    """The GeoJSON FeatureCollection of the scope's current grids, with the city parts in
    them as a second collection (``parts``), their bounding box and the version."""
    params: dict[str, Any] = {"limit": max_grids + 1}
    if scope.city_wide:
        where = "TRUE"
    elif scope.area_prefixes:
        where = "g.code LIKE ANY(:prefixes)"
        params["prefixes"] = [p + "%" for p in scope.area_prefixes]
    else:
        where = "FALSE"
    rows = conn.execute(text(_GRIDS % {"where": where}), params).mappings().all()
    truncated = len(rows) > max_grids
    rows = rows[:max_grids]
    grids = [r["code"] for r in rows]
    parts = conn.execute(text(_PARTS), {"grids": grids, "limit": max_parts + 1}
                         ).mappings().all() if grids else []
    features = [{"type": "Feature", "id": r["code"], "geometry": json.loads(r["geometry"]),
                 "properties": {"kind": "grid", "code": r["code"], "name": r["name"],
                                "community_code": r["community_code"],
                                "community_name": r["community_name"],
                                "workers": list(r["worker_codes"] or [])}}
                for r in rows]
    part_features = [{"type": "Feature", "id": r["code"],
                      "geometry": json.loads(r["geometry"]),
                      "properties": {"kind": "part", "code": r["code"],
                                     "category": "P" + r["class_code"], "name": r["name"],
                                     "state": r["state"], "grid_code": r["grid_code"]}}
                     for r in parts[:max_parts]]
    notes = []
    if truncated:
        notes.append(f"only the first {max_grids} grids (GRIDCORE_FIELD_AREA_MAX_GRIDS): "
                     "grids beyond them are resolved by the server")
    if len(parts) > max_parts:
        notes.append(f"only the first {max_parts} city parts")
    return {"type": "FeatureCollection", "version": area_version(conn, scope),
            "features": features, "bbox": _bbox(features),
            "parts": {"type": "FeatureCollection", "features": part_features},
            "areas": list(scope.area_prefixes), "city_wide": scope.city_wide,
            "truncated": truncated or len(parts) > max_parts, "notes": notes}


def _bbox(features: list[dict[str, Any]]) -> list[float] | None:
    xs: list[float] = []
    ys: list[float] = []

    def walk(coords: Any) -> None:
        if coords and isinstance(coords[0], (int, float)):
            xs.append(coords[0])
            ys.append(coords[1])
        else:
            for c in coords:
                walk(c)

    for f in features:
        walk(f["geometry"]["coordinates"])
    return [min(xs), min(ys), max(xs), max(ys)] if xs else None
