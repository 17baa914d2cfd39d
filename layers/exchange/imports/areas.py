"""Administrative areas (行政区划): districts (6 digits), streets (9), communities (12).

Codes are validated for their level and against their parent (the parent code must be the
prefix and must exist, in the database or earlier/later in the same file). Existing codes are
updated in place (areas carry no generations; unit grids do), new ones inserted.

Real boundary files rarely carry GB/T 2260 codes: ``parent`` names the area every row lies
under (a street for communities, a district for streets, or a 4-digit prefecture prefix for
districts), and ``generate_codes`` numbers the rows without a code under it, in map reading
order, after the largest code stored or given under that parent.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from sqlalchemy import Connection, Engine, text

from gridcore.codes import (
    AREA_CODE_LENGTH,
    PARENT_LEVEL,
    AreaLevel,
    area_level_of,
    level_below,
    make_area_code,
    validate_area_code,
)
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
from layers.exchange.imports.report import (
    ImportReport,
    Problems,
    refuse_database_errors,
    reject_file,
)
from spatial.measure import areas_m2

COLUMNS = ["code", "level", "name", "parent_code", "geom", "area_m2", "attributes"]


@refuse_database_errors("areas")
def load_areas(engine: Engine, gdf: gpd.GeoDataFrame, *, level: str | None = None,
               code_field: str = "code", name_field: str = "name",
               parent_field: str | None = "parent_code",
               on_invalid: OnInvalid = "repair", parent: str | None = None,
               generate_codes: bool = False) -> ImportReport:
    """Insert or update areas. ``level`` fixes the level of every row; without it each row's
    level follows from its code length. Without a parent column the parent is the code prefix,
    or ``parent`` when given. ``generate_codes``: rows without a code get one under
    ``parent``."""
    what = "areas"
    gdf = to_storage_crs(gdf, what)
    require_columns(gdf, what, {"name-field": name_field})
    if not generate_codes or code_field in gdf.columns:
        require_columns(gdf, what, {"code-field": code_field})
    fixed_level = AreaLevel(level) if level else None
    codes = text_column(gdf, code_field)
    names = text_column(gdf, name_field)
    has_parent = bool(parent_field) and parent_field in gdf.columns
    parents = text_column(gdf, parent_field if has_parent else None)
    report = ImportReport("areas", crs=crs_note(gdf))
    problems = Problems(what)
    if parent is not None or generate_codes:
        fixed_level = _under_parent(parent, fixed_level, what)
        if fixed_level is not AreaLevel.DISTRICT:
            parents[parents == ""] = parent
    geoms = check_polygons(gdf.geometry.to_numpy(), on_invalid, problems, report)
    levels: list[str] = []
    if generate_codes and parent is not None and (codes == "").any():
        with engine.connect() as conn:
            _generate(conn, codes, geoms, parent, problems, code_field)
    for i, code in enumerate(codes):
        row = i + 1
        try:
            lvl = fixed_level or area_level_of(code)
            up = parents[i] or None
            above = PARENT_LEVEL[lvl]
            if up is None and above is not None:
                up = code[: AREA_CODE_LENGTH[above]]
            validate_area_code(code, lvl, up)
            if parent is not None and not code.startswith(parent):
                raise InvalidCode(f"{lvl.value} code {code!r} does not lie under --parent "
                                  f"{parent}", code=code)
            parents[i] = up or ""
            levels.append(lvl.value)
        except InvalidCode as exc:
            problems.add(row, code_field, str(exc))
            levels.append("")
        if not names[i]:
            problems.add(row, name_field, "empty name")
    flag_duplicates(codes, code_field, problems)
    with engine.begin() as conn:
        known = {code: level for code, level in conn.execute(text(
            "SELECT code, level FROM admin_area"))}
        in_file = {c: lv for c, lv in zip(codes, levels, strict=True) if lv}
        for i, code in enumerate(codes):
            if not levels[i]:
                continue
            if code in known and known[code] != levels[i]:
                problems.add(i + 1, code_field, f"area {code} exists as a {known[code]}, "
                                                f"not a {levels[i]}")
            up = parents[i]
            if up and up not in known and up not in in_file:
                problems.add(i + 1, parent_field or code_field,
                             f"parent area {up} of {code} does not exist (neither in the "
                             "database nor in this file)")
        problems.raise_if_any()
        cols = [plain(codes), levels, escape_text(names),
                [p or "\\N" for p in parents], list(hex_ewkb(geoms)),
                plain(np.asarray(areas_m2(geoms))),
                escape_text(attributes_json(gdf, [code_field, name_field, parent_field,
                                                  "level", "area_m2"]))]
        stage(conn, "admin_area", COLUMNS, cols, "stage_area")
        rows = conn.execute(text(
            "INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2, attributes) "
            "SELECT code, level, name, parent_code, geom, area_m2, attributes FROM stage_area "
            "ON CONFLICT (code) DO UPDATE SET name = excluded.name, "
            "parent_code = excluded.parent_code, geom = excluded.geom, "
            "area_m2 = excluded.area_m2, attributes = excluded.attributes, updated_at = now() "
            "RETURNING (xmax = 0) AS inserted")).scalars().all()
    report.inserted = sum(1 for r in rows if r)
    report.updated = len(rows) - report.inserted
    return report


def _under_parent(parent: str | None, level: AreaLevel | None, what: str) -> AreaLevel:
    """The level of the rows under ``parent`` (which ``--generate-codes`` needs)."""
    if parent is None:
        raise reject_file(what, "--generate-codes needs --parent CODE: the street (for "
                                "communities), district (for streets) or 4-digit prefecture "
                                "prefix (for districts) the rows lie under", "parent")
    try:
        below = level_below(parent)
    except InvalidCode as exc:
        raise reject_file(what, str(exc), "parent") from None
    if level is not None and level is not below:
        raise reject_file(what, f"--level {level.value} does not fit --parent {parent} "
                                f"(areas under it are {below.value}s)", "level")
    return below


def _generate(conn: Connection, codes: np.ndarray, geoms: np.ndarray, parent: str,
              problems: Problems, field_name: str) -> None:
    """Codes under ``parent`` for the rows without one, in reading order, after the largest
    code stored or given under it."""
    length = AREA_CODE_LENGTH[level_below(parent)]
    stored = conn.execute(text(
        "SELECT max(right(code, :w)::int) FROM admin_area WHERE length(code) = :n "
        "AND left(code, :p) = :parent"),
        {"w": length - len(parent), "n": length, "p": len(parent), "parent": parent}
    ).scalar() or 0
    given = [int(c[len(parent):]) for c in codes
             if len(c) == length and c.startswith(parent) and c[len(parent):].isdigit()]
    serial = max([stored, *given])
    for i in reading_order(geoms).tolist():
        if codes[i]:
            continue
        serial += 1
        try:
            codes[i] = make_area_code(parent, serial)
        except InvalidCode as exc:
            problems.add(i + 1, field_name, str(exc))
            return
