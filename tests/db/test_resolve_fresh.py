"""Redraws while resolving: every answer comes from a complete index of one generation."""

from __future__ import annotations

import threading

import numpy as np
import shapely
from sqlalchemy import text

from layers.grids.resolver import Resolver
from tests.support.grids import load_grids, voronoi_grids


def test_answers_during_redraws_are_always_consistent(db) -> None:  # type: ignore[no-untyped-def]
    load_grids(db, voronoi_grids(80, km=2.0, seed=1))
    resolver = Resolver(db)
    # The first resolve builds the index; while a later rebuild runs, other threads answer from
    # the previous complete snapshot (never a half-built one), so warm up before the threads.
    resolver.resolve(*shapely.get_coordinates(
        shapely.point_on_surface(voronoi_grids(80, km=2.0, seed=1)[0]))[0])
    rng = np.random.default_rng(4)
    minx, miny, maxx, maxy = shapely.total_bounds(voronoi_grids(80, km=2.0, seed=1))
    stop = threading.Event()
    answers: list[tuple[float, float, int, int]] = []
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        r = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                x, y = r.uniform(minx, maxx), r.uniform(miny, maxy)
                res = resolver.resolve(x, y)
                answers.append((x, y, res.grid.grid_id, res.grid_version))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    try:
        for seed in (2, 3, 4):  # three redraws with different tilings
            load_grids(db, voronoi_grids(int(rng.integers(40, 120)), km=2.0, seed=seed))
    finally:
        stop.set()
        for t in threads:
            t.join()
    resolver.close()
    assert not errors, errors[:1]
    assert len({v for *_, v in answers}) >= 2  # answers from more than one generation
    # Every answer's grid row (current or since closed) really covers its point.
    with db.connect() as conn:
        bad = conn.execute(text("""
            SELECT count(*) FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[]),
                                        CAST(:g AS bigint[])) AS a(x, y, g)
            JOIN unit_grid u ON u.id = a.g
            WHERE NOT ST_Covers(u.geom, ST_SetSRID(ST_MakePoint(a.x, a.y), 4326))"""),
            {"x": [a[0] for a in answers], "y": [a[1] for a in answers],
             "g": [a[2] for a in answers]}).scalar_one()
    assert bad == 0
    assert resolver.index.builds >= 2
