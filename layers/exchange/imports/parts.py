"""City parts (部件): 16-digit codes = district 6 + class 4 + serial 6, points only.

The bulk path: every check is vectorised (pandas / shapely / h3ronpy / pyarrow), new rows go
straight into ``city_part`` by a columnar binary COPY (``layers.db.bulk``; big loads
rebuild the indexes and keys once instead of maintaining them row by row, and write their rows
in grid then code order), and only rows that already exist (same code, or same ``source`` +
``source_id`` — how an OSM re-import finds its rows) go through a staging table and one
set-based UPDATE. Codes missing from the file are generated:
district + class + a serial continuing after the largest serial stored for that district and
class, in file order. The district is the one of the unit grid the part lies in (or snapped to,
within the snap distance: ``locate``); ``district`` applies only to parts in no grid. Columns
whose every value is the column's default are left to the server.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from functools import partial

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from sqlalchemy import Engine, text

from gridcore.codes import PART_CLASS, part_code_rules
from gridcore.taxonomy import Taxonomy
from layers.db.bulk import (
    copy_table,
    deferred_indexes,
    in_background,
    log,
    point_ewkb,
    wants_bulk,
)
from layers.exchange.imports import part_cell_counts
from layers.exchange.imports.common import attributes_json, flag_duplicates, require_columns
from layers.exchange.imports.locate import (
    DEFAULT_SNAP_M,
    grids_of_points,
    locator_in_background,
)
from layers.exchange.imports.part_codes import district_prefixes, grid_then_code_order, next_codes
from layers.exchange.imports.part_codes import report_rows as _report_rows
from layers.exchange.imports.reading import crs_note, to_storage_crs
from layers.exchange.imports.report import ImportReport, Problems, refuse_database_errors
from layers.schema.city import PART_STATES
from spatial import h3lattice
from spatial.h3cells import DEFAULT_RESOLUTION
from spatial.h3cells import cells_arrow as h3_cells

DEPT_FIELDS = ("competent_dept", "owner_dept", "maintenance_dept")
# Columns gridcore computes itself (present in its own exports): never copied into attributes.
DERIVED = ("grid_code", "h3", "recorded_on", "changed_on")
ALWAYS = ("code", "class_code", "grid_code", "h3", "geom")


def _text(df: pd.DataFrame, column: str | None, default: str = "") -> pa.Array:
    """A column as stripped strings in Arrow (a missing column: ``default`` everywhere)."""
    if column is None or column not in df.columns:
        return pa.repeat(pa.scalar(default, pa.string()), len(df))
    series = df[column]
    # an Arrow-backed column (pandas' str dtype) goes over as it is, without a Python object
    # per value; an object column is converted once
    values: pa.Array | pa.ChunkedArray = (
        pa.array(series.to_numpy(), from_pandas=True) if series.dtype == object
        else pa.array(series, from_pandas=True))
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    return pc.utf8_trim_whitespace(pc.fill_null(values, ""))


def _strings(df: pd.DataFrame, column: str | None, default: str = "") -> pd.Series:
    """A column as stripped Python strings (object dtype: no per-item Arrow boxing later)."""
    if column is None or column not in df.columns:
        return pd.Series(np.full(len(df), default, dtype=object), dtype=object)
    return _as_series(_text(df, column, default))


def _as_series(values: pa.Array) -> pd.Series:
    # to_numpy makes the Python strings in C++ (to_pylist: ~6× slower per million)
    return pd.Series(values.to_numpy(zero_copy_only=False), dtype=object)


def _none_if_empty(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _points(gdf: gpd.GeoDataFrame, problems: Problems) -> tuple[np.ndarray, np.ndarray]:
    geoms = gdf.geometry.to_numpy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    _report_rows(problems, missing, "geometry", lambda i: "empty or missing geometry")
    not_point = ~missing & (shapely.get_type_id(geoms) != 0)
    _report_rows(problems, not_point, "geometry",
                 lambda i: f"expected a point, got a {geoms[i].geom_type}")
    x, y = shapely.get_x(geoms), shapely.get_y(geoms)
    bad = ~missing & ~not_point & ~(np.isfinite(x) & np.isfinite(y))
    _report_rows(problems, bad, "geometry", lambda i: "point without finite coordinates")
    return x, y


@refuse_database_errors("parts")
def load_parts(engine: Engine, gdf: gpd.GeoDataFrame, *, code_field: str | None = "code",
               class_field: str = "class_code", name_field: str | None = "name",
               state_field: str | None = "state", district: str | None = None,
               source: str | None = None, source_id_field: str | None = "source_id",
               photo_field: str | None = "photo_url", attributes_field: str | None = "attributes",
               h3_resolution: int = DEFAULT_RESOLUTION, taxonomy: Taxonomy | None = None,
               bulk: bool | None = None, snap_m: float = DEFAULT_SNAP_M) -> ImportReport:
    """Insert new city parts and update the ones already stored (by code or source id).
    ``h3_resolution``: the tree's (``GRIDCORE_H3_RESOLUTION``), the same as the cases'.
    ``snap_m``: resolve's snap distance (``GRIDCORE_RESOLVE_SNAP_M``).
    ``bulk`` forces (True) or forbids (False) deferred index builds; None decides by size."""
    what = "parts"
    gdf = to_storage_crs(gdf, what)
    started = time.perf_counter()
    require_columns(gdf, what, {"class-field": class_field})
    report = ImportReport("parts", crs=crs_note(gdf))
    problems = Problems(what)
    n = len(gdf)
    with engine.begin() as conn:
        # a COPY or a key rebuild of ten million parts takes longer than the server's default
        # statement limit on a busy host (main's import of 10 M was cancelled in its COPY)
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        # the grid locator (a fixed ~20 s at 60 k grids) is built from the grids this
        # transaction sees, in a thread, while the rows are checked
        locator = locator_in_background(conn, snap_m) if n else None
        taxonomy = taxonomy or Taxonomy.default()
        # text columns go to the COPY as Arrow arrays (no Python string per value and back);
        # the checks and messages use Python strings only where they need them
        class_text = _text(gdf, class_field)
        classes = _as_series(class_text)
        unknown = ~classes.isin({c.code for c in taxonomy.parts()}).to_numpy()
        _report_rows(problems, unknown, class_field, lambda i: (
            f"unknown city-part class {classes[i]!r} (not in the taxonomy, "
            "gridcore/data/part_classes.csv)"))
        cf = code_field or "code"
        codes = _strings(gdf, code_field)
        given = (codes != "").to_numpy()
        for broken, reason in part_code_rules(codes, classes, ~unknown):
            _report_rows(problems, broken, cf, reason)
        if given.any():
            flag_duplicates(codes.to_numpy(dtype=object), cf, problems)
        states = _strings(gdf, state_field, "intact").replace("", "intact")
        _report_rows(problems, ~states.isin(PART_STATES).to_numpy(), state_field or "state",
                     lambda i: f"state {states[i]!r} must be one of {', '.join(PART_STATES)}")
        sources = (pd.Series(np.full(n, source, dtype=object)) if source
                   else _strings(gdf, "source", ""))
        source_ids = _strings(gdf, source_id_field)
        keyed = (source_ids != "").to_numpy()
        keys = np.full(n, "", dtype=object)
        if keyed.any():
            keys[keyed] = (sources[keyed] + "\x1f" + source_ids[keyed]).to_numpy(dtype=object)
            flag_duplicates(keys, source_id_field or "source_id", problems)
        x, y = _points(gdf, problems)
        step = report.timed("checked", started)
        depts = {f: _text(gdf, f) for f in DEPT_FIELDS if f in gdf.columns}
        if depts:
            stored = pa.array([r[0] for r in conn.execute(text("SELECT code FROM department"))],
                              pa.string())
            for f, values in depts.items():
                unknown_dept = pc.and_(pc.not_equal(values, ""),
                                       pc.invert(pc.is_in(values, value_set=stored)))
                _report_rows(problems, unknown_dept.to_numpy(zero_copy_only=False), f,
                             partial(_no_department, values))
        problems.raise_if_any()
        step = report.timed("departments checked", step) if depts else step
        located = grids_of_points(conn, x, y, snap_m,
                                  locator=locator() if locator is not None else None)
        grid_names, grid_idx = located.codes, located.index
        report.snapped = located.snap_notes(snap_m)
        step = report.timed("grids located", step)
        existing = np.full(n, None, dtype=object)
        if keyed.any():
            stored_keys = {key: code for key, code in conn.execute(text(
                "SELECT source || chr(31) || source_id, code FROM city_part "
                "WHERE source_id IS NOT NULL AND source = ANY(:s)"),
                {"s": sorted(set(sources[keyed]))})}
            existing = pd.Series(keys, dtype=object).map(stored_keys).to_numpy(dtype=object)
            clash = given & pd.notna(existing) & (codes.to_numpy() != existing)
            _report_rows(problems, clash, cf, lambda i: (
                f"{sources[i]} {source_ids[i]} is already stored as {existing[i]}, "
                f"not {codes[i]}"))
            found = np.flatnonzero(pd.notna(existing) & ~unknown)
            moved = found[pd.Series(existing[found], dtype=object).str[PART_CLASS].to_numpy()
                          != classes.to_numpy(dtype=object)[found]]
            # The class is part of the code (GB/T 30428): a retagged feature is a new part.
            _report_rows(problems, np.isin(np.arange(n), moved), class_field, lambda i: (
                f"{sources[i]} {source_ids[i]} is stored as part {existing[i]} of class "
                f"{existing[i][PART_CLASS]}, the file says class {classes[i]}: a part cannot "
                "change class; remove the stored part first"))
        if given.any():
            stored_codes = {r[0] for r in conn.execute(text(
                "SELECT code FROM city_part WHERE code = ANY(:c)"), {"c": codes[given].tolist()})}
            hit = given & codes.isin(stored_codes).to_numpy()
            existing[hit] = codes[hit]
        todo = ~given & pd.isna(existing)
        new_codes = None
        if todo.any():
            prefixes = district_prefixes(district, grid_names, grid_idx, classes, todo,
                                         problems, cf)
            problems.raise_if_any()
            new_codes = next_codes(conn, *prefixes, codes[given])
        problems.raise_if_any()
        if new_codes is not None and todo.all():
            codes = new_codes  # the common bulk case: every code generated, kept in Arrow
        else:
            codes = codes.copy()
            if new_codes is not None:
                codes[todo] = np.asarray(new_codes.to_pylist(), dtype=object)
            codes = codes.where(pd.isna(existing), existing).to_numpy(dtype=object)
        attrs = attributes_json(gdf, [code_field, class_field, name_field, state_field,
                                      source_id_field, photo_field, "source", *DEPT_FIELDS,
                                      *DERIVED], attributes_field)
        columns = {
            "code": codes, "class_code": class_text,
            "grid_code": pa.array(grid_names, pa.string()).take(
                pa.array(grid_idx, mask=grid_idx < 0)),
            "state": states.to_numpy(dtype=object),
            "source": (pa.repeat(pa.scalar(source, pa.string()), n) if source
                       else sources.to_numpy(dtype=object)),
            "attributes": np.asarray(attrs, dtype=object)}
        # Optional columns the file lacks would be all NULL or all default: not even built.
        present = {f for f in (name_field, photo_field, *DEPT_FIELDS) if f in gdf.columns}
        if name_field in present:
            columns["name"] = _text(gdf, name_field)
        columns |= {f: _none_if_empty(depts[f]) for f in DEPT_FIELDS if f in present}
        if photo_field in present:
            columns["photo_url"] = _optional(gdf, photo_field)
        if keyed.any():
            columns["source_id"] = source_ids.replace("", None).to_numpy(dtype=object)
        defaults = {"name": "", "state": "intact", "source": "", "attributes": "{}"}
        columns = {k: v for k, v in columns.items()
                   if k in ALWAYS or not _all_equal(v, defaults.get(k))}
        is_update = pd.notna(existing)
        report.inserted, report.updated = int((~is_update).sum()), int(is_update.sum())
        if bulk is None:
            bulk = report.inserted > 0 and wants_bulk(conn, "city_part", report.inserted)
        order = (grid_then_code_order(grid_idx, columns["code"])
                 if bulk and not is_update.any() else None)
        # computed chunk by chunk while the COPY runs (see copy_table)
        derived = {"h3": lambda rows: h3_cells(x[rows], y[rows], h3_resolution),
                   "geom": lambda rows: point_ewkb(x[rows], y[rows])}
        step = report.timed("codes and columns", step)
        log.debug("parts: %d rows checked and prepared in %.2f s", n,
                  time.perf_counter() - started)
        cells = (partial(_cell_counts, x, y, classes.to_numpy(dtype=object),
                         states.to_numpy(dtype=object), h3_resolution) if bulk else None)
        step = _write(conn, columns, derived, is_update, bulk, order, cells, report, step)
    report.timed("committed", step)
    return report


def _no_department(values: pa.Array, i: int) -> str:
    return f"department {values[i].as_py()!r} does not exist"


def _optional(gdf: gpd.GeoDataFrame, column: str | None) -> pa.Array:
    """An optional text column: stripped strings, None where empty or absent."""
    if column is None or column not in gdf.columns:
        return pa.nulls(len(gdf), pa.string())
    return _none_if_empty(_text(gdf, column))


def _all_equal(values: object, default: str | None) -> bool:
    if isinstance(values, pa.Array):
        if default is None:
            return values.null_count == len(values)
        return len(values) == 0 or (values.null_count == 0 and bool(
            pc.all(pc.equal(values, default)).as_py()))
    arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    return bool(len(arr) == 0 or (arr == default).all() if default is not None
                else pd.isna(arr).all())


def _cell_counts(x: np.ndarray, y: np.ndarray, classes: np.ndarray, states: np.ndarray,
                 resolution: int, rows: np.ndarray) -> pd.DataFrame:
    """The part tiles' cell counts of the new parts ``rows`` (see part_cell_counts)."""
    return part_cell_counts.cell_counts(
        h3lattice.cells_uint64(x[rows], y[rows], resolution), classes[rows], states[rows])


