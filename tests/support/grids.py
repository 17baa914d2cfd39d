"""Load polygons as current unit grids (with a district → street → community tree) by SQL.

Small and independent of the importer so the resolve tests and the benchmark can load
thousands of grids quickly: district 110101, street 110101001, one community per 999 grids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from sqlalchemy import Engine, text

DISTRICT = "110101"
STREET = "110101001"


def voronoi_grids(n: int, x0: float = 116.2, y0: float = 39.7, km: float = 40.0,
                  seed: int = 7) -> np.ndarray:
    """``n`` Voronoi polygons tiling a ``km`` × ``km`` box (lon/lat) exactly."""
    rng = np.random.default_rng(seed)
    w = km * 1000 / (111_320 * np.cos(np.radians(y0)))
    h = km * 1000 / 111_320
    box = shapely.box(x0, y0, x0 + w, y0 + h)
    seeds = shapely.multipoints(np.column_stack((rng.uniform(x0, x0 + w, n),
                                                 rng.uniform(y0, y0 + h, n))))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=box))
    cells = shapely.intersection(cells, box)
    return cells[~shapely.is_empty(cells)]


def load_grids(engine: Engine, geoms: Sequence | np.ndarray,
               names: Sequence[str] | None = None,
               workers: Sequence[Sequence[str]] | None = None,
               replace: bool = True) -> list[str]:
    """Insert ``geoms`` (lon/lat polygons) as current grids; returns their codes in order.
    With ``replace`` the current grids are closed (gen_to) first — a redraw."""
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    codes = [f"{STREET}{1 + i // 999:03d}{1 + i % 999:03d}" for i in range(n)]
    communities = sorted({c[:12] for c in codes})
    env = shapely.to_wkb(shapely.envelope(shapely.union_all(shapely.envelope(geoms))))
    with engine.begin() as conn:
        gen = conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM grid_generation")
                           ).scalar_one()
        conn.execute(text("INSERT INTO grid_generation (id, note) VALUES (:g, 'test')"),
                     {"g": gen})
        if replace:
            conn.execute(text("UPDATE unit_grid SET gen_to = :g WHERE gen_to IS NULL"),
                         {"g": gen})
        areas = [(DISTRICT, "district", "Test district", None), (STREET, "street",
                                                                 "Test street", DISTRICT)]
        areas += [(c, "community", f"Community {c[-3:]}", STREET) for c in communities]
        conn.execute(text(
            "INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2) "
            "VALUES (:c, :l, :n, :p, ST_Multi(ST_GeomFromWKB(:g, 4326)), 1) "
            "ON CONFLICT (code) DO NOTHING"),
            [{"c": c, "l": lv, "n": nm, "p": p, "g": env} for c, lv, nm, p in areas])
        conn.execute(text(
            "INSERT INTO unit_grid (code, name, community_code, geom, area_m2, worker_codes, "
            "gen_from) VALUES (:c, :n, :cc, ST_Multi(ST_GeomFromWKB(:g, 4326)), 1, :w, :gen)"),
            [{"c": c, "n": (names[i] if names is not None else ""), "cc": c[:12],
              "g": shapely.to_wkb(geoms[i]), "w": list(workers[i]) if workers else [],
              "gen": gen} for i, c in enumerate(codes)])
    return codes


def postgis_covers(engine: Engine, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The reference: for each point the lowest code of the current grids that ST_Covers it
    ('' when none)."""
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT q.i, (SELECT g.code FROM unit_grid g
                         WHERE g.gen_to IS NULL
                           AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(q.x, q.y), 4326))
                         ORDER BY g.code LIMIT 1)
            FROM unnest(CAST(:i AS int[]), CAST(:x AS float8[]), CAST(:y AS float8[]))
                 AS q(i, x, y)"""),
            {"i": list(range(len(lon))), "x": [float(v) for v in lon],
             "y": [float(v) for v in lat]}).all()
    out = np.full(len(lon), "", dtype=object)
    for i, code in rows:
        out[i] = code or ""
    return out
