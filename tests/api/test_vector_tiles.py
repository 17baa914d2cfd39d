"""Vector tiles decoded with mapbox_vector_tile: features and properties, H3 aggregation of
cases at low zoom, ETag / 304, and freshness — a write is visible on the very next request."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import h3
import mapbox_vector_tile
import pytest
from sqlalchemy import text

from layers.ogc.collections import GRIDS
from layers.ogc.tile_cache import CachedTile, TileCache
from tests.support.map_planted import GRID_CODES, plant, plant_cases


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


Z14 = tile_of(24.9410, 60.1685, 14)
Z15 = tile_of(24.9410, 60.1685, 15)  # cases are points from zoom 15
Z15_NORTH = (15, Z15[1], Z15[2] - 1)  # the block's northern half (cases 3 and 4)


def get(client, collection: str, ztile: tuple[int, int, int], query: str = "",
        headers: dict | None = None):
    z, x, y = ztile
    return client.get(f"/collections/{collection}/tiles/WebMercatorQuad/{z}/{x}/{y}{query}",
                      headers=headers or {})


def decode(response) -> dict:
    return mapbox_vector_tile.decode(response.content) if response.content else {}


def case_points(client, query: str = "") -> list[dict]:
    """The planted block's case features: two zoom-15 tiles, merged by id."""
    found = {}
    for ztile in (Z15, Z15_NORTH):
        for f in decode(get(client, "cases", ztile, query)).get("cases", {}).get("features", []):
            found[f["properties"]["id"]] = f
    return list(found.values())


def test_tiles_carry_features_and_properties(client) -> None:
    plant(client.app.state.engine)
    r = get(client, "grids", Z14)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    grids = decode(r)["grids"]["features"]
    assert sorted(f["properties"]["code"] for f in grids) == GRID_CODES  # current only
    assert {f["properties"]["workers"] for f in grids} == {"W001", "W002"}
    parts = decode(get(client, "parts", Z14))["parts"]["features"]
    assert {f["properties"]["class_code"] for f in parts} == {"0101", "0120", "0204"}
    cases = case_points(client)
    by_id = {f["properties"]["id"]: f["properties"] for f in cases}
    assert {i: p["clock"] for i, p in by_id.items()} == {1: "green", 2: "yellow", 3: "red",
                                                         4: "none"}
    assert by_id[2]["state"] == "dispatched" and by_id[2]["event_class"] == "0102"
    entities = decode(get(client, "entities", Z14))["entities"]["features"]
    assert [f["properties"]["code"] for f in entities] == ["ENT-2"]  # restricted row left out
    assert all("restricted_attributes" not in f["properties"] for f in entities)
    # Filters narrow a tile with the same whitelist as the items.
    open_red = case_points(client, "?open=true&clock=red")
    assert [f["properties"]["id"] for f in open_red] == [3]
    assert get(client, "cases", Z15, "?geom=x").status_code == 400  # OGC: a bad parameter
    assert get(client, "grids", (3, 9, 9)).status_code == 400  # outside the matrix


def test_low_zoom_cases_are_h3_hexagons_with_counts(client) -> None:
    plant(client.app.state.engine)
    z12 = tile_of(24.9410, 60.1685, 12)
    hexes = decode(get(client, "cases", z12, "?open=true"))["cases"]["features"]
    assert sum(f["properties"]["count"] for f in hexes) == 3  # the closed case is filtered out
    assert all(f["properties"]["aggregated"] for f in hexes)
    worst = {f["properties"]["h3"]: f["properties"]["clock"] for f in hexes}
    assert "red" in worst.values()
    for cell in worst:
        assert h3.get_resolution(cell) == 8
    assert hexes[0]["geometry"]["type"] == "Polygon"




