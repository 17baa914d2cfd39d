"""Limits on request geometry (输入加固): GeoJSON complexity and coordinate sanity.

Call ``check_geojson`` on any GeoJSON a client sends (a point of a case, a polygon filter)
before it reaches shapely or PostGIS: a polygon with millions of vertices or a collection
nested a thousand deep costs the server, not the client. The walk is iterative so a hostile
nesting depth cannot exhaust the Python stack either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gridcore.errors import PayloadTooLarge, ValidationError

GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                  "MultiPolygon", "GeometryCollection"}


@dataclass(frozen=True)
class GeoJsonLimits:
    max_vertices: int = 10_000
    max_depth: int = 8            # nesting of arrays/objects below the geometry
    max_features: int = 1_000
    max_parts: int = 500          # rings / lines / polygons / collection members


def check_coordinate(lon: Any, lat: Any, where: str = "coordinates") -> tuple[float, float]:
    """A finite lon/lat pair on the globe (WGS 84 order: longitude first)."""
    try:
        x, y = float(lon), float(lat)
    except (TypeError, ValueError):
        raise ValidationError(f"{where}: coordinates must be numbers", field=where) from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValidationError(f"{where}: coordinates must be finite", field=where)
    if not (-180.0 <= x <= 180.0 and -90.0 <= y <= 90.0):
        raise ValidationError(
            f"{where}: ({x}, {y}) is not a longitude/latitude pair (lon in [-180, 180], "
            f"lat in [-90, 90]; GeoJSON order is lon, lat)", field=where, lon=x, lat=y)
    return x, y


def _count_positions(coords: Any, limits: GeoJsonLimits, where: str) -> int:
    """Count positions in a nested coordinate array, checking each and the depth."""
    count = 0
    stack: list[tuple[Any, int]] = [(coords, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.max_depth:
            raise ValidationError(f"{where}: coordinates nested deeper than "
                                  f"{limits.max_depth}", field=where, max_depth=limits.max_depth)
        if not isinstance(node, list):
            raise ValidationError(f"{where}: coordinates must be arrays", field=where)
        if node and not isinstance(node[0], list):
            if len(node) not in (2, 3):
                raise ValidationError(f"{where}: a position has 2 or 3 numbers", field=where)
            check_coordinate(node[0], node[1], where)
            count += 1
            if count > limits.max_vertices:
                raise PayloadTooLarge(f"{where}: more than {limits.max_vertices} vertices",
                                      field=where, max_vertices=limits.max_vertices)
            continue
        holds_parts = bool(node) and bool(node[0]) and isinstance(node[0][0], list)
        if holds_parts and len(node) > limits.max_parts:
            raise PayloadTooLarge(f"{where}: more than {limits.max_parts} parts", field=where,
                                  max_parts=limits.max_parts)
        stack.extend((child, depth + 1) for child in node)
    return count


def check_geojson(obj: Any, limits: GeoJsonLimits | None = None,
                  where: str = "geometry") -> int:
    """Validate a GeoJSON geometry, Feature or FeatureCollection against ``limits``; return
    the number of vertices. Raises ``ValidationError`` (malformed) or ``PayloadTooLarge``."""
    limits = limits or GeoJsonLimits()
    total = 0
    stack: list[tuple[Any, int, str]] = [(obj, 0, where)]
    while stack:
        node, depth, path = stack.pop()
        if depth > limits.max_depth:
            raise ValidationError(f"{path}: GeoJSON nested deeper than {limits.max_depth}",
                                  field=path, max_depth=limits.max_depth)
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            raise ValidationError(f"{path}: not a GeoJSON object (needs a 'type')", field=path)
        kind = node["type"]
        if kind == "FeatureCollection":
            features = node.get("features")
            if not isinstance(features, list):
                raise ValidationError(f"{path}: 'features' must be an array", field=path)
            if len(features) > limits.max_features:
                raise PayloadTooLarge(f"{path}: more than {limits.max_features} features",
                                      field=path, max_features=limits.max_features)
            stack.extend((f, depth + 1, f"{path}.features[{i}]")
                         for i, f in enumerate(features))
        elif kind == "Feature":
            if node.get("geometry") is not None:
                stack.append((node["geometry"], depth + 1, f"{path}.geometry"))
        elif kind == "GeometryCollection":
            members = node.get("geometries")
            if not isinstance(members, list):
                raise ValidationError(f"{path}: 'geometries' must be an array", field=path)
            if len(members) > limits.max_parts:
                raise PayloadTooLarge(f"{path}: more than {limits.max_parts} geometries",
                                      field=path, max_parts=limits.max_parts)
            stack.extend((g, depth + 1, f"{path}.geometries[{i}]")
                         for i, g in enumerate(members))
        elif kind in GEOMETRY_TYPES:
            total += _count_positions(node.get("coordinates"), limits, path)
            if total > limits.max_vertices:
                raise PayloadTooLarge(f"{where}: more than {limits.max_vertices} vertices",
                                      field=where, max_vertices=limits.max_vertices)
        else:
            raise ValidationError(f"{path}: unknown GeoJSON type {kind!r}", field=path)
    return total
