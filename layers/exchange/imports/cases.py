"""Cases from a legacy system (历史案卷导入): ``gridcore import cases FILE``.

Each row becomes a case as it ended there: its own opened and closed times, its final state
(``gridcore.legacy``), its department, its text, its place — and one history row ``imported``
(dated when it was opened; no lifecycle step is invented). Cases are marked with their system
and original id (``source_system`` + ``source_id``): importing the same file again updates the
cases that changed there instead of duplicating them, and leaves alone those a person has since
worked on in gridcore (they are counted as kept). The grid comes from the location, by the
current unit grids with the resolver's snap distance; a case outside every grid or without a
location has no grid. Categories, departments, states and channels go through the mapping
table (``layers.exchange.imports.case_mapping``).

Checks first, over the whole file (row-numbered problems, nothing written), then one
transaction: a columnar binary COPY into a staging table and two set-based statements (the
updates, the inserts, each writing its history rows in the same statement). A big first load
rebuilds the case table's indexes once after the insert (``layers.db.bulk``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, text

from gridcore.intake import SOURCES
from gridcore.legacy import OPEN, OTHER_CATEGORY, SOURCE_SYSTEM_CHARS, import_key, open_state
from gridcore.taxonomy import Taxonomy
from layers.db.bulk import copy_table, deferred_indexes, log, point_ewkb, wants_bulk
from layers.db.partitions import ensure_years
from layers.exchange.imports.case_mapping import (
    MappingTable,
    list_unmapped,
    map_values,
    read_mapping,
    source_words,
    state_words,
)
from layers.exchange.imports.case_reading import CaseFile, read_case_file
from layers.exchange.imports.case_times import parse_times
from layers.exchange.imports.common import flag_duplicates
from layers.exchange.imports.report import ImportReport, Problems, reject_file
from spatial.h3cells import DEFAULT_RESOLUTION
from spatial.h3cells import cells_arrow as h3_cells
from spatial.locator import OUTSIDE, GridLocator

Texts = Callable[[str | None], pd.Series]  # a column of the file as stripped text


@dataclass(frozen=True)
class CaseFields:
    """Which column of the file holds what (``--id-field``, ``--opened-field``…)."""

    id_field: str
    opened_field: str
    closed_field: str | None = None
    text_fields: tuple[str, ...] = ()
    category_field: str | None = None
    department_field: str | None = None
    address_field: str | None = None
    state_field: str | None = None
    source_field: str | None = None
    notes_field: str | None = None  # handling notes / the reply given


# The columns an import writes (and stages, when it merges into stored cases)
COLUMNS = ("source_id", "idempotency_key", "category_key", "description", "geom", "input_x",
           "input_y", "grid_id", "grid_code", "community_code", "street_code", "district_code",
           "h3", "source", "state", "department_code", "created_at", "closed_at", "origin")
# What a re-import compares: a case "changed there" when any of these differs
COMPARED = ("category_key", "description", "geom", "grid_id", "h3", "source", "state",
            "department_code", "created_at", "closed_at", "origin")


def import_cases(engine: Engine, path: str | Path, *, system: str, fields: CaseFields,
                 mapping: str | Path | None = None, unmapped: str = "refuse",
                 timezone: str = "Asia/Shanghai", time_format: str | None = None,
                 lon_field: str | None = None, lat_field: str | None = None,
                 crs: str | None = None, layer: str | None = None,
                 encoding: str | None = None, snap_m: float = 30.0,
                 h3_resolution: int = DEFAULT_RESOLUTION, actor: str = "import",
                 taxonomy: Taxonomy | None = None) -> ImportReport:
    """Read ``path`` and load its cases (see the module docstring)."""
    started = time.perf_counter()
    source = read_case_file(path, lon_field=lon_field, lat_field=lat_field, crs=crs,
                            layer=layer, encoding=encoding)
    log.debug("cases: %s read in %.2f s", source.name, time.perf_counter() - started)
    return load_cases(engine, source, system=system, fields=fields, mapping=mapping,
                      unmapped=unmapped, timezone=timezone, time_format=time_format,
                      snap_m=snap_m, h3_resolution=h3_resolution, actor=actor,
                      taxonomy=taxonomy)


def load_cases(engine: Engine, source: CaseFile, *, system: str, fields: CaseFields,
               mapping: str | Path | None = None, unmapped: str = "refuse",
               timezone: str = "Asia/Shanghai", time_format: str | None = None,
               snap_m: float = 30.0, h3_resolution: int = DEFAULT_RESOLUTION,
               actor: str = "import", taxonomy: Taxonomy | None = None) -> ImportReport:
    what = f"cases file {source.name}"
    if not system or len(system) > SOURCE_SYSTEM_CHARS or not system.isprintable():
        raise reject_file(what, f"--system {system!r} must name the legacy system in 1–"
                                f"{SOURCE_SYSTEM_CHARS} characters", "system")
    if unmapped not in ("refuse", "other"):
        raise reject_file(what, "--unmapped must be 'refuse' or 'other'", "unmapped")
    df = source.frame
    texts = source.text
    _require(df, what, fields)
    started = time.perf_counter()
    report = ImportReport("cases", notes=list(source.notes))
    problems = Problems(what)
    n = len(df)
    ids = texts(fields.id_field)
    for i in np.flatnonzero((ids == "").to_numpy())[:1000]:
        problems.add(int(i) + 1, fields.id_field, "empty id: every case needs its original id")
    flag_duplicates(ids.to_numpy(dtype=object), fields.id_field, problems)
    opened = parse_times(texts(fields.opened_field), fields.opened_field, timezone,
                         time_format, problems, required=True)
    closed = parse_times(texts(fields.closed_field), fields.closed_field or "closed",
                         timezone, time_format, problems, required=False)
    report.notes += opened.notes + closed.notes
    if not problems:
        # A legacy quirk more than a bad row (SF 311 has 55, hours before the opening on the
        # same day): the case is kept, its impossible closing time is not.
        before = (closed.utc < opened.utc).to_numpy()
        if before.any():
            rows = ", ".join(str(i + 1) for i in np.flatnonzero(before)[:10])
            closed.utc[before] = pd.NaT
            report.notes.append(f"{int(before.sum())} cases closed before they were opened "
                                f"(rows {rows}{'…' if before.sum() > 10 else ''}): their "
                                "closing time is left empty")
    taxonomy = taxonomy or Taxonomy.default()
    with engine.begin() as conn:
        departments = {r[0] for r in conn.execute(text("SELECT code FROM department"))}
        table = read_mapping(mapping, {c.key for c in taxonomy}, departments)
        mapped = _map(texts, len(df), fields, table, {c.key for c in taxonomy}, departments,
                      unmapped, problems, report)
        problems.raise_if_any()
        state = _states(mapped["state"], mapped["department"], closed.utc)
        place = _place(conn, source.x, source.y, snap_m, report)
        description = _description(texts, len(df), fields.text_fields)
        origin = _origin(texts, fields, mapped)
        columns: dict[str, Any] = {
            "source_id": ids.to_numpy(dtype=object),
            "category_key": mapped["category"], "description": description,
            "input_x": source.x, "input_y": source.y,
            "source": mapped["source"], "state": state, "department_code": mapped["department"],
            "created_at": _instants(opened.utc), "closed_at": _instants(closed.utc),
            "origin": origin, **place,
            "idempotency_key": np.asarray([import_key(system, i) for i in ids], dtype=object)}
        derived = {  # computed chunk by chunk while the COPY runs (layers.db.bulk)
            "geom": lambda rows: _ewkb(source.x[rows], source.y[rows]),
            "h3": lambda rows: _h3(source.x[rows], source.y[rows], h3_resolution)}
        log.debug("cases: %d rows checked and prepared in %.2f s", n,
                  time.perf_counter() - started)
        _write(conn, system, source.name, actor, columns, derived, report)
    report.notes.append(f"imported as system {system!r}; times read in {timezone} unless "
                        "they carry an offset")
    return report


def _require(df: pd.DataFrame, what: str, fields: CaseFields) -> None:
    named = {"id-field": fields.id_field, "opened-field": fields.opened_field,
             "closed-field": fields.closed_field, "category-field": fields.category_field,
             "department-field": fields.department_field,
             "address-field": fields.address_field, "state-field": fields.state_field,
             "source-field": fields.source_field, "notes-field": fields.notes_field}
    named |= {f"text-field {t}": t for t in fields.text_fields}
    for option, column in named.items():
        if column is not None and column not in df.columns:
            raise reject_file(what, f"missing column {column!r} (--{option}); the file has: "
                                    f"{', '.join(map(str, df.columns))}", column)


def _map(texts: Texts, n: int, fields: CaseFields, table: MappingTable, categories: set[str],
         departments: set[str], unmapped: str, problems: Problems,
         report: ImportReport) -> dict[str, np.ndarray]:
    """Categories, departments, states and channels through the mapping table."""
    other = unmapped == "other"
    out: dict[str, np.ndarray] = {}
    if fields.category_field is None:
        if not other:
            problems.add(None, "category-field", "no --category-field: every case would be "
                         f"{OTHER_CATEGORY} (other); accept that with --unmapped other")
        out["category"] = np.full(n, OTHER_CATEGORY, dtype=object)
        report.notes.append(f"no category column: all cases filed as {OTHER_CATEGORY} (other)")
    else:
        values = texts(fields.category_field)
        m = map_values(values, table.get("category"), categories)
        _unmapped(m, values, "category", fields.category_field, other, problems, report,
                  f"filed as {OTHER_CATEGORY} (other)")
        codes = m.codes.copy()
        codes[pd.isna(codes)] = OTHER_CATEGORY
        out["category"] = codes
    dept_values = texts(fields.department_field)
    m = map_values(dept_values, table.get("department"), departments)
    _unmapped(m, dept_values, "department", fields.department_field or "department", other,
              problems, report, "imported without a department")
    out["department"] = m.codes
    state_values = texts(fields.state_field)
    m = map_values(state_values, table.get("state"), (), state_words(state_values))
    _unmapped(m, state_values, "state", fields.state_field or "state", other, problems,
              report, "taken as still open")
    out["state"] = m.codes
    source_values = texts(fields.source_field)
    m = map_values(source_values, table.get("source"), SOURCES, source_words(source_values))
    codes = m.codes.copy()
    codes[pd.isna(codes)] = "other"
    if m.counts:
        report.notes.append(f"{sum(m.counts.values())} cases from channels gridcore has no "
                            f"name for ({', '.join(list(m.counts)[:5])}…) recorded as source "
                            "'other' (the original channel kept)")
    out["source"] = codes
    out |= {"category_word": texts(fields.category_field).to_numpy(dtype=object),
            "department_word": dept_values.to_numpy(dtype=object),
            "state_word": state_values.to_numpy(dtype=object),
            "source_word": source_values.to_numpy(dtype=object)}
    return out


def _unmapped(m: Any, values: pd.Series, kind: str, column: str, other: bool,
              problems: Problems, report: ImportReport, fallback: str) -> None:
    if not m.counts:
        return
    if not other:
        list_unmapped(problems, kind, column, m, values)
        return
    listed = ", ".join(f"{v!r} ({c})" for v, c in m.counts.most_common(10))
    more = f" and {len(m.counts) - 10} more values" if len(m.counts) > 10 else ""
    report.notes.append(f"{sum(m.counts.values())} cases with an unmapped {kind}, {fallback} "
                        f"(--unmapped other): {listed}{more}")


def _states(states: np.ndarray, departments: np.ndarray, closed: pd.Series) -> np.ndarray:
    """The final state: mapped, else closed when the file gives a closing time, else open;
    open → dispatched (it names a department) or registered."""
    has_closed = closed.notna().to_numpy()
    out = np.where(pd.isna(states), np.where(has_closed, "closed", OPEN), states).astype(object)
    still_open = out == OPEN
    out[still_open] = [open_state(d) for d in departments[still_open]]
    return out


def _place(conn: Connection, x: np.ndarray, y: np.ndarray, snap_m: float,
           report: ImportReport) -> dict[str, Any]:
    """Grid and areas by location (current unit grids, the resolver's snap distance)."""
    n = len(x)
    rows = conn.execute(text("SELECT id, code, community_code, ST_AsBinary(geom) FROM unit_grid "
                             "WHERE gen_to IS NULL")).all()
    idx = np.full(n, -1, dtype=np.int64)
    located = np.isfinite(x) & np.isfinite(y)
    if rows and located.any():
        import shapely

        locator = GridLocator(shapely.from_wkb([bytes(r[3]) for r in rows]),
                              [r[1] for r in rows], np.arange(len(rows)), snap_m=snap_m)
        found = locator.locate_many(x[located], y[located], nearest=False)
        hit = found.index != OUTSIDE
        positions = np.full(len(found.index), -1, dtype=np.int64)
        positions[hit] = np.asarray(locator.ids, dtype=np.int64)[found.index[hit]]
        idx[located] = positions
        if found.snapped.any():
            report.notes.append(f"{int(found.snapped.sum())} cases within {snap_m:g} m of a grid "
                                "were snapped into it")
    outside = int((located & (idx < 0)).sum())
    if outside:
        report.notes.append(f"{outside} cases lie outside every unit grid: no grid")
    ids = np.asarray([r[0] for r in rows] + [0], dtype=np.int64)
    codes = np.asarray([r[1] for r in rows] + [None], dtype=object)
    community = np.asarray([r[2] for r in rows] + [None], dtype=object)
    take = np.where(idx < 0, len(rows), idx)
    comm = community[take]
    has = pd.notna(comm)
    street = np.full(n, None, dtype=object)
    district = np.full(n, None, dtype=object)
    street[has] = [c[:9] for c in comm[has]]
    district[has] = [c[:6] for c in comm[has]]
    return {"grid_id": np.ma.array(ids[take], mask=idx < 0), "grid_code": codes[take],
            "community_code": comm,
            "street_code": street, "district_code": district}


def _description(texts: Texts, n: int, text_fields: tuple[str, ...]) -> np.ndarray:
    """The text fields joined by line breaks (empty ones skipped)."""
    if not text_fields:
        return np.full(n, "", dtype=object)
    # (pyarrow's null_handling="skip" dropped rows here: empty strings, no nulls, instead)
    joined = pa.array(texts(text_fields[0]).to_numpy(dtype=object), pa.string())
    for f in text_fields[1:]:
        part = pa.array(texts(f).to_numpy(dtype=object), pa.string())
        both = pc.binary_join_element_wise(joined, part, "\n")
        joined = pc.if_else(pc.equal(joined, ""), part,
                            pc.if_else(pc.equal(part, ""), joined, both))
    return np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)


