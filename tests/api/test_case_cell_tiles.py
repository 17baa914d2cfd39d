"""Low-zoom case tiles from the settled counts per H3 cell (layers/ogc/case_cells.py): the
hexagons of a tile without a filter read stored counts for closed, voided and merged cases and
count only the open ones live, and show what counting every case would show (tiles decoded);
the counts follow inserts, lifecycle updates, moves and deletes in the writing transaction,
compaction keeps them, and ``gridcore check --aggregates`` compares them with a recount."""

from __future__ import annotations

import json
import random
from collections import Counter

import h3
import mapbox_vector_tile
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gridcore.cli import app
from layers.ogc import case_cells
from layers.ogc.tiles import covering_cells, h3_resolution_for
from tests.support.map_planted import COMMUNITY, plant

LON, LAT = 24.9410, 60.1685
STATES = ["reported", "dispatched", "closed", "voided", "merged"]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    import math

    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


def hexagons(client, z: int, query: str = "") -> dict[str, dict]:  # noqa: ANN001
    z, x, y = tile_of(LON, LAT, z)
    r = client.get(f"/collections/cases/tiles/WebMercatorQuad/{z}/{x}/{y}{query}")
    assert r.status_code == 200
    layers = mapbox_vector_tile.decode(r.content) if r.content else {}
    return {f["properties"]["h3"]: f["properties"] for f in layers.get("cases", {})
            .get("features", [])}


def scatter(engine: Engine, n: int, seed: int) -> None:
    """``n`` cases around the planted block (a few km), in every state, some without place."""
    rng = random.Random(seed)
    with engine.begin() as conn:
        for i in range(n):
            lon, lat = LON + rng.uniform(-0.08, 0.08), LAT + rng.uniform(-0.04, 0.04)
            conn.execute(text(
                "INSERT INTO case_record (idempotency_key, payload_hash, category_key, "
                "description, geom, input_x, input_y, community_code, h3, state, stage, "
                "warn_at, deadline_at) VALUES (:key, repeat('0', 64), 'E0103', 'scattered', "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :lon, :lat, :c, :h3, :state, "
                "'handle', now() + interval '1 hour', now() + interval '2 hours')"),
                {"key": f"scatter-{seed}-{i}", "lon": lon, "lat": lat, "c": COMMUNITY,
                 "h3": None if i % 17 == 0 else h3.latlng_to_cell(lat, lon, 10),
                 "state": rng.choice(STATES)})


def expected(engine: Engine, z: int) -> dict[str, int]:
    """Every case (any state) per hexagon of the tile's resolution, counted in Python."""
    res = h3_resolution_for(z)
    wanted = set(covering_cells(*tile_of(LON, LAT, z), res))
    with engine.connect() as conn:
        cells = [r[0] for r in conn.execute(text(
            "SELECT h3 FROM case_record WHERE h3 IS NOT NULL"))]
    counts = Counter(h3.cell_to_parent(c, res) for c in cells)
    return {cell: n for cell, n in counts.items() if cell in wanted}


def test_hexagons_count_settled_cases_from_the_cells_and_open_ones_live(client) -> None:
    engine = client.app.state.engine
    plant(engine)
    scatter(engine, 400, seed=1)
    for z in (10, 11, 12, 13, 14):
        shown = hexagons(client, z)
        assert {cell: p["count"] for cell, p in shown.items()} == expected(engine, z)
        assert all(p["aggregated"] for p in shown.values())
    # the planted red case still makes its hexagon red; settled-only hexagons show "none"
    z12 = hexagons(client, 12)
    assert "red" in {p["clock"] for p in z12.values()}
    with engine.connect() as conn:
        open_cells = {h3.cell_to_parent(r[0], 8) for r in conn.execute(text(
            "SELECT h3 FROM case_record WHERE h3 IS NOT NULL AND state NOT IN "
            "('closed', 'voided', 'merged')"))}
    assert all(p["clock"] == "none" for cell, p in z12.items() if cell not in open_cells)
    # a filter (here: open cases only) counts live, as before
    only_open = hexagons(client, 12, "?open=true")
    assert sum(p["count"] for p in only_open.values()) < sum(p["count"] for p in z12.values())
    assert set(only_open) <= open_cells