def _write(conn, columns: dict, derived: dict, is_update: np.ndarray, bulk: bool,  # noqa: ANN001
           order: np.ndarray | None, cells: Callable[[np.ndarray], pd.DataFrame] | None,
           report: ImportReport, step: float) -> float:
    """Insert the new rows, update the stored ones; the phases go into ``report``. Returns
    the end of the last phase."""
    if not is_update.all():
        new = order if order is not None else (None if not is_update.any()
                                               else np.flatnonzero(~is_update))
        counted = None
        with deferred_indexes(conn, "city_part", bulk):
            # the bulk lane counts its new parts' cells itself
            with (part_cell_counts.without_insert_trigger(conn) if cells is not None
                  else contextlib.nullcontext()):
                copy_table(conn, "city_part", columns, rows=new, derived=derived,
                           label="city parts")
            step = report.timed("COPY", step)
            if cells is not None:
                # counted by Python while the server rebuilds the keys and indexes
                counted = in_background(partial(
                    cells, new if new is not None else np.arange(len(is_update))),
                    "part-cell-counts")
        if bulk:
            step = report.timed("keys and indexes", step)
        if counted is not None:
            part_cell_counts.append_counts(conn, counted())
            step = report.timed("cell counts", step)
    if is_update.any():
        conn.execute(text("CREATE TEMP TABLE stage_part (LIKE city_part INCLUDING DEFAULTS) "
                          "ON COMMIT DROP"))
        copy_table(conn, "stage_part", columns, rows=np.flatnonzero(is_update), derived=derived)
        sets = ", ".join(f"{c} = s.{c}" for c in [*columns, *derived] if c != "code")
        conn.execute(text(f"UPDATE city_part p SET {sets}, changed_on = current_date "
                          "FROM stage_part s WHERE p.code = s.code"))
        step = report.timed("updated", step)
    return step
