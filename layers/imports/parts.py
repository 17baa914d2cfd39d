"""City parts (部件): 16-digit codes = district 6 + class 4 + serial 6, points only.

The bulk path: every check is vectorised (pandas / shapely / h3ronpy), new rows go straight into
``city_part`` by COPY, and only rows that already exist (same code, or same ``source`` +
``source_id`` — how an OSM re-import finds its rows) go through a staging table and one
set-based UPDATE. Codes missing from the file are generated: district + class + a serial
continuing after the largest serial stored for that district and class. The district comes from
``district`` when given, else from the unit grid the part lies in.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Engine, text

from gridcore.taxonomy import Taxonomy
from layers.imports.common import attributes_json, flag_duplicates, require_columns, stage
from layers.imports.copy import copy_columns, escape_text, plain
from layers.imports.geometry import check_points_or_polygons, hex_ewkb
from layers.imports.locate import grid_codes_of
from layers.imports.report import ImportReport, Problems, reject_file
from layers.settings import DatabaseSettings
from layers.tables import PART_STATES
from spatial.h3cells import cells as h3_cells

COLUMNS = ["code", "class_code", "name", "state", "competent_dept", "owner_dept",
           "maintenance_dept", "grid_code", "h3", "source", "source_id", "photo_url",
           "attributes", "geom"]
DEPT_FIELDS = ("competent_dept", "owner_dept", "maintenance_dept")
UPDATED = [c for c in COLUMNS if c != "code"]
# Columns gridcore computes itself (present in its own exports): never copied into attributes.
DERIVED = ("grid_code", "h3", "recorded_on", "changed_on")


def _strings(df: pd.DataFrame, column: str | None, default: str = "") -> pd.Series:
    if column is None or column not in df.columns:
        return pd.Series(np.full(len(df), default, dtype=object))
    return df[column].astype(object).fillna("").astype(str).str.strip().reset_index(drop=True)


def _report_rows(problems: Problems, mask: np.ndarray, field_name: str, reason) -> None:
    for i in np.flatnonzero(mask):
        problems.add(int(i) + 1, field_name, reason(int(i)))


def load_parts(engine: Engine, gdf: gpd.GeoDataFrame, *, code_field: str | None = "code",
               class_field: str = "class_code", name_field: str | None = "name",
               state_field: str | None = "state", district: str | None = None,
               source: str | None = None, source_id_field: str | None = "source_id",
               photo_field: str | None = "photo_url", attributes_field: str | None = "attributes",
               h3_resolution: int | None = None, taxonomy: Taxonomy | None = None
               ) -> ImportReport:
    """Insert new city parts and update the ones already stored (by code or source id)."""
    what = "parts"
    require_columns(gdf, what, {"class-field": class_field})
    report = ImportReport("parts")
    problems = Problems(what)
    n = len(gdf)
    taxonomy = taxonomy or Taxonomy.default()
    known_classes = {c.code for c in taxonomy.parts()}
    classes = _strings(gdf, class_field)
    unknown = ~classes.isin(known_classes).to_numpy()
    _report_rows(problems, unknown, class_field, lambda i: (
        f"unknown city-part class {classes[i]!r} (not in the taxonomy, "
        "gridcore/data/part_classes.csv)"))
    codes = _strings(gdf, code_field)
    given = (codes != "").to_numpy()
    well_formed = codes.str.fullmatch(r"\d{16}").to_numpy()
    _report_rows(problems, given & ~well_formed, code_field or "code", lambda i: (
        f"city part code {codes[i]!r} has {len(codes[i])} characters; it must have 16 digits"
        if len(codes[i]) != 16 else f"city part code {codes[i]!r} must contain digits only"))
    ok_code = given & well_formed
    _report_rows(problems, ok_code & (codes.str[10:] == "000000").to_numpy(), code_field or "code",
                 lambda i: f"city part code {codes[i]} has serial 000000 (1–999999 allowed)")
    _report_rows(problems, ok_code & ~unknown & (codes.str[6:10] != classes).to_numpy(),
                 code_field or "code", lambda i: (
                     f"city part code {codes[i]} holds class {codes[i][6:10]}, but the row's "
                     f"class is {classes[i]}"))
    flag_duplicates(codes.to_numpy(dtype=object), code_field or "code", problems)
    states = _strings(gdf, state_field, "intact").replace("", "intact")
    _report_rows(problems, ~states.isin(PART_STATES).to_numpy(), state_field or "state",
                 lambda i: f"state {states[i]!r} must be one of {', '.join(PART_STATES)}")
    sources = (pd.Series(np.full(n, source, dtype=object)) if source
               else _strings(gdf, "source", ""))
    source_ids = _strings(gdf, source_id_field)
    keyed = (source_ids != "").to_numpy()
    if keyed.any():
        keys = (sources + "\x1f" + source_ids).to_numpy(dtype=object)
        keys[~keyed] = ""
        flag_duplicates(keys, source_id_field, problems)
    geoms = check_points_or_polygons(gdf.geometry.to_numpy(), "reject", problems, report,
                                     points_only=True)
    with engine.begin() as conn:
        depts = {f: _strings(gdf, f) for f in DEPT_FIELDS if f in gdf.columns}
        if depts:
            stored = {r[0] for r in conn.execute(text("SELECT code FROM department"))}
            for f, values in depts.items():
                _report_rows(problems, ((values != "") & ~values.isin(stored)).to_numpy(), f,
                             lambda i, v=values: f"department {v[i]!r} does not exist")
        if problems:
            problems.raise_if_any()
        grid_codes = grid_codes_of(conn, geoms)
        existing = np.full(n, None, dtype=object)
        if keyed.any():
            stored_keys = dict(conn.execute(text(
                "SELECT source || chr(31) || source_id, code FROM city_part "
                "WHERE source_id IS NOT NULL AND source = ANY(:s)"),
                {"s": sorted(set(sources[keyed]))}).all())
            existing = pd.Series(keys).map(stored_keys).to_numpy(dtype=object)
            clash = given & pd.notna(existing) & (codes.to_numpy() != existing)
            _report_rows(problems, clash, code_field or "code", lambda i: (
                f"{sources[i]} {source_ids[i]} is already stored as {existing[i]}, "
                f"not {codes[i]}"))
        if given.any():
            stored_codes = {r[0] for r in conn.execute(text(
                "SELECT code FROM city_part WHERE code = ANY(:c)"),
                {"c": codes[given].tolist()})}
            hit = given & codes.isin(stored_codes).to_numpy()
            existing[hit] = codes[hit]
        todo = ~given & pd.isna(existing)
        if todo.any():
            prefixes = _district_prefixes(district, grid_codes, classes, todo, problems,
                                          code_field or "code")
            problems.raise_if_any()
            codes = codes.copy()
            codes[todo] = _next_codes(conn, prefixes, codes[given])
        problems.raise_if_any()
        codes = codes.where(pd.isna(existing), existing)
        is_update = pd.notna(existing)
        lon, lat = shapely.get_x(geoms), shapely.get_y(geoms)
        resolution = h3_resolution or DatabaseSettings().h3_resolution
        cols = [plain(codes), plain(classes), escape_text(_strings(gdf, name_field)),
                plain(states)] + [plain(_strings(gdf, f)) if f in gdf.columns
                                  else [copy_null] * n for f in DEPT_FIELDS]
        cols[4:7] = [[v or copy_null for v in c] for c in cols[4:7]]
        cols += [plain(grid_codes), list(h3_cells(lon, lat, resolution)), escape_text(sources),
                 [v or copy_null for v in escape_text(source_ids)],
                 [v or copy_null for v in escape_text(_strings(gdf, photo_field))],
                 escape_text(attributes_json(gdf, [code_field, class_field, name_field,
                                                   state_field, source_id_field, photo_field,
                                                   "source", *DEPT_FIELDS, *DERIVED],
                                                  attributes_field)),
                 list(hex_ewkb(geoms))]
        new_idx = np.flatnonzero(~is_update)
        if len(new_idx) == n:
            copy_columns(conn, "city_part", COLUMNS, lambda a, b: [c[a:b] for c in cols], n)
        elif len(new_idx):
            sub = [[c[i] for i in new_idx] for c in cols]
            copy_columns(conn, "city_part", COLUMNS, lambda a, b: [c[a:b] for c in sub],
                         len(new_idx))
        upd_idx = np.flatnonzero(is_update)
        if len(upd_idx):
            stage(conn, "city_part", COLUMNS, [[c[i] for i in upd_idx] for c in cols],
                  "stage_part")
            sets = ", ".join(f"{c} = s.{c}" for c in UPDATED)
            conn.execute(text(f"UPDATE city_part p SET {sets}, changed_on = current_date "
                              "FROM stage_part s WHERE p.code = s.code"))
    report.inserted, report.updated = len(new_idx), len(upd_idx)
    return report


copy_null = "\\N"


def _district_prefixes(district: str | None, grid_codes: np.ndarray, classes: pd.Series,
                       todo: np.ndarray, problems: Problems, field_name: str) -> pd.Series:
    if district is not None:
        if len(district) != 6 or not district.isdigit():
            problems.add(None, "district", f"district {district!r} must be 6 digits")
            return pd.Series([], dtype=object)
        counties = pd.Series(np.full(len(classes), district, dtype=object))
    else:
        counties = pd.Series(grid_codes).str[:6]
        _report_rows(problems, todo & pd.isna(counties).to_numpy(), field_name, lambda i: (
            "no code in the file and the point lies in no unit grid, so its district is "
            "unknown: give --district"))
    return (counties + classes)[todo]


def _next_codes(conn, prefixes: pd.Series, given_codes: pd.Series) -> np.ndarray:  # noqa: ANN001
    """district+class prefix → serials continuing after the largest stored (or given) one."""
    wanted = sorted(set(prefixes))
    stored = dict(conn.execute(text(
        "SELECT left(code, 10), max(right(code, 6)::int) FROM city_part "
        "WHERE left(code, 10) = ANY(:p) GROUP BY 1"), {"p": wanted}).all())
    for code in given_codes:
        stored[code[:10]] = max(stored.get(code[:10], 0), int(code[10:]))
    base = prefixes.map(lambda p: stored.get(p, 0)).to_numpy()
    serial = base + prefixes.groupby(prefixes).cumcount().to_numpy() + 1
    if (serial > 999_999).any():
        raise reject_file("parts", "more than 999999 city parts of one class in one district "
                                   f"({prefixes[serial > 999_999].iloc[0]})", "code")
    return (prefixes + pd.Series(serial, index=prefixes.index).map("{:06d}".format)).to_numpy()