def test_cells_follow_every_write_and_equal_a_recount(client) -> None:
    engine = client.app.state.engine
    plant(engine)
    scatter(engine, 300, seed=2)
    rng = random.Random(3)
    with engine.begin() as conn:  # lifecycle steps, one statement for many cases, moves
        conn.execute(text("UPDATE case_record SET state = 'closed' WHERE id % 5 = 0 "
                          "AND state NOT IN ('closed', 'voided', 'merged')"))
        conn.execute(text("UPDATE case_record SET state = 'dispatched' WHERE id % 7 = 0 "
                          "AND state = 'closed'"))
        for cid in rng.sample(range(5, 300), 20):
            lon, lat = LON + rng.uniform(-0.05, 0.05), LAT + rng.uniform(-0.03, 0.03)
            conn.execute(text("UPDATE case_record SET h3 = :h, geom = ST_SetSRID(ST_MakePoint("
                              ":lon, :lat), 4326) WHERE id = :i"),
                         {"h": h3.latlng_to_cell(lat, lon, 10), "lon": lon, "lat": lat,
                          "i": cid})
        conn.execute(text("DELETE FROM case_record WHERE id % 11 = 0 AND id > 4"))
    with engine.connect() as conn:  # a step rolled back leaves no delta behind
        conn.execute(text("UPDATE case_record SET state = 'voided'"))
        conn.rollback()
    assert case_cells.check(engine).ok
    for z in (10, 12, 13, 14):
        assert {c: p["count"] for c, p in hexagons(client, z).items()} == expected(engine, z)
    with engine.connect() as conn:
        before = int(conn.execute(text("SELECT count(*) FROM case_cell")).scalar_one())
    folded = case_cells.compact(engine)
    with engine.connect() as conn:
        after = int(conn.execute(text("SELECT count(*) FROM case_cell")).scalar_one())
    assert folded > 0 and after < before
    assert case_cells.check(engine).ok
    assert {c: p["count"] for c, p in hexagons(client, 12).items()} == expected(engine, 12)


def test_check_aggregates_finds_and_repairs_a_wrong_cell(client, cli_env) -> None:  # noqa: ARG001
    engine = client.app.state.engine
    plant(engine)
    scatter(engine, 50, seed=4)
    with engine.begin() as conn:
        conn.execute(text("UPDATE case_cell SET settled = settled + 1 WHERE ctid = "
                          "(SELECT ctid FROM case_cell LIMIT 1)"))
    runner = CliRunner()
    result = runner.invoke(app, ["check", "--aggregates", "--json"])
    assert result.exit_code == 1, result.output
    body = json.loads(result.output)
    assert not body["case_cells"]["ok"] and len(body["case_cells"]["differ"]) == 1
    result = runner.invoke(app, ["check", "--aggregates", "--repair"])
    assert result.exit_code == 0, result.output
    assert "ok: the case cells equal a recount from the cases" in result.output
    assert case_cells.check(engine).ok


def test_child_ranges_hold_exactly_the_children() -> None:
    rng = random.Random(5)
    for _ in range(50):
        cell = h3.latlng_to_cell(rng.uniform(-60, 60), rng.uniform(-180, 180), 10)
        for res in range(6, 11):
            parent = h3.str_to_int(h3.cell_to_parent(cell, res))
            level = case_cells.level_for(res)
            lo, hi = case_cells.child_range(parent, level, res)
            assert lo <= h3.str_to_int(h3.cell_to_parent(cell, level)) <= hi
            other = h3.str_to_int(h3.cell_to_parent(h3.grid_ring(h3.cell_to_parent(
                cell, res), 1)[0], res))
            assert not lo <= h3.str_to_int(h3.cell_to_parent(
                h3.cell_to_children(h3.int_to_str(other), level)[0], level)) <= hi


def _statements(engine: Engine, run) -> list[tuple[str, dict]]:  # noqa: ANN001
    """The SQL statements (with their parameters) ``run()`` sends through ``engine``."""
    from sqlalchemy import event

    sent: list[tuple[str, dict]] = []

    def keep(conn, cursor, statement, parameters, context, many) -> None:  # noqa: ANN001, ARG001
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    return sent


def _plan(engine: Engine, statement: str, parameters: dict) -> str:
    """The plan of a captured statement with scans of the whole table priced out: on a few
    hundred rows the planner would rightly read the table, so this shows which index CAN
    answer it (a partial index whose predicate the query does not imply never shows)."""
    sql = statement.split("; ", 1)[-1]  # after the SET LOCAL sent in the same round trip
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            cur.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
            cur.execute("EXPLAIN " + sql, parameters)
            plan = "\n".join(r[0] for r in cur.fetchall())
        conn.rollback()
    return plan


def _uses(engine: Engine, plan: str, index: str) -> bool:
    """Whether ``plan`` reads ``index`` (a partitioned index: one of its partitions' own)."""
    with engine.connect() as conn:
        names = {r[0] for r in conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:index AS regclass)"), {"index": index})}
    return any(f"Index Only Scan using {name} " in plan for name in names)


