"""Geometry checks of an import: empty, wrong type, invalid (repair with make_valid or reject).

Polygons are stored as MultiPolygons; ``make_valid`` may return a collection with stray lines
or points from a collapsed ring, of which only the polygonal part is kept. Every repair is
reported by row so that the person who made the file can fix it at the source.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from layers.exchange.imports.report import ImportReport, Problems

OnInvalid = Literal["repair", "reject"]
SRID = 4326


def _polygonal(geom: shapely.Geometry) -> MultiPolygon | None:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if hasattr(geom, "geoms"):
        polys: list[Polygon] = []
        for part in geom.geoms:
            sub = _polygonal(part)
            if sub is not None:
                polys.extend(sub.geoms)
        return MultiPolygon(polys) if polys else None
    return None


def check_polygons(geoms: np.ndarray, on_invalid: OnInvalid, problems: Problems,
                   report: ImportReport) -> np.ndarray:
    """MultiPolygons (2D) for every row; bad rows go to ``problems``."""
    if on_invalid not in ("repair", "reject"):
        raise ValueError(f"on_invalid must be 'repair' or 'reject', not {on_invalid!r}")
    geoms = shapely.force_2d(np.asarray(geoms, dtype=object))
    out = np.empty(len(geoms), dtype=object)
    valid = shapely.is_valid(geoms)
    for i, geom in enumerate(geoms):
        row = i + 1
        if geom is None or geom.is_empty:
            problems.add(row, "geometry", "empty or missing geometry")
            continue
        if not isinstance(geom, (Polygon, MultiPolygon)):
            problems.add(row, "geometry", f"expected a polygon, got a {geom.geom_type}")
            continue
        if not valid[i]:
            reason = shapely.is_valid_reason(geom)
            if on_invalid == "reject":
                problems.add(row, "geometry", f"invalid polygon: {reason} (use --on-invalid "
                                              "repair to repair it with make_valid)")
                continue
            geom = _polygonal(shapely.make_valid(geom))
            if geom is None or geom.is_empty:
                problems.add(row, "geometry", f"invalid polygon ({reason}) has no area left "
                                              "after repair")
                continue
            report.repaired += 1
            report.repairs.append({"row": row, "reason": f"invalid polygon ({reason}) "
                                                         "repaired with make_valid"})
        out[i] = _polygonal(geom)
    return out


def check_points_or_polygons(geoms: np.ndarray, on_invalid: OnInvalid, problems: Problems,
                             report: ImportReport) -> np.ndarray:
    """Points stay points; polygons are checked as in ``check_polygons``."""
    geoms = shapely.force_2d(np.asarray(geoms, dtype=object))
    is_point = shapely.get_type_id(geoms) == 0
    out = np.empty(len(geoms), dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.flatnonzero(missing):
        problems.add(int(i) + 1, "geometry", "empty or missing geometry")
    out[is_point] = geoms[is_point]
    others = np.flatnonzero(~is_point & ~missing)
    if len(others):
        sub, sub_report = Problems(problems.what), ImportReport(report.layer)
        fixed = check_polygons(geoms[others], on_invalid, sub, sub_report)
        for item in sub.items + sub_report.repairs:
            item["row"] = int(others[item["row"] - 1]) + 1
        problems.items.extend(sub.items)
        report.repaired += sub_report.repaired
        report.repairs.extend(sub_report.repairs)
        out[others] = fixed
    return out


def reading_order(geoms: np.ndarray) -> np.ndarray:
    """Row indices of the present geometries in map reading order (centroids north to south,
    then west to east): generated codes follow it, so the same file yields the same codes."""
    geoms = np.asarray(geoms, dtype=object)
    ok = np.flatnonzero(~shapely.is_missing(geoms))
    centres = shapely.centroid(geoms[ok])
    cx, cy = shapely.get_x(centres), shapely.get_y(centres)
    return ok[np.lexsort((np.round(cx, 7), -np.round(cy, 7)))]


def hex_ewkb(geoms: np.ndarray) -> np.ndarray:
    """Hex EWKB with SRID 4326, the text form PostGIS reads straight into a geometry column."""
    return shapely.to_wkb(shapely.set_srid(np.asarray(geoms, dtype=object), SRID), hex=True,
                          include_srid=True)
