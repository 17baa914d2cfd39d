"""Addresses, named places and named streets from an OSM PBF extract (地址、地名、道路).

* an **address** is a node, a building (closed way) or a multipolygon with ``addr:street`` and
  ``addr:housenumber`` (a building's point is a point on its surface); its ``name``, if any,
  makes it findable by name too;
* a **named place** (POI) is a node or area with a ``name`` and a tag that makes it a place
  people name (amenity, shop, tourism, office, public transport, a named building…), without a
  house number;
* a **named street** is every way with ``highway`` and ``name``; ways of one name are one street
  (a multi-line), its ``name:*`` / ``alt_name`` variants are aliases of it.

Each feature keeps ``source='osm'``, ``source_id='node/<id>'`` (``way/…``, ``relation/…``) and its
tags, so a re-import updates rather than duplicates. What was left out (an ``addr:street`` without
a house number and without a name) is counted for the import's summary.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import osmium
import shapely

from layers.exchange.imports.report import reject_file

PLACE_KEYS = ("amenity", "shop", "tourism", "leisure", "historic", "office", "craft",
              "public_transport", "railway", "place", "building", "man_made", "healthcare",
              "sport", "club", "government", "emergency", "aeroway")
ALIAS_KEYS = ("alt_name", "old_name", "official_name", "short_name", "loc_name")
# The languages of names kept as aliases (a famous place has dozens; these are the ones a
# caller here types): the country's languages, English, Chinese.
ALIAS_LANGUAGES = ("fi", "sv", "en", "zh", "zh-Hans", "zh-Hant", "zh-CN")
NOT_STREETS = frozenset({"platform", "bus_stop", "elevator", "street_lamp", "traffic_signals",
                         "crossing", "stop", "give_way", "turning_circle", "milestone"})


def aliases(tags: dict[str, str]) -> list[str]:
    """Other names of a feature: ``name:<lang>`` of :data:`ALIAS_LANGUAGES`, ``alt_name``…
    (``;``-separated lists split)."""
    out: list[str] = []
    for key, value in tags.items():
        if key.removeprefix("name:") in ALIAS_LANGUAGES or key in ALIAS_KEYS:
            out.extend(v.strip() for v in value.split(";") if v.strip())
    main = tags.get("name", "")
    return [a for a in dict.fromkeys(out) if a != main]


@dataclass
class OsmAddresses:
    points: gpd.GeoDataFrame  # street, housenumber, name, aliases, postcode, city, source_id…
    streets: gpd.GeoDataFrame  # name, aliases, geometry (MultiLineString)
    skipped: dict[str, int] = field(default_factory=dict)


def _origin(obj: Any) -> str:
    if obj.is_node():
        return f"node/{obj.id}"
    if obj.is_way():
        return f"way/{obj.id}"
    if obj.is_area():
        return f"{'way' if obj.from_way() else 'relation'}/{obj.orig_id()}"
    return f"relation/{obj.id}"


def read_osm_addresses(path: str | Path) -> OsmAddresses:
    """Every address, named place and named street of the extract (see the module)."""
    path = Path(path)
    wkb = osmium.geom.WKBFactory()
    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    lines: dict[str, list[Any]] = defaultdict(list)
    street_aliases: dict[str, list[str]] = defaultdict(list)
    skipped: dict[str, int] = defaultdict(int)
    try:
        processor = (osmium.FileProcessor(str(path)).with_locations().with_areas()
                     .with_filter(osmium.filter.KeyFilter("addr:street", "name")))
        for found in processor:
            obj: Any = found  # a node, way, relation or area (pyosmium types them as a union)
            tags = {t.k: t.v for t in obj.tags}
            if obj.is_relation():
                continue  # its area (multipolygon) comes as an area
            if obj.is_way():
                if "highway" in tags and tags.get("name") and tags["highway"] not in NOT_STREETS:
                    try:
                        line = shapely.from_wkb(wkb.create_linestring(obj))
                    except (RuntimeError, osmium.InvalidLocationError):  # nodes outside the extract
                        skipped["street ways without coordinates"] += 1
                        continue
                    lines[tags["name"]].append(line)
                    street_aliases[tags["name"]].extend(aliases(tags))
                continue  # a closed way's building or place comes as an area
            street, number = tags.get("addr:street", ""), tags.get("addr:housenumber", "")
            name = tags.get("name", "")
            if not (street and number) and not (name and any(k in tags for k in PLACE_KEYS)):
                if street:
                    skipped["addr:street without a house number or a name"] += 1
                continue
            try:
                if obj.is_node():
                    if not obj.location.valid():
                        continue
                    geom = shapely.Point(obj.location.lon, obj.location.lat)
                else:
                    geom = shapely.point_on_surface(
                        shapely.from_wkb(wkb.create_multipolygon(obj)))
            except (RuntimeError, osmium.InvalidLocationError):
                skipped["areas that could not be assembled"] += 1
                continue
            rows.append({"street": street if number else "", "housenumber": number if street
                         else "", "name": name, "aliases": aliases(tags),
                         "postcode": tags.get("addr:postcode", ""),
                         "city": tags.get("addr:city", ""), "source_id": _origin(obj),
                         "attributes": tags})
            geoms.append(geom)
    except RuntimeError as exc:  # libosmium reports truncated / corrupt blocks this way
        raise reject_file(f"addresses file {path.name}",
                          f"cannot read OSM file {path.name} (truncated or corrupt?): {exc}"
                          ) from None
    points = gpd.GeoDataFrame(rows or None, geometry=geoms, crs=4326)
    streets = gpd.GeoDataFrame(
        {"name": list(lines), "aliases": [list(dict.fromkeys(street_aliases[n]))
                                          for n in lines]},
        geometry=[shapely.multilinestrings(parts) for parts in lines.values()],
        crs=4326)
    return OsmAddresses(points, streets, dict(skipped))