def test_etag_304_and_a_write_is_visible_on_the_next_request(client) -> None:
    engine = client.app.state.engine
    plant(engine)
    first = get(client, "grids", Z14)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = get(client, "grids", Z14, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    # gzip for clients that accept it (compressed once, kept in the cache), with its own ETag.
    assert first.headers["content-encoding"] == "gzip"
    plain = get(client, "grids", Z14, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.headers["etag"] != etag
    assert plain.content == first.content  # httpx decoded the gzipped one
    with engine.begin() as conn:  # redraw grid 001: twice as tall
        conn.execute(text(
            "UPDATE unit_grid SET geom = ST_Multi(ST_MakeEnvelope(24.9400, 60.1670, 24.9420, "
            "60.1690, 4326)), name = 'redrawn' WHERE code = :c AND gen_to IS NULL"),
            {"c": GRID_CODES[0]})
    after = get(client, "grids", Z14, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    names = {f["properties"]["code"]: f["properties"]["name"]
             for f in decode(after)["grids"]["features"]}
    assert names[GRID_CODES[0]] == "redrawn"
    # A new case shows in the very next cases tile.
    before = {f["properties"]["id"] for f in case_points(client)}
    plant_cases(engine, [(7, "E0103", "dispatched", 24.9415, 60.1686, (1, 2))])
    now = {f["properties"]["id"] for f in case_points(client)}
    assert now == before | {7}


def test_tile_cache_is_keyed_by_version_and_expires_with_the_clock(client) -> None:
    plant(client.app.state.engine)
    get(client, "cases", Z15)
    cache: TileCache = client.app.state.tile_cache
    hits = cache.hits
    get(client, "cases", Z15)
    assert cache.hits == hits + 1
    # The tile expires at the next clock change: case 2 (yellow) turns red at its deadline,
    # before case 1 (green) turns yellow; the closed case 4 never changes.
    entry = next(v for k, (v, _) in cache._entries.items() if k[0] == "cases")
    with client.app.state.engine.connect() as conn:
        due = conn.execute(text("SELECT deadline_at FROM case_record WHERE id = 2")).scalar()
    assert entry.expires == due
    stale = CachedTile(b"x", '"x"', datetime.now(UTC) - timedelta(seconds=1))
    assert not stale.fresh() and CachedTile(b"x", '"x"', None).fresh()


def test_tile_filter_uses_the_spatial_index(client) -> None:
    """The envelope is transformed, never the column: with seq scans off, the GiST index is
    the plan (a transformed column would leave only a seq scan)."""
    from layers.ogc.features import ItemsQuery
    from layers.ogc.tiles import Shift, _base

    plant(client.app.state.engine)
    base, params = _base(GRIDS, ItemsQuery(), Shift())
    with client.app.state.engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN SELECT 1 {base}"),
                                                    {**params, "z": 14, "x": Z14[1],
                                                     "y": Z14[2]}))
    assert "unit_grid_geom_idx" in plan, plan


def test_tilejson_describes_the_layer(client) -> None:
    plant(client.app.state.engine)
    tj = client.get("/collections/cases/tiles/WebMercatorQuad/tilejson.json").json()
    assert tj["tilejson"] == "3.0.0" and tj["tiles"][0].endswith("/{z}/{x}/{y}")
    fields = tj["vector_layers"][0]["fields"]
    assert {"clock", "state", "count"} <= set(fields)
    assert client.get("/collections/nope/tiles/WebMercatorQuad/tilejson.json").status_code \
        == 404


@pytest.mark.parametrize("z", [14, 16])
def test_gcj02_tiles_put_the_overlay_on_the_shifted_street(client, z: int) -> None:
    """A point in Shanghai drawn for an AMap (GCJ-02) basemap lands where the exact
    per-point conversion puts it, within one tile pixel."""
    import numpy as np

    from spatial.crs import wgs84_to_gcj02

    engine = client.app.state.engine
    plant(engine, cases=False)
    lon, lat = 121.5272106, 31.1774276  # a published WGS 84 / GCJ-02 test pair
    glon, glat = (float(v[0]) for v in wgs84_to_gcj02(np.array([lon]), np.array([lat])))
    assert (round(glon, 9), round(glat, 9)) == (121.531541859, 31.175303984)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO city_part (code, class_code, geom) VALUES ('3101150101000001', "
            "'0101', ST_SetSRID(ST_MakePoint(:x, :y), 4326))"), {"x": lon, "y": lat})
    ztile = tile_of(glon, glat, z)
    feats = decode(get(client, "parts", ztile, "?datum=gcj02"))["parts"]["features"]
    assert len(feats) == 1
    px, py = feats[0]["geometry"]["coordinates"]
    n = 2 ** z
    ex = ((glon + 180) / 360 * n - ztile[1]) * 4096
    ey = (1 - ((1 - math.asinh(math.tan(math.radians(glat))) / math.pi) / 2 * n - ztile[2])) \
        * 4096  # mapbox_vector_tile flips y to point up
    assert abs(px - ex) <= 16 and abs(py - ey) <= 16  # 16/4096 of a tile = 1 pixel of 256
    plain = decode(get(client, "parts", tile_of(lon, lat, z)))["parts"]["features"]
    assert plain, "without datum the WGS 84 position is served"


def test_version_reader_reconnects_after_its_connection_is_killed(db) -> None:
    from layers.ogc.version_watch import VersionReader

    reader = VersionReader(db)
    before, _ = reader.read()
    with db.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"),
                     {"p": reader._conn.get_backend_pid()})
    with db.begin() as conn:
        conn.execute(text("INSERT INTO grid_worker (code, name) VALUES ('W9', 'new')"))
    after, _ = reader.read()
    assert after["workers"] == before["workers"] + 1
    reader.close()
