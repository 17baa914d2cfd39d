"""The tile cache stays bounded (issue 18, finding 7): filters are checked and normalised before
they become a cache key (an unknown property and a value beyond reason are 400s, as OGC routes
answer bad parameters), equal filters share one entry, and entries are bounded in number and in
bytes — an empty tile costs its key."""

from __future__ import annotations

import uuid

from layers.ogc.tile_cache import TileCache
from tests.api.test_vector_tiles import Z14, get
from tests.support.map_planted import plant


def test_junk_filters_never_become_keys(client) -> None:  # type: ignore[no-untyped-def]
    plant(client.app.state.engine)
    assert get(client, "grids", Z14).status_code == 200
    cache = client.app.state.tile_cache
    before = cache.size
    # the attack: long junk filters, each a new key of an empty tile
    for i in range(300):
        junk = uuid.uuid4().hex * 40  # 1,280 characters
        assert get(client, "grids", Z14, f"?code={junk}").status_code == 400
        assert get(client, "grids", Z14, f"?x{i}={junk}").status_code == 400
    assert cache.size == before


def test_equal_filters_share_one_entry(client) -> None:  # type: ignore[no-untyped-def]
    plant(client.app.state.engine)
    first = get(client, "cases", Z14, "?state=dispatched,closed&open=true")
    cache = client.app.state.tile_cache
    entries = cache.size[0]
    again = get(client, "cases", Z14, "?open=true&state=closed,dispatched&state=closed")
    assert first.status_code == again.status_code == 200
    assert first.headers["etag"] == again.headers["etag"] and cache.size[0] == entries


def test_many_distinct_tiles_stay_within_the_bounds(client) -> None:  # type: ignore[no-untyped-def]
    plant(client.app.state.engine)
    client.app.state.tile_cache = cache = TileCache(max_bytes=200_000, max_entries=100)
    for i in range(400):  # empty tiles under distinct, valid short filters
        assert get(client, "grids", Z14, f"?code={i:015d}").status_code == 200
    entries, counted = cache.size
    assert entries == 100 and 0 < counted <= 200_000


def test_an_empty_tile_costs_its_key() -> None:
    cache = TileCache(max_bytes=10_000, max_entries=1_000)
    for i in range(100):
        cache.put(("grids", "1", 14, i, 0, (("code", "x" * 500),)), b"", None)
    entries, counted = cache.size
    assert counted <= 10_000 and entries < 100  # the keys alone filled the byte budget
