"""Unit grids (单元网格): 15-digit codes = community code + 3-digit serial, in generations.

Importing grids creates a new grid generation (mapit's generations), never rewrites a row:

- current rows whose code is in the file, and current rows of every community the file covers,
  are closed (``gen_to`` = the new generation) — a community's grid set is replaced as a whole;
- except a current row whose code, name and geometry (vertices to 0.1 mm) are unchanged: it is
  kept as it is (still current, same id), so cases filed against it keep pointing at the live
  grid; a file that changes nothing at all opens no generation and writes nothing;
- every other row of the file is inserted with ``gen_from`` = the new generation.

Codes missing from the file are generated: the community code + a serial 001…999 in a stable
spatial order (centroids north to south, then west to east — reading order on the map), so the
same file always yields the same codes.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Connection, Engine, text

from gridcore.codes import AreaLevel, make_grid_code, validate_area_code, validate_grid_code
from gridcore.errors import InvalidCode
from layers.db.copy import escape_text, plain
from layers.exchange.imports.common import (
    attributes_json,
    flag_duplicates,
    require_columns,
    stage,
    text_column,
)
from layers.exchange.imports.geometry import OnInvalid, check_polygons, hex_ewkb, reading_order
from layers.exchange.imports.reading import crs_note, to_storage_crs
from layers.exchange.imports.report import ImportReport, Problems, refuse_database_errors
from spatial.measure import areas_m2

COLUMNS = ["code", "name", "community_code", "geom", "area_m2", "attributes", "gen_from"]
# Columns gridcore computes itself (present in its own exports): never copied into attributes.
DERIVED = ("community_code", "area_m2", "worker_codes", "gen_from", "gen_to")


def _generate_codes(communities: np.ndarray, geoms: np.ndarray, problems: Problems,
                    field_name: str) -> np.ndarray:
    codes = np.full(len(geoms), "", dtype=object)
    serial: dict[str, int] = {}
    for i in reading_order(geoms).tolist():
        community = communities[i]
        if not community:
            continue
        serial[community] = serial.get(community, 0) + 1
        try:
            codes[i] = make_grid_code(community, serial[community])
        except InvalidCode as exc:
            problems.add(int(i) + 1, field_name, str(exc))
    return codes


def _unchanged(conn: Connection, codes: np.ndarray, names: np.ndarray,
               geoms: np.ndarray) -> list[str]:
    """Codes whose current grid has the same name and geometry: the same vertices, whatever
    ring start or orientation, to 1e-9° (0.1 mm; a file written and read back by GDAL keeps
    its coordinates to that). Compared by shapely rather than PostGIS ``ST_Equals``, whose
    topology test raised "side location conflict" on two valid, nearly equal polygons."""
    rows = conn.execute(text(
        "SELECT code, name, ST_AsBinary(geom) FROM unit_grid WHERE gen_to IS NULL "
        "AND code = ANY(:codes)"), {"codes": [c for c in codes.tolist() if c]}).all()
    if not rows:
        return []
    stored = {r[0]: (r[1], r[2]) for r in rows}
    at = [i for i, c in enumerate(codes.tolist()) if c in stored and geoms[i] is not None]
    old = shapely.normalize(shapely.from_wkb([bytes(stored[codes[i]][1]) for i in at]))
    new = shapely.normalize(np.asarray([geoms[i] for i in at], dtype=object))
    same = shapely.equals_exact(old, new, tolerance=1e-9)
    return [str(codes[i]) for i, eq in zip(at, same, strict=True)
            if eq and stored[codes[i]][0] == names[i]]


@refuse_database_errors("grids")
def load_grids(engine: Engine, gdf: gpd.GeoDataFrame, *, code_field: str | None = None,
               name_field: str = "name", community_field: str | None = "community_code",
               on_invalid: OnInvalid = "repair", note: str = "") -> ImportReport:
    """Import unit grids as a new generation. Without ``code_field`` codes are generated."""
    what = "grids"
    gdf = to_storage_crs(gdf, what)
    if code_field is None or community_field in gdf.columns:
        require_columns(gdf, what, {"community-field": community_field})
    require_columns(gdf, what, {"code-field": code_field})
    report = ImportReport("grids", crs=crs_note(gdf))
    problems = Problems(what)
    codes = text_column(gdf, code_field)
    communities = text_column(gdf, community_field if community_field in gdf.columns else None)
    if code_field and community_field not in gdf.columns:
        communities = np.array([c[:12] for c in codes], dtype=object)
    names = text_column(gdf, name_field)
    for i, community in enumerate(communities):
        try:
            validate_area_code(community, AreaLevel.COMMUNITY)
        except InvalidCode as exc:
            problems.add(i + 1, community_field, str(exc))
            communities[i] = ""
            continue
        if code_field:
            try:
                validate_grid_code(codes[i], community)
            except InvalidCode as exc:
                problems.add(i + 1, code_field, str(exc))
    geoms = check_polygons(gdf.geometry.to_numpy(), on_invalid, problems, report)
    if code_field:
        flag_duplicates(codes, code_field, problems)
    else:
        codes = _generate_codes(communities, geoms, problems, community_field or "code")
    with engine.begin() as conn:
        known = {r[0] for r in conn.execute(text(
            "SELECT code FROM admin_area WHERE level = 'community'"))}
        for i, community in enumerate(communities):
            if community and community not in known:
                problems.add(i + 1, community_field or code_field,
                             f"community {community} does not exist (import it as an area "
                             "first)")
        problems.raise_if_any()
        conn.execute(text("LOCK TABLE grid_generation IN EXCLUSIVE MODE"))
        cols = [plain(codes), escape_text(names), plain(communities), list(hex_ewkb(geoms)),
                plain(np.asarray(areas_m2(geoms))),
                escape_text(attributes_json(gdf, [code_field, name_field, community_field,
                                                  *DERIVED])),
                ["0"] * len(codes)]  # the generation, once it is known to be needed
        stage(conn, "unit_grid", COLUMNS, cols, "stage_grid")
        kept = _unchanged(conn, codes, names, geoms)
        conn.execute(text("CREATE TEMP TABLE stage_kept ON COMMIT DROP AS "
                          "SELECT unnest(CAST(:kept AS text[])) AS code"), {"kept": kept})
        report.kept = conn.execute(text("DELETE FROM stage_grid WHERE code IN "
                                        "(SELECT code FROM stage_kept)")).rowcount
        closing = ("FROM unit_grid WHERE gen_to IS NULL AND (code IN (SELECT code FROM "
                   "stage_grid) OR community_code = ANY(:communities)) "
                   "AND code NOT IN (SELECT code FROM stage_kept)")
        params = {"communities": sorted(set(communities))}
        to_close = conn.execute(text(f"SELECT count(*) {closing}"), params).scalar_one()
        if not to_close and len(codes) == report.kept:
            # Nothing would change: no new generation, and the grid layer's version stays
            # (its triggers fire on any statement), so no index or tile is rebuilt for nothing.
            report.no_new_generation = True
            report.generation = conn.execute(text(
                "SELECT max(id) FROM grid_generation")).scalar_one()
            return report
        generation = conn.execute(text(
            "INSERT INTO grid_generation (id, note) SELECT coalesce(max(id), 0) + 1, :note "
            "FROM grid_generation RETURNING id"), {"note": note}).scalar_one()
        conn.execute(text("UPDATE stage_grid SET gen_from = :gen"), {"gen": generation})
        report.closed = conn.execute(text(
            f"UPDATE unit_grid SET gen_to = :gen WHERE id IN (SELECT id {closing})"),
            {"gen": generation, **params}).rowcount
        report.inserted = conn.execute(text(
            f"INSERT INTO unit_grid ({', '.join(COLUMNS)}) "
            f"SELECT {', '.join(COLUMNS)} FROM stage_grid")).rowcount
    report.generation = generation
    return report