def test_open_cases_are_counted_from_the_index_of_open_cells(client) -> None:
    """The live part of a hexagon tile (its open cases, without a filter or with the /map's
    open=true) counts ranges of the open cases' level-10 cells, index only, and the counts
    per hexagon and clock colour equal a recount of the open cases."""
    engine = client.app.state.engine
    plant(engine)
    scatter(engine, 300, seed=6)
    with engine.begin() as conn:  # some clocks run late: red and yellow hexagons too
        conn.execute(text("UPDATE case_record SET deadline_at = now() - interval '1 hour' "
                          "WHERE id % 3 = 0"))
        conn.execute(text("UPDATE case_record SET warn_at = now() - interval '1 hour' "
                          "WHERE id % 3 = 1"))
        rows = conn.execute(text(
            "SELECT h3, CASE WHEN deadline_at < now() THEN 'red' WHEN warn_at < now() "
            "THEN 'yellow' ELSE 'green' END FROM case_record WHERE h3 IS NOT NULL "
            "AND state NOT IN ('closed', 'voided', 'merged')")).all()
    with engine.connect() as conn:
        conn.execute(text("COMMIT"))
        conn.execute(text("VACUUM ANALYZE case_record"))
    for z in (10, 12, 14):
        res = h3_resolution_for(z)
        wanted = set(covering_cells(*tile_of(LON, LAT, z), res))
        recount: dict[str, Counter] = {}
        for cell, colour in rows:
            parent = h3.cell_to_parent(cell, res)
            if parent in wanted:
                recount.setdefault(parent, Counter())[colour] += 1
        sent = _statements(engine, lambda z=z: hexagons(client, z, "?open=true"))
        shown = hexagons(client, z, "?open=true")
        assert {c: (p["count"], p["red"], p["yellow"], p["green"]) for c, p in shown.items()} \
            == {c: (sum(n.values()), n["red"], n["yellow"], n["green"])
                for c, n in recount.items()}
        assert {c for c, p in shown.items() if p["clock"] == "red"} == {
            c for c, n in recount.items() if n["red"]}
        counting = [s for s in sent if case_cells.OPEN_CELL_SQL in s[0]]
        assert len(counting) == 1
        plan = _plan(engine, *counting[0])
        assert _uses(engine, plan, "case_record_open_cell_idx"), plan
        # every case (no filter): settled from the cells, the open ones through the same index
        everything = hexagons(client, z)
        assert {c: p["count"] for c, p in everything.items()} == expected(engine, z)


def test_point_tiles_are_read_from_the_covering_index(client) -> None:
    """A point tile's cases come from the GiST index on the place alone (it carries what a
    point shows), so a busy block costs index pages, not a table page per case."""
    engine = client.app.state.engine
    plant(engine)
    scatter(engine, 200, seed=7)
    with engine.connect() as conn:
        conn.execute(text("COMMIT"))
        conn.execute(text("VACUUM ANALYZE case_record"))
    z, x, y = tile_of(LON, LAT, 15)
    url = f"/collections/cases/tiles/WebMercatorQuad/{z}/{x}/{y}"
    sent = _statements(engine, lambda: client.get(url))
    drawing = [s for s in sent if "ST_AsMVT(" in s[0] and "case_record" in s[0]]
    assert len(drawing) == 1
    plan = _plan(engine, *drawing[0])
    assert _uses(engine, plan, "case_record_geom_idx"), plan
    with engine.connect() as conn:
        inside = conn.execute(text(
            "SELECT count(*) FROM case_record WHERE geom && ST_Transform(ST_TileEnvelope("
            ":z, :x, :y), 4326)"), {"z": z, "x": x, "y": y}).scalar_one()
    features = mapbox_vector_tile.decode(client.get(url).content)["cases"]["features"]
    within = [f for f in features if all(0 < v < 4096 for v in f["geometry"]["coordinates"])]
    assert inside >= 3 and len(within) == inside


def test_coarse_ranges_hold_every_hexagons_children() -> None:
    rng = random.Random(8)
    for _ in range(40):
        for res in range(6, 11):
            cell = h3.latlng_to_cell(rng.uniform(-60, 60), rng.uniform(-180, 180), 10)
            parents = [h3.str_to_int(c) for c in h3.grid_disk(h3.cell_to_parent(cell, res), 6)]
            ranges = case_cells.coarse_ranges(parents, res, case_cells.OPEN_LEVEL)
            assert len(ranges) < len(parents)
            for parent in parents:
                lo, hi = case_cells.child_range(parent, case_cells.OPEN_LEVEL, res)
                assert any(a <= lo and hi <= b for a, b in ranges)
