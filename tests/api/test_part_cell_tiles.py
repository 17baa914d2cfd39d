"""Low-zoom part tiles (layers/ogc/part_tiles.py): below zoom 14 city parts are H3 hexagons
whose counts (in all, per state, per class when the tile is filtered) equal a recount of the
parts in each hexagon (tiles decoded); the stored counts (``part_cell``) follow the bulk import,
single inserts, state changes, moves, deletes, and not a rolled-back write; ``gridcore check
--aggregates`` compares and repairs them."""

from __future__ import annotations

import json
import random
from collections import Counter

import geopandas as gpd
import h3
import mapbox_vector_tile
import shapely
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gridcore.cli import app
from layers.exchange.imports import load_parts
from layers.ogc import part_cells
from layers.ogc.tiles import covering_cells, h3_resolution_for
from tests.support.map_planted import plant

LON, LAT = 24.9410, 60.1685
CLASSES = ["0101", "0120", "0204", "0301"]
STATES = list(part_cells.STATES)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    import math

    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


def tile(client, z: int, query: str = "") -> list[dict]:  # noqa: ANN001
    z, x, y = tile_of(LON, LAT, z)
    r = client.get(f"/collections/parts/tiles/WebMercatorQuad/{z}/{x}/{y}{query}")
    assert r.status_code == 200, r.text
    layers = mapbox_vector_tile.decode(r.content) if r.content else {}
    return layers.get("parts", {}).get("features", [])


def hexagons(client, z: int, query: str = "") -> dict[str, dict]:  # noqa: ANN001
    features = tile(client, z, query)
    assert all(f["properties"]["aggregated"] for f in features)
    return {f["properties"]["h3"]: f["properties"] for f in features}


def expected(engine: Engine, z: int, classes: set[str] | None = None,
             states: set[str] | None = None) -> dict[str, Counter]:
    """Parts per hexagon of the tile's resolution and state, counted in Python."""
    res = h3_resolution_for(z)
    wanted = set(covering_cells(*tile_of(LON, LAT, z), res))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT h3, class_code, state FROM city_part "
                                 "WHERE h3 IS NOT NULL")).all()
    found: dict[str, Counter] = {}
    for cell, cls, state in rows:
        parent = h3.cell_to_parent(cell, res)
        if parent in wanted and (classes is None or cls in classes) and (
                states is None or state in states):
            found.setdefault(parent, Counter())[state] += 1
    return found


def shown(hexes: dict[str, dict]) -> dict[str, Counter]:
    out = {}
    for cell, p in hexes.items():
        assert p["count"] == sum(p[s] for s in STATES)
        out[cell] = Counter({s: p[s] for s in STATES if p[s]})
    return out


def scatter_frame(n: int, seed: int) -> gpd.GeoDataFrame:
    rng = random.Random(seed)
    return gpd.GeoDataFrame(
        {"class_code": [rng.choice(CLASSES) for _ in range(n)],
         "state": [rng.choice(STATES) for _ in range(n)]},
        geometry=shapely.points([LON + rng.uniform(-0.08, 0.08) for _ in range(n)],
                                [LAT + rng.uniform(-0.04, 0.04) for _ in range(n)]),
        crs=4326)


def test_low_zoom_parts_are_hexagons_that_count_every_part(client) -> None:
    engine = client.app.state.engine
    plant(engine)
    assert load_parts(engine, scatter_frame(600, 1), district="110101", bulk=True).inserted \
        == 600
    for z in (10, 11, 12, 13):
        assert shown(hexagons(client, z)) == expected(engine, z), z
    # filtered by class, major class, state: the counts of those only
    assert shown(hexagons(client, 12, "?class_code=0101,0204")) == expected(
        engine, 12, classes={"0101", "0204"})
    assert shown(hexagons(client, 12, "?major=02")) == expected(engine, 12, classes={"0204"})
    assert shown(hexagons(client, 11, "?state=damaged&major=01")) == expected(
        engine, 11, classes={"0101", "0120"}, states={"damaged"})
    # another filter (a name) counts live, the same way
    with engine.begin() as conn:
        conn.execute(text("UPDATE city_part SET name = 'lamp' WHERE code LIKE '%1'"))
    with engine.connect() as conn:
        named = [r[0] for r in conn.execute(text(
            "SELECT h3 FROM city_part WHERE name = 'lamp' AND h3 IS NOT NULL"))]
    live = hexagons(client, 12, "?name=lamp")
    assert sum(p["count"] for p in live.values()) == sum(
        1 for c in named if h3.cell_to_parent(c, 8) in set(covering_cells(
            *tile_of(LON, LAT, 12), 8)))
    # points from zoom 14
    points = tile(client, 14)
    assert points and all("aggregated" not in f["properties"] for f in points)
    assert {"class_code", "state"} <= set(points[0]["properties"])