def _json_string(values: np.ndarray) -> pa.Array:
    """JSON string literals (quoted, escaped) of text values; null where empty."""
    arr = pa.array(values, pa.string(), from_pandas=True)
    arr = pc.if_else(pc.equal(pc.fill_null(arr, ""), ""), pa.scalar(None, pa.string()), arr)
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"),
                         ("\t", "\\t")):
        arr = pc.replace_substring(arr, raw, escaped)
    arr = pc.replace_substring_regex(arr, "[\\x00-\\x1f]", " ")
    quoted = pc.binary_join_element_wise('"', arr, '"', "")
    return pc.fill_null(quoted, "null")


def _origin(texts: Texts, fields: CaseFields, mapped: dict[str, np.ndarray]) -> np.ndarray:
    """What the legacy system said, word for word (JSON per case): category, department, state,
    channel, address, handling notes / reply, and the original time texts."""
    items = {"category": mapped["category_word"], "department": mapped["department_word"],
             "state": mapped["state_word"], "source": mapped["source_word"],
             "address": texts(fields.address_field).to_numpy(dtype=object),
             "notes": texts(fields.notes_field).to_numpy(dtype=object),
             "opened": texts(fields.opened_field).to_numpy(dtype=object),
             "closed": texts(fields.closed_field).to_numpy(dtype=object)}
    pieces: list[Any] = []
    for j, (key, values) in enumerate(items.items()):
        pieces += [("{" if j == 0 else ",") + f'"{key}":', _json_string(values)]
    pieces.append("}")
    joined = pc.binary_join_element_wise(*pieces, "")
    return np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)


