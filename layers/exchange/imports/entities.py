"""9+X governance entities (综治, GB/T 31000): area, type, name, point or polygon, sensitivity.

Columns named in ``restricted_fields`` (names, ID and phone numbers of people…) go to
``restricted_attributes``, which no ordinary query or export returns; every other unmapped
column goes to ``attributes``. Codes missing from the file are generated as
``<area>-<serial>`` continuing after the largest stored serial of that area.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
from sqlalchemy import Engine, text

from layers.db.copy import escape_text, plain
from layers.exchange.imports.common import (
    attributes_json,
    flag_duplicates,
    require_columns,
    stage,
    text_column,
)
from layers.exchange.imports.geometry import OnInvalid, check_points_or_polygons, hex_ewkb
from layers.exchange.imports.locate import DEFAULT_SNAP_M, grids_of
from layers.exchange.imports.reading import crs_note, to_storage_crs
from layers.exchange.imports.report import (
    ImportReport,
    Problems,
    refuse_database_errors,
    reject_file,
)
from layers.schema.city import SENSITIVITIES

COLUMNS = ["code", "area", "type", "name", "grid_code", "sensitivity", "attributes",
           "restricted_attributes", "source", "geom"]


@refuse_database_errors("entities")
def load_entities(engine: Engine, gdf: gpd.GeoDataFrame, *, code_field: str | None = "code",
                  area_field: str = "area", type_field: str = "type",
                  name_field: str | None = "name", sensitivity_field: str | None = "sensitivity",
                  restricted_fields: Sequence[str] = (), default_sensitivity: str = "internal",
                  source: str = "", on_invalid: OnInvalid = "repair",
                  snap_m: float = DEFAULT_SNAP_M) -> ImportReport:
    """Insert or update entities; each gets the grid it lies in, or snaps to within
    ``snap_m`` (resolve's rule, ``GRIDCORE_RESOLVE_SNAP_M``)."""
    what = "entities"
    gdf = to_storage_crs(gdf, what)
    require_columns(gdf, what, {"area-field": area_field, "type-field": type_field})
    for f in restricted_fields:
        require_columns(gdf, what, {"restricted-fields": f})
    report = ImportReport("entities", crs=crs_note(gdf))
    problems = Problems(what)
    areas = text_column(gdf, area_field)
    types = text_column(gdf, type_field)
    codes = text_column(gdf, code_field if code_field in gdf.columns else None)
    sens = text_column(gdf, sensitivity_field if sensitivity_field in gdf.columns else None,
                       default_sensitivity)
    for i in range(len(gdf)):
        if not (1 <= len(areas[i]) <= 8) or not areas[i].replace("_", "").isalnum():
            problems.add(i + 1, area_field, f"area {areas[i]!r} must be 1–8 letters or digits "
                                            "(the nine GB/T 31000 areas or a local X)")
        if not types[i]:
            problems.add(i + 1, type_field, "empty type")
        sens[i] = sens[i] or default_sensitivity
        if sens[i] not in SENSITIVITIES:
            problems.add(i + 1, sensitivity_field, f"sensitivity {sens[i]!r} must be one of "
                                                   f"{', '.join(SENSITIVITIES)}")
        if len(codes[i]) > 40:
            problems.add(i + 1, code_field, f"code {codes[i]!r} is longer than 40 characters")
    flag_duplicates(codes, code_field or "code", problems)
    geoms = check_points_or_polygons(gdf.geometry.to_numpy(), on_invalid, problems, report)
    used = [code_field, area_field, type_field, name_field, sensitivity_field, "grid_code",
            "source"]
    attrs = attributes_json(gdf, [*used, *restricted_fields])
    restricted = (attributes_json(gdf, [], None, only=list(restricted_fields))
                  if restricted_fields else ["{}"] * len(gdf))
    with engine.begin() as conn:
        problems.raise_if_any()
        missing = np.flatnonzero(codes == "")
        if len(missing):
            stored: dict[str, int] = {area: last for area, last in conn.execute(text(
                "SELECT area, max(substring(code from '-([0-9]+)$')::bigint) "
                "FROM governance_entity GROUP BY area"))}
            for i in missing.tolist():
                stored[areas[i]] = (stored.get(areas[i]) or 0) + 1
                codes[i] = f"{areas[i]}-{stored[areas[i]]:07d}"
        located = grids_of(conn, geoms, snap_m)
        report.snapped = located.snap_notes(snap_m)
        if len(set(codes)) != len(codes):
            raise reject_file(what, "generated codes collide with codes given in the file")
        cols = [plain(codes), plain(areas), escape_text(types),
                escape_text(text_column(gdf, name_field)), plain(located.grid_codes()),
                plain(sens), escape_text(attrs), escape_text(restricted),
                [source] * len(codes), list(hex_ewkb(geoms))]
        stage(conn, "governance_entity", COLUMNS, cols, "stage_entity")
        sets = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "code")
        rows = conn.execute(text(
            f"INSERT INTO governance_entity ({', '.join(COLUMNS)}) "
            f"SELECT {', '.join(COLUMNS)} FROM stage_entity ON CONFLICT (code) DO UPDATE "
            f"SET {sets}, updated_at = now() RETURNING (xmax = 0)")).scalars().all()
    report.inserted = sum(1 for r in rows if r)
    report.updated = len(rows) - report.inserted
    return report
