"""Build the synthetic megacity into a database through the bulk paths.

Areas, departments, unit grids and dispatch rules through the product's importers
(``layers.exchange.imports``, ``layers.grids.dispatch_rules``); city parts through the part
import's bulk lane (``load_parts``: binary COPY, deferred indexes — its time is the "import of
N parts" figure); cases and their history generated as arrays (``demo.megacity.history``) and
written with COPY (CSV built by pyarrow) into ``case_record`` and ``case_history`` with their
secondary indexes and keys deferred (``layers.db.bulk.deferred_indexes``), in one transaction.
Nothing goes through HTTP. Synthetic data, no real person or place: the README says so.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely
from sqlalchemy import Connection, Engine, text

from demo.megacity import history
from demo.megacity.layout import CITY_PREFIX, Ground, build_ground, describe
from demo.org import DEPARTMENTS, EVENT_DEPARTMENT, EVENT_MAJOR_DEPARTMENT, PART_DEPARTMENTS
from gridcore.calendar import WorkingCalendar
from gridcore.dispatch import DispatchRule
from gridcore.evaluation import EvaluationModel
from gridcore.taxonomy import Taxonomy, default_taxonomy
from layers.db.bulk import deferred_indexes
from layers.db.partitions import ensure_years
from layers.evaluation.store import rebuild as rebuild_eval_facts
from layers.exchange.imports import load_areas, load_departments, load_grids, load_parts
from layers.grids.dispatch_rules import replace_rules
from layers.health.days import rebuild as rebuild_days
from layers.ogc.case_cells import rebuild as rebuild_cells
from spatial import h3cells

SYNTHETIC = "synthetic megacity, no real person or place"
# part classes by share of the inventory (covers and lamps dominate, as in real ledgers)
PART_MIX = {"0120": 18, "0402": 16, "0304": 9, "0101": 6, "0102": 6, "0103": 7, "0105": 3,
            "0107": 4, "0111": 3, "0110": 2, "0113": 1, "0115": 3, "0117": 2, "0122": 1,
            "0125": 1, "0201": 2, "0204": 2, "0206": 3, "0215": 2, "0301": 1, "0305": 2,
            "0306": 1, "0310": 1, "0313": 3, "0601": 3}
CHUNK = 500_000


@dataclass
class Options:
    cases: int = 1_000_000
    parts: int = 1_000_000
    grids: int = 60_000
    communities: int = 6_000
    streets: int = 215
    districts: int = 16
    years: float = 5.0
    end: datetime = datetime(2026, 12, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    seed: int = 2026
    h3_resolution: int = 10


@dataclass
class Timings:
    steps: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, echo: Callable[[str], None], fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        out = fn()
        self.steps[name] = time.perf_counter() - started
        echo(f"  {name}: {self.steps[name]:.1f} s")
        return out


# Marking triggers of the derived stores (health days, case cells, evaluation facts): their
# statement triggers capture every COPY'd row in a transition table (even when the function
# then does nothing), so the build switches them off for its COPY, in its transaction, and
# counts the stores once after (rebuild_days, rebuild_eval_facts, rebuild_cells).
_DIRTY_TRIGGERS = (("case_record", "case_record_health_dirty_ins"),
                   ("case_record", "case_record_cells_ins"),
                   ("case_record", "case_record_eval_dirty_ins"),
                   ("case_history", "case_history_eval_dirty_ins"))


def dept(tag: str) -> str:
    return f"{CITY_PREFIX}-{tag}"


def _event_tag(code: str) -> str:
    return EVENT_DEPARTMENT.get(code, EVENT_MAJOR_DEPARTMENT.get(code[:2], "CG"))


def _organisation(engine: Engine, ground: Ground, taxonomy: Taxonomy) -> tuple[dict, set]:
    streets = ground.street_codes
    rows = [(dept(t), n, dept(p) if p else "") for t, n, p in DEPARTMENTS]
    rows += [(f"{s}-CGK", f"{s} 街道城管科 street section", dept("CG")) for s in streets]
    load_departments(engine, pd.DataFrame({
        "code": [r[0] for r in rows], "name": [r[1] for r in rows],
        "parent_code": [r[2] for r in rows], "contact": [SYNTHETIC] * len(rows)}))
    city: dict[str, str] = {}
    for c in taxonomy.parts():
        city[c.key] = dept(PART_DEPARTMENTS.get(c.code, ("CG",) * 3)[2])
    first = set()
    for c in taxonomy.events():
        city[c.key] = dept(_event_tag(c.code))
        if _event_tag(c.code) == "CG":
            first.add(c.key)
    rules = [DispatchRule(k, "city", None, d, "megacity: city-wide") for k, d in city.items()]
    rules += [DispatchRule(k, "street", s, f"{s}-CGK", "megacity: street section first")
              for k in sorted(first) for s in streets]
    replace_rules(engine, rules)
    return city, first


def _parts_frame(ground: Ground, n: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """``n`` parts spread over the grids by area and heat, each at a random point inside its
    grid (rejection sampling in the grid's box against the prepared polygon)."""
    geoms = ground.grids.geometry.values
    weight = ground.grids["area_m2"].to_numpy() * (0.5 + 0.5 * ground.heat / ground.heat.mean())
    grid = rng.choice(len(geoms), n, p=weight / weight.sum()).astype(np.int32)
    bounds = shapely.bounds(np.asarray(geoms))
    arr = np.asarray(geoms, dtype=object)
    shapely.prepare(arr)
    x, y = np.empty(n), np.empty(n)
    todo = np.arange(n)
    while len(todo):
        b = bounds[grid[todo]]
        tx = b[:, 0] + rng.random(len(todo)) * (b[:, 2] - b[:, 0])
        ty = b[:, 1] + rng.random(len(todo)) * (b[:, 3] - b[:, 1])
        ok = shapely.contains_xy(arr[grid[todo]], tx, ty)
        x[todo[ok]], y[todo[ok]] = tx[ok], ty[ok]
        todo = todo[~ok]
    classes = np.array(list(PART_MIX))
    weights = np.array(list(PART_MIX.values()), dtype=float)
    cls = classes[rng.choice(len(classes), n, p=weights / weights.sum())]
    triples = {c: PART_DEPARTMENTS.get(c, ("CG",) * 3) for c in classes}
    frame = gpd.GeoDataFrame({"class_code": cls}, geometry=gpd.points_from_xy(x, y), crs=4326)
    for i, column in enumerate(("competent_dept", "owner_dept", "maintenance_dept")):
        frame[column] = pd.Series(cls).map({c: dept(t[i]) for c, t in triples.items()}).values
    return frame


def _places(conn: Connection, ground: Ground, city: dict[str, str], first: set[str],
            seed: int) -> history.Places:
    """Every stored part (code, class, grid, position), weighted by its grid's heat; without
    parts, one point per grid stands in."""
    grids = pd.DataFrame(conn.execute(text(
        "SELECT id, code FROM unit_grid WHERE gen_to IS NULL ORDER BY code")).all(),
        columns=["id", "code"])
    heat = pd.Series(ground.heat, index=ground.grids["code"]).reindex(grids["code"]).fillna(
        ground.heat.mean()).to_numpy()
    buf = io.BytesIO()
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.copy_expert("COPY (SELECT code, class_code, grid_code, ST_X(geom), ST_Y(geom) "
                        "FROM city_part WHERE grid_code IS NOT NULL ORDER BY code) "
                        "TO STDOUT WITH (FORMAT csv)", buf)
    buf.seek(0)
    names = ["code", "class_code", "grid_code", "x", "y"]
    parts = pacsv.read_csv(buf, read_options=pacsv.ReadOptions(column_names=names),
                           convert_options=pacsv.ConvertOptions(column_types={
                               "code": pa.string(), "class_code": pa.string(),
                               "grid_code": pa.string()}))
    if parts.num_rows == 0:  # no parts: the grids' centres stand in
        rng = np.random.default_rng(seed)
        pts = shapely.point_on_surface(ground.grids.geometry.values)
        del rng
        grid_pos = np.arange(len(grids), dtype=np.int32)
        code = pa.nulls(len(grids), pa.string())
        klass = pa.array(["0120"] * len(grids))
        x, y = shapely.get_x(pts), shapely.get_y(pts)
    else:
        pos = pd.Index(grids["code"])
        grid_pos = pos.get_indexer(parts["grid_code"].to_pandas()).astype(np.int32)
        code, klass = parts["code"].combine_chunks(), parts["class_code"].combine_chunks()
        x, y = parts["x"].to_numpy(), parts["y"].to_numpy()
    geoms = ground.grids.set_index("code").geometry.reindex(grids["code"]).to_numpy()
    shapely.prepare(geoms)
    per_grid = np.bincount(grid_pos, minlength=len(grids)).clip(1)
    return history.Places(x=x, y=y, part_code=code, part_class=klass, grid=grid_pos,
                          weight_cdf=np.cumsum(heat[grid_pos] / per_grid[grid_pos]),
                          grid_code=pa.array(grids["code"], pa.string()),
                          grid_id=grids["id"].to_numpy(np.int64), grid_geom=geoms,
                          department=city,
                          street_first=first)


def _case_table(cols: dict[str, Any], names: dict[str, str], seed: int, res: int) -> pa.Table:
    ids = pa.array(cols["id"], pa.int64())
    sid = ids.cast(pa.string())
    code = cols["grid_code"]
    lon, lat = np.asarray(cols["lon"]), np.asarray(cols["lat"])
    x, y = pa.array(lon).cast(pa.string()), pa.array(lat).cast(pa.string())
    category = pa.array(cols["category_key"], pa.string())
    community = pc.utf8_slice_codeunits(code, 0, 12)
    street = pc.utf8_slice_codeunits(code, 0, 9)
    district = pc.utf8_slice_codeunits(code, 0, 6)
    cells = h3cells.cells_arrow(lon, lat, res)
    proposed = pa.array(cols["proposed_department"], pa.string())
    rule = pc.if_else(pc.starts_with(proposed, "9902-"), "megacity: city-wide",
                      "megacity: street section first")
    intake = pc.binary_join_element_wise(
        '{"resolution": {"grid": {"code": "', code, '"}, "community": "', community,
        '", "street": "', street, '", "district": "', district, '", "h3": "', cells,
        '", "snapped": false, "responsible": {"department": "', proposed, '", "rule": "',
        rule, '"}}, "duplicates": []}', "")
    table = {
        "id": ids,
        "idempotency_key": pc.binary_join_element_wise(f"megacity-{seed}-", sid, ""),
        "payload_hash": pc.utf8_lpad(sid, 64, "0"),
        "category_key": category,
        "description": pc.binary_join_element_wise(
            pa.array([names.get(k, k) for k in cols["category_key"]], pa.string()),
            f" ({SYNTHETIC})", ""),
        "geom": pc.binary_join_element_wise("SRID=4326;POINT(", x, " ", y, ")", ""),
        "input_crs": pa.array(np.full(len(ids), "EPSG:4326")), "input_x": lon, "input_y": lat,
        "grid_id": cols["grid_id"], "grid_code": code, "community_code": community,
        "street_code": street, "district_code": district, "h3": cells,
        "part_code": cols["part_code"], "source": cols["source"],
        "reporter": pc.binary_join_element_wise(pa.array(cols["source"], pa.string()),
                                                " reporter", ""),
        "state": cols["state"], "department_code": cols["department_code"],
        "proposed_department": proposed, "proposal_rule": rule,
        "refused_departments": cols["refused_departments"],
        "stage": pa.array(cols["stage"], pa.string()),
        **{k: cols[k] for k in ("stage_started_at", "stage_limit", "warn_at", "deadline_at",
                                "parked_since", "parked_intervals", "parked_seconds")},
        "check_result": pa.array(cols["check_result"], pa.string()),
        "supervised": cols["supervised"], "primary_case_id": cols["primary_case_id"],
        "intake": intake,
        **{k: cols[k] for k in ("created_at", "updated_at", "closed_at")},
    }
    return pa.table({k: (v if isinstance(v, pa.Array | pa.ChunkedArray) else pa.array(v))
                     for k, v in table.items()})


def copy_csv(conn: Connection, table: str, data: pa.Table, rows: int = 200_000) -> None:
    """COPY a pyarrow table into ``table`` (its columns by name), as CSV built by pyarrow."""
    raw: Any = conn.connection.dbapi_connection
    sql = f"COPY {table} ({', '.join(data.column_names)}) FROM STDIN WITH (FORMAT csv)"
    with raw.cursor() as cur:
        for start in range(0, data.num_rows, rows):
            buf = io.BytesIO()
            pacsv.write_csv(data.slice(start, rows), buf,
                            pacsv.WriteOptions(include_header=False))
            buf.seek(0)
            cur.copy_expert(sql, buf, size=1 << 20)


def _switch_triggers(conn: Connection, how: str) -> None:
    """ENABLE or DISABLE the derived stores' marking triggers that exist (a database migrated
    to an older head may lack some)."""
    for table, trigger in _DIRTY_TRIGGERS:
        if conn.execute(text("SELECT 1 FROM pg_trigger WHERE tgname = :n AND tgrelid = "
                             "CAST(:t AS regclass)"), {"n": trigger, "t": table}).scalar():
            conn.execute(text(f"ALTER TABLE {table} {how} TRIGGER {trigger}"))


def _write_cases(engine: Engine, places: history.Places, opts: Options, taxonomy: Taxonomy,
                 echo: Callable[[str], None]) -> int:
    rng = np.random.default_rng([opts.seed, 7])
    end_us = int(opts.end.timestamp() * history.US)
    t = history.instants(opts.cases, opts.end, opts.years, rng)
    names = {c.key: c.name_zh for c in taxonomy}
    with engine.begin() as conn:
        first = int(conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM case_record"))
                    .scalar_one())
        # the years of the history get their time partitions before the COPY
        ensure_years(conn, datetime.fromtimestamp(int(t.min()) / history.US, UTC), opts.end)
        # the health day aggregates and the case cells are counted once after the load
        # (rebuild), not marked row by row while it runs
        _switch_triggers(conn, "DISABLE")
        with deferred_indexes(conn, "case_history", True), \
                deferred_indexes(conn, "case_record", True):
            pending: threading.Thread | None = None
            errors: list[BaseException] = []

            def write(cases: pa.Table, hist: pa.Table) -> None:
                try:
                    copy_csv(conn, "case_record", cases)
                    copy_csv(conn, "case_history", hist)
                except BaseException as exc:  # noqa: BLE001 - raised in the main thread
                    errors.append(exc)

            started = time.perf_counter()
            for lo, hi in history.chunks(opts.cases, CHUNK):
                chunk = history.generate(places, first + lo, t[lo:hi], end_us, opts.seed,
                                         taxonomy)
                cases = _case_table(chunk.cases, names, opts.seed, opts.h3_resolution)
                if pending is not None:
                    pending.join()
                if errors:
                    raise errors[0]
                # the COPY of this chunk runs while the next one is generated
                pending = threading.Thread(target=write, args=(cases, chunk.history))
                pending.start()
                echo(f"    cases {hi:,}/{opts.cases:,} ({time.perf_counter() - started:.0f} s)")
            if pending is not None:
                pending.join()
            if errors:
                raise errors[0]
            echo("    rebuilding the case tables' keys and indexes")
        conn.execute(text("SELECT setval(pg_get_serial_sequence('case_record', 'id'), "
                          "(SELECT max(id) FROM case_record))"))
        _switch_triggers(conn, "ENABLE")
    with engine.begin() as conn:
        for table in ("case_record", "case_history", "city_part", "unit_grid"):
            conn.execute(text(f"ANALYZE {table}"))
    return opts.cases


def build(engine: Engine, opts: Options, echo: Callable[[str], None] = print) -> Timings:
    """Generate and load the megacity into the (migrated, empty) database of ``engine``."""
    taxonomy = default_taxonomy()
    timings = Timings()
    echo(f"megacity: seed {opts.seed}, {opts.cases:,} cases over {opts.years:g} years to "
         f"{opts.end:%Y-%m-%d}, {opts.parts:,} parts ({SYNTHETIC})")
    ground = timings.run("ground (grids and area tree)", echo, lambda: build_ground(
        opts.grids, opts.communities, opts.streets, opts.districts, opts.seed))
    echo(f"    {describe(ground)}")

    def tree() -> tuple[dict, set]:
        load_areas(engine, ground.areas, parent_field="parent_code")
        org = _organisation(engine, ground, taxonomy)
        load_grids(engine, ground.grids, code_field="code", community_field="community_code",
                   note=f"synthetic megacity, seed {opts.seed}")
        return org

    city, first = timings.run("areas, departments, rules, grids", echo, tree)
    rng = np.random.default_rng([opts.seed, 3])
    if opts.parts:
        frame = timings.run("parts generated", echo, lambda: _parts_frame(ground, opts.parts,
                                                                           rng))
        timings.run(f"parts imported (load_parts, {opts.parts:,})", echo, lambda: load_parts(
            engine, frame, code_field=None, name_field=None, state_field=None,
            source="megacity", h3_resolution=opts.h3_resolution, taxonomy=taxonomy))
        del frame
    if not opts.cases:
        return timings
    with engine.connect() as conn:
        places = timings.run("places read back", echo,
                             lambda: _places(conn, ground, city, first, opts.seed))
    timings.run(f"cases and history ({opts.cases:,})", echo,
                lambda: _write_cases(engine, places, opts, taxonomy, echo))
    cal = WorkingCalendar.chinese(opts.end.tzinfo.key if isinstance(
        opts.end.tzinfo, ZoneInfo) else "Asia/Shanghai")
    rows = timings.run("health day aggregates", echo, lambda: rebuild_days(engine, cal))
    echo(f"    {rows:,} grid × class × day rows")
    rows = timings.run("evaluation facts", echo, lambda: rebuild_eval_facts(
        engine, cal, EvaluationModel.default()))
    echo(f"    {rows:,} cases")
    cells = timings.run("case cells", echo, lambda: rebuild_cells(engine))
    echo(f"    {cells:,} settled-case cells")
    return timings