def _instants(times: pd.Series) -> np.ndarray:
    """UTC instants as naive datetime64 (NaT where none), for binary COPY."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def _ewkb(x: np.ndarray, y: np.ndarray) -> pa.Array:
    points = point_ewkb(np.nan_to_num(x), np.nan_to_num(y))
    return pc.if_else(pa.array(np.isfinite(x)), points, pa.scalar(None, pa.binary()))


def _h3(x: np.ndarray, y: np.ndarray, resolution: int) -> pa.Array:
    ok = np.isfinite(x) & np.isfinite(y)
    cells = h3_cells(np.where(ok, x, 0.0), np.where(ok, y, 0.0), resolution)
    return pc.if_else(pa.array(ok), cells, pa.scalar(None, pa.string()))


_UPDATE = """
WITH old AS (
    SELECT c.id, c.state AS old_state, s.*
    FROM stage_case s JOIN case_record c
      ON c.source_system = :system AND c.source_id = s.source_id
    WHERE ({stored}) IS DISTINCT FROM ({staged})
      AND NOT EXISTS (SELECT 1 FROM case_history h
                      WHERE h.case_id = c.id AND h.action <> 'imported')
    FOR UPDATE OF c
), upd AS (
    UPDATE case_record c SET {assign}, updated_at = now(), version = c.version + 1
    FROM old o WHERE c.id = o.id
    RETURNING c.id, o.old_state, c.state, c.source_id
)
INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state, reason,
                          details)
