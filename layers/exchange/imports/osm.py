"""City parts (部件) from an OSM PBF extract: tagged nodes mapped to part classes.

The mapping is data (``gridcore/data/osm_part_map.csv`` via ``OsmPartMapping``). Each part keeps
its full OSM tags in ``attributes`` and is keyed ``source='osm'``, ``source_id='node/<id>'``, so
importing the same extract again updates the same rows instead of adding copies.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import geopandas as gpd
import osmium
import shapely

from gridcore.osm_mapping import OsmPartMapping
from layers.exchange.imports.report import reject_file


def read_osm_parts(path: str | Path, mapping: OsmPartMapping | None = None) -> gpd.GeoDataFrame:
    mapping = mapping or OsmPartMapping.default()
    path = Path(path)
    ids: list[int] = []
    lons: list[float] = []
    lats: list[float] = []
    classes: list[str] = []
    names: list[str] = []
    tags_out: list[dict[str, str]] = []
    try:
        processor = (osmium.FileProcessor(str(path), osmium.osm.NODE)
                     .with_filter(osmium.filter.KeyFilter(*sorted(mapping.keys))))
        for found in processor:
            node = cast(osmium.osm.Node, found)  # the filter passes nodes only
            tags = {t.k: t.v for t in node.tags}
            class_code = mapping.class_of(tags)
            if class_code is None or not node.location.valid():
                continue
            ids.append(node.id)
            lons.append(node.location.lon)
            lats.append(node.location.lat)
            classes.append(class_code)
            names.append(tags.get("name", ""))
            tags_out.append(tags)
    except RuntimeError as exc:  # libosmium reports truncated / corrupt blocks this way
        raise reject_file(f"parts file {path.name}",
                          f"cannot read OSM file {path.name} (truncated or corrupt?): {exc}"
                          ) from None
    return gpd.GeoDataFrame(
        {"class_code": classes, "name": names, "source": "osm",
         "source_id": [f"node/{i}" for i in ids], "attributes": tags_out},
        geometry=shapely.points(lons, lats), crs=4326)