def test_counts_follow_every_write_and_equal_a_recount(client) -> None:
    engine = client.app.state.engine
    plant(engine)
    load_parts(engine, scatter_frame(400, 2), district="110101", bulk=True)
    load_parts(engine, scatter_frame(30, 3), district="110101", bulk=False)  # row by row lane
    rng = random.Random(4)
    with engine.begin() as conn:
        conn.execute(text("UPDATE city_part SET state = 'damaged' WHERE code LIKE '%3'"))
        for code in [r[0] for r in conn.execute(text(
                "SELECT code FROM city_part ORDER BY code LIMIT 20"))]:
            lon, lat = LON + rng.uniform(-0.05, 0.05), LAT + rng.uniform(-0.03, 0.03)
            conn.execute(text("UPDATE city_part SET h3 = :h, geom = ST_SetSRID(ST_MakePoint("
                              ":lon, :lat), 4326) WHERE code = :c"),
                         {"h": h3.latlng_to_cell(lat, lon, 10), "lon": lon, "lat": lat,
                          "c": code})
        conn.execute(text("DELETE FROM city_part WHERE code LIKE '%7'"))
    # a case step sets a part's state (the lifecycle's path)
    from datetime import UTC, date, datetime

    from layers.cases.part_state import set_part_state

    with engine.begin() as conn:
        code = conn.execute(text("SELECT code FROM city_part WHERE state = 'intact' "
                                 "ORDER BY code LIMIT 1")).scalar_one()
        set_part_state(conn, code, "missing", 1, "register", "tester", datetime.now(UTC),
                       date.today())
    # an import that updates stored parts (same codes: the staged UPDATE)
    with engine.connect() as conn:
        again = gpd.GeoDataFrame.from_postgis(
            "SELECT code, class_code, 'occupied' AS state, geom FROM city_part "
            "ORDER BY code LIMIT 25", conn, geom_col="geom")
    assert load_parts(engine, again, district="110101").updated == 25
    with engine.connect() as conn:  # a write rolled back leaves no delta behind
        conn.execute(text("UPDATE city_part SET state = 'missing'"))
        conn.execute(text("DELETE FROM city_part"))
        conn.rollback()
    assert part_cells.check(engine).ok
    for z in (10, 12, 13):
        assert shown(hexagons(client, z)) == expected(engine, z), z
    with engine.connect() as conn:
        before = int(conn.execute(text("SELECT count(*) FROM part_cell")).scalar_one())
    assert part_cells.compact(engine) > 0
    with engine.connect() as conn:
        after = int(conn.execute(text("SELECT count(*) FROM part_cell")).scalar_one())
    assert after < before and part_cells.check(engine).ok
    assert shown(hexagons(client, 12)) == expected(engine, 12)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE city_part CASCADE"))
    assert part_cells.check(engine).ok and not hexagons(client, 12)


def test_check_aggregates_finds_and_repairs_a_wrong_part_cell(client, cli_env) -> None:  # noqa: ARG001
    engine = client.app.state.engine
    plant(engine)
    load_parts(engine, scatter_frame(50, 5), district="110101")
    with engine.begin() as conn:
        conn.execute(text("UPDATE part_cell SET parts = parts + 1 WHERE ctid = "
                          "(SELECT ctid FROM part_cell LIMIT 1)"))
    runner = CliRunner()
    result = runner.invoke(app, ["check", "--aggregates", "--json"])
    assert result.exit_code == 1, result.output
    body = json.loads(result.output)
    assert not body["part_cells"]["ok"] and len(body["part_cells"]["differ"]) == 1
    assert body["case_cells"]["ok"]
    result = runner.invoke(app, ["check", "--aggregates", "--repair"])
    assert result.exit_code == 0, result.output
    assert "ok: the part cells equal a recount from the city parts" in result.output
    assert part_cells.check(engine).ok


def test_the_maps_class_list_counts_parts_from_the_cells(client) -> None:
    """/map/config's parts per class equal a count of every part (the planted ones have no
    cell: the partial index finds them), without reading every part."""
    engine = client.app.state.engine
    plant(engine)
    load_parts(engine, scatter_frame(200, 6), district="110101", bulk=True)
    with engine.connect() as conn:
        want = {r[0]: r[1] for r in conn.execute(text(
            "SELECT class_code, count(*) FROM city_part GROUP BY 1"))}
        conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(r[0] for r in conn.execute(text(
            f"EXPLAIN {part_cells.CLASS_COUNTS}")))
    assert "city_part_uncounted_idx" in plan, plan
    config = client.get("/map/config").json()
    assert {c["code"]: c["n"] for c in config["part_classes"]} == want
