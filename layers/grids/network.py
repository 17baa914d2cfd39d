"""Line networks that unit grids follow (roads, rivers, walls), read from an OSM PBF or any
line file (GeoPackage, GeoJSON, Shapefile…), in WGS 84.

From OSM, GDAL's OSM driver (layer ``lines``) gives the ways with their ``highway``,
``waterway`` and ``barrier`` tags. Only physical edges a grid worker can see on the ground are
kept: roads for vehicles and pedestrian streets, watercourses, walls. Footpaths, steps,
platforms and fences are left out — they cut parks and courtyards into slivers.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio

from gridcore.errors import ValidationError

ROADS = frozenset({
    "motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential",
    "living_street", "pedestrian", "service", "motorway_link", "trunk_link", "primary_link",
    "secondary_link", "tertiary_link"})
MAJOR_ROADS = frozenset({"motorway", "trunk", "primary", "secondary", "motorway_link",
                         "trunk_link", "primary_link", "secondary_link"})
WATERWAYS = frozenset({"river", "canal", "stream", "drain", "ditch"})
BARRIERS = frozenset({"wall", "city_wall", "retaining_wall"})
LINEAR = ("LineString", "MultiLineString", "Polygon", "MultiPolygon")


def read_osm_lines(path: str | Path) -> gpd.GeoDataFrame:
    """Every OSM way of the PBF as a line, with ``name``, ``highway``, ``waterway``,
    ``barrier``."""
    try:
        frame = pyogrio.read_dataframe(Path(path), layer="lines",
                                       columns=["osm_id", "name", "highway", "waterway",
                                                "barrier"])
    except Exception as exc:  # GDAL raises several classes for the same "unreadable file"
        raise ValidationError(f"cannot read OSM lines from {Path(path).name}: {exc}",
                              path=str(path)) from None
    return frame.set_crs(4326, allow_override=True)


def edges_of(lines: gpd.GeoDataFrame, roads: frozenset[str] = ROADS) -> gpd.GeoDataFrame:
    """The ways that are physical edges: roads of ``roads``, watercourses, walls."""
    mask = lines["highway"].isin(roads) | lines["waterway"].isin(WATERWAYS) \
        | lines["barrier"].isin(BARRIERS)
    return lines[mask].reset_index(drop=True)


def read_network(path: str | Path, crs: str | None = None,
                 layer: str | None = None) -> gpd.GeoDataFrame:
    """The line network of a file: OSM PBF (edges filtered by tag) or any line file (all of
    its linear features), in WGS 84."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"network file {path} does not exist", path=str(path))
    if path.suffix.lower() == ".pbf":
        return edges_of(read_osm_lines(path))
    try:
        frame = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:
        raise ValidationError(f"cannot read network file {path.name}: {exc}",
                              path=str(path)) from None
    if frame.crs is None:
        if crs is None:
            raise ValidationError(f"network file {path.name} declares no coordinate reference "
                                  "system; give it with --crs", path=str(path), field="crs")
        frame = frame.set_crs(crs)
    frame = frame[frame.geometry.notna() & frame.geom_type.isin(LINEAR)]
    if frame.empty:
        raise ValidationError(f"network file {path.name} holds no lines or polygons",
                              path=str(path))
    return frame.to_crs(4326).reset_index(drop=True)