SELECT id, now(), :actor, 'system', 'imported', old_state, state,
       'changed in ' || :system || ': re-imported from ' || :file,
       jsonb_build_object('source_system', :system, 'source_id', source_id, 'file', :file)
FROM upd
""".format(
       stored=", ".join(f"c.{c}" for c in COMPARED),
       staged=", ".join(f"s.{c}" for c in COMPARED),
       assign=", ".join(f"{c} = o.{c}" for c in COLUMNS
                           if c not in ("source_id", "idempotency_key")),
   )

_KEPT = """
SELECT count(*) FROM stage_case s JOIN case_record c
  ON c.source_system = :system AND c.source_id = s.source_id
WHERE ({stored}) IS DISTINCT FROM ({staged})
  AND EXISTS (SELECT 1 FROM case_history h WHERE h.case_id = c.id AND h.action <> 'imported')
""".format(
       stored=", ".join(f"c.{c}" for c in COMPARED),
       staged=", ".join(f"s.{c}" for c in COMPARED),
   )

# Rows already stored leave the staging table before the insert (an anti-join against
# case_record inside the insert made it ten times slower: benchmarks/README.md)
_TAKE_STORED = """
DELETE FROM stage_case s USING case_record c
WHERE c.source_system = :system AND c.source_id = s.source_id
"""
_FROM_STAGE = """
INSERT INTO case_record ({columns}, source_system, payload_hash, category_source)
SELECT {columns}, :system, 'imported', 'imported' FROM stage_case
""".format(columns=", ".join(COLUMNS))
# The first import of a system goes straight into case_record (no staging); its history rows
# follow from the rows it wrote: every case of the system without one yet.
_HISTORY = """
INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state, reason,
                          details)
SELECT c.id, c.created_at, :actor, 'system', 'imported', NULL, c.state,
       'imported from ' || :system || ' (' || :file || ')',
       jsonb_build_object('source_system', :system, 'source_id', c.source_id, 'file', :file,
                          'registered_at', c.created_at, 'imported_at', now())
FROM case_record c
WHERE c.source_system = :system AND c.id > :after
"""


def _write(conn: Connection, system: str, file: str, actor: str, columns: dict[str, Any],
           derived: dict[str, Any], report: ImportReport) -> None:
    started = time.perf_counter()
    # An import is long by nature (a million rows): the service's per-statement limit is for
    # requests, not for this one transaction.
    conn.execute(text("SET LOCAL statement_timeout = 0"))
    # One import of a system at a time: two would race on "is this id stored yet?"
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridcore import cases ' "
                      "|| :s))"), {"s": system})
    n = len(columns["source_id"])
    params = {"system": system, "file": file, "actor": actor}
    opened = columns["created_at"][~np.isnat(columns["created_at"])]
    if len(opened):  # the years the file brings get their partitions before the COPY
        ensure_years(conn, *(pd.Timestamp(t).tz_localize("UTC").to_pydatetime()
                             for t in (opened.min(), opened.max())))
    after = conn.execute(text("SELECT coalesce(max(id), 0) FROM case_record")).scalar_one()
    stored = conn.execute(text("SELECT EXISTS (SELECT 1 FROM case_record WHERE "
                               "source_system = :system)"), params).scalar_one()
    constants = {"source_system": system, "payload_hash": "imported",
                 "category_source": "imported"}
    if not stored:  # the first import of this system: straight in
        bulk = wants_bulk(conn, "case_record", n)
        with deferred_indexes(conn, "case_record", bulk):
            copy_table(conn, "case_record", columns | {
                k: np.full(n, v, dtype=object) for k, v in constants.items()},
                derived=derived, label="cases")
        report.inserted = n
    else:
        conn.execute(text("CREATE TEMP TABLE stage_case ON COMMIT DROP AS SELECT "
                          f"{', '.join(COLUMNS)} FROM case_record WITH NO DATA"))
        copy_table(conn, "stage_case", columns, derived=derived, label="cases (staging)")
        conn.execute(text("CREATE INDEX ON stage_case (source_id)"))
        conn.execute(text("ANALYZE stage_case"))
        report.kept = int(conn.execute(text(_KEPT), params).scalar_one())
        report.updated = conn.execute(text(_UPDATE), params).rowcount
        conn.execute(text(_TAKE_STORED), params)
        new_rows = int(conn.execute(text("SELECT count(*) FROM stage_case")).scalar_one())
        bulk = new_rows > 0 and wants_bulk(conn, "case_record", new_rows)
        with deferred_indexes(conn, "case_record", bulk):
            report.inserted = conn.execute(text(_FROM_STAGE), params).rowcount
    step = time.perf_counter()
    written = conn.execute(text(_HISTORY), params | {"after": after}).rowcount
    if written != report.inserted:  # the advisory lock makes this impossible; say so if not
        raise RuntimeError(f"import of {system}: {report.inserted} cases but {written} "
                           "history rows")
    log.debug("cases: history rows in %.2f s", time.perf_counter() - step)
    report.unchanged = n - report.inserted - report.updated - report.kept
    log.debug("cases: %d inserted, %d updated; written in %.2f s (bulk %s)", report.inserted,
              report.updated, time.perf_counter() - started, bulk)
