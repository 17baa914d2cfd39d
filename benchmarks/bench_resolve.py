"""Point → grid resolution: gridcore's locator against its peers, in one run.

    .venv/bin/python benchmarks/bench_resolve.py --grids 20000 --points 1000000
    .venv/bin/python benchmarks/bench_resolve.py --small        # 2,000 grids, 100,000 points

Voronoi grids tiling a ~40 × 40 km box (Beijing), stored in a scratch database of the embedded
cluster (or the server of GRIDCORE_TEST_ADMIN_URL). Prints points/s of gridcore's batch
locator, geopandas.sjoin, a shapely STRtree query and a PostGIS set-based join; single-lookup
p50/p99 in process and through a PostGIS prepared statement; index build time and memory;
mismatches against ST_Covers (lowest code on shared edges), which must be 0.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import create_engine, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from layers.db.engine import make_engine  # noqa: E402
from layers.db.migrate import migrate  # noqa: E402
from layers.grids.index import GridIndex  # noqa: E402
from layers.grids.resolver import Resolver  # noqa: E402
from spatial import h3cells  # noqa: E402
from tests.support.grids import load_grids, voronoi_grids  # noqa: E402

TARGETS = {"speedup_vs_sjoin": 10.0, "single_p50_us": 5.0, "build_s": 10.0, "build_mb": 500.0}


def admin_url() -> str:
    url = os.environ.get("GRIDCORE_TEST_ADMIN_URL")
    if url:
        return url
    from layers.db.cluster import EmbeddedCluster

    return EmbeddedCluster().start().url()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def timed(fn, repeat: int = 1):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def postgis_join(engine, lon: np.ndarray, lat: np.ndarray) -> tuple[float, np.ndarray]:  # type: ignore[no-untyped-def]
    """COPY the points into a table, then one set-based join; only the join is timed."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("DROP TABLE IF EXISTS bench_pts; CREATE TABLE bench_pts "
                    "(i int, x float8, y float8)")
        buf = io.StringIO("".join(f"{i}\t{x!r}\t{y!r}\n"
                                  for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(),
                                                                  strict=True))))
        cur.copy_from(buf, "bench_pts", columns=("i", "x", "y"))
        cur.execute("ALTER TABLE bench_pts ADD COLUMN geom geometry(Point, 4326); "
                    "UPDATE bench_pts SET geom = ST_SetSRID(ST_MakePoint(x, y), 4326); "
                    "CREATE INDEX ON bench_pts USING gist (geom); "
                    "ANALYZE bench_pts; ANALYZE unit_grid")
        raw.commit()
        joins = {
            "point-driven": "SELECT p.i, min(g.code) FROM bench_pts p JOIN unit_grid g "
                            "ON g.gen_to IS NULL AND ST_Covers(g.geom, p.geom) GROUP BY p.i",
            # OFFSET 0 keeps the planner from flattening: one grid against many points lets
            # PostGIS reuse its prepared polygon (point-in-polygon cache).
            "grid-driven": "SELECT p.i, min(g.code) FROM unit_grid g CROSS JOIN LATERAL "
                           "(SELECT p.i FROM bench_pts p WHERE ST_Covers(g.geom, p.geom) "
                           "OFFSET 0) p WHERE g.gen_to IS NULL GROUP BY p.i",
        }
        times, answers = {}, {}
        for label, join in joins.items():
            cur.execute("EXPLAIN " + join)
            plan = " / ".join(r[0].strip()[:50] for r in cur.fetchall()[:5])
            t = time.perf_counter()
            cur.execute(join)
            answers[label] = dict(cur.fetchall())
            times[label] = time.perf_counter() - t
            print(f"  PostGIS {label} join: {len(lon) / times[label] / 1e6:.2f} M points/s; "
                  f"plan {plan}")
        rows = answers["point-driven"].items()
        if answers["point-driven"] != answers["grid-driven"]:
            print("  WARNING: the two PostGIS joins disagree")
        dt = min(times.values())
        cur.execute("DROP TABLE bench_pts")
        raw.commit()
    finally:
        raw.close()
    ref = np.full(len(lon), "", dtype=object)
    for i, code in rows:
        ref[i] = code
    return dt, ref


def postgis_single(engine, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PREPARE loc(float8, float8) AS SELECT code FROM unit_grid "
                    "WHERE gen_to IS NULL AND ST_Covers(geom, ST_SetSRID(ST_MakePoint($1, $2), "
                    "4326)) ORDER BY code LIMIT 1")
        times = []
        for x, y in zip(lon.tolist(), lat.tolist(), strict=True):
            t = time.perf_counter_ns()
            cur.execute("EXECUTE loc(%s, %s)", (x, y))
            cur.fetchone()
            times.append(time.perf_counter_ns() - t)
        raw.rollback()
    finally:
        raw.close()
    return np.asarray(times) / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grids", type=int, default=20_000)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--km", type=float, default=40.0)
    ap.add_argument("--single", type=int, default=100_000, help="single lookups in process")
    ap.add_argument("--single-db", type=int, default=5_000, help="single lookups via PostGIS")
    ap.add_argument("--small", action="store_true", help="2,000 grids, 100,000 points")
    args = ap.parse_args()
    if args.small:
        args.grids, args.points, args.single, args.single_db = 2_000, 100_000, 20_000, 1_000
    admin = admin_url()
    name = f"gridcore_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url=url)
    try:
        run(engine, args)
    finally:
        engine.dispose()
        with admin_engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin_engine.dispose()


def run(engine, args) -> None:  # type: ignore[no-untyped-def]
    migrate(engine)
    t = time.perf_counter()
    grids = voronoi_grids(args.grids, km=args.km)
    load_grids(engine, grids)
    print(f"setup: {len(grids):,} Voronoi grids over {args.km:g}×{args.km:g} km stored in "
          f"{time.perf_counter() - t:.1f} s; {args.points:,} points")

    # -- build -----------------------------------------------------------------------------------
    index = GridIndex(engine)
    rss0 = rss_mb()
    tracemalloc.start()
    t = time.perf_counter()
    snap = index.current()
    build_s = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    loc = snap.locator
    build_mb = peak / 1e6
    stats = loc.stats()
    print(f"build (load from PostGIS + index): {build_s:.2f} s, peak traced memory "
          f"{build_mb:.0f} MB, RSS +{rss_mb() - rss0:.0f} MB; buckets {stats['buckets']:,} of "
          f"{stats['cell_m']:.1f} m, edge buckets {stats['edge_share']:.1%}, index "
          f"{stats['bytes'] / 1e6:.0f} MB")

    # -- points: uniform over the box, plus points exactly on vertices ----------------------------
    rng = np.random.default_rng(42)
    minx, miny, maxx, maxy = shapely.total_bounds(grids)
    n_vertex = min(args.points // 100, 20_000)
    xy = shapely.get_coordinates(grids)
    xy = xy[rng.integers(0, len(xy), n_vertex)]
    lon = np.concatenate([rng.uniform(minx, maxx, args.points - n_vertex), xy[:, 0]])
    lat = np.concatenate([rng.uniform(miny, maxy, args.points - n_vertex), xy[:, 1]])
    n = len(lon)

    # -- batch -----------------------------------------------------------------------------------
    ours_s, found = timed(lambda: loc.locate_many(lon, lat), repeat=3)
    gdf_grids = gpd.GeoDataFrame({"code": snap.codes}, geometry=loc.geoms, crs="EPSG:4326")
    gdf_pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    sjoin_s, _ = timed(lambda: gpd.sjoin(gdf_pts, gdf_grids, predicate="intersects",
                                         how="left"))
    pts = shapely.points(lon, lat)
    tree = shapely.STRtree(loc.geoms)
    tree_s, _ = timed(lambda: tree.query(pts, predicate="intersects"))
    pg_s, ref = postgis_join(engine, lon, lat)
    h3_s, _ = timed(lambda: h3cells.cells(lon, lat, 10))
    ours = np.where(found.index >= 0, snap.codes[np.maximum(found.index, 0)], "")
    mismatches = int((ours != ref).sum())

    def rate(s: float) -> str:
        return f"{n / s / 1e6:6.2f} M points/s ({s * 1000:7.1f} ms)"

    print("\nbatch, all points (" + f"{n:,}" + "):")
    print(f"  gridcore locator        {rate(ours_s)}")
    print(f"  geopandas.sjoin         {rate(sjoin_s)}")
    print(f"  shapely STRtree query   {rate(tree_s)}")
    print(f"  PostGIS set-based join  {rate(pg_s)} (faster of the two plans)")
    print(f"  (H3 cells alone, res 10 {rate(h3_s)})")
    speedup = sjoin_s / ours_s
    print(f"  speed-up vs sjoin: {speedup:.1f}× (target ≥ {TARGETS['speedup_vs_sjoin']:g}×)")
    print(f"  mismatches vs ST_Covers (lowest code on shared edges): {mismatches} "
          f"(of {n:,}, {n_vertex:,} on vertices)")

    # -- single ----------------------------------------------------------------------------------
    k = min(args.single, n)
    times = np.empty(k)
    locate = loc.locate
    for i, (x, y) in enumerate(zip(lon[:k].tolist(), lat[:k].tolist(), strict=True)):
        t0 = time.perf_counter_ns()
        locate(x, y)
        times[i] = time.perf_counter_ns() - t0
    times /= 1000.0
    resolver = Resolver(engine)
    resolver.index = index
    r_times = []
    for x, y in zip(lon[:2000].tolist(), lat[:2000].tolist(), strict=True):
        t0 = time.perf_counter_ns()
        resolver.resolve(x, y)
        r_times.append((time.perf_counter_ns() - t0) / 1000.0)
    db_times = postgis_single(engine, lon[:args.single_db], lat[:args.single_db])
    index.close()
    print("\nsingle lookup:")
    print(f"  gridcore locator.locate in process   p50 {np.percentile(times, 50):8.2f} µs  "
          f"p99 {np.percentile(times, 99):8.2f} µs  (target p50 ≤ {TARGETS['single_p50_us']:g})")
    print(f"  Resolver.resolve (version check, H3) p50 {np.percentile(r_times, 50):8.2f} µs  "
          f"p99 {np.percentile(r_times, 99):8.2f} µs")
    print(f"  PostGIS prepared statement           p50 {np.percentile(db_times, 50):8.2f} µs  "
          f"p99 {np.percentile(db_times, 99):8.2f} µs")
    print(f"\nbuild: {build_s:.2f} s (target ≤ {TARGETS['build_s']:g}), {build_mb:.0f} MB "
          f"(target ≤ {TARGETS['build_mb']:g}); max RSS of the process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    ok = (speedup >= TARGETS["speedup_vs_sjoin"] and mismatches == 0
          and np.percentile(times, 50) <= TARGETS["single_p50_us"]
          and build_s <= TARGETS["build_s"] and build_mb <= TARGETS["build_mb"])
    print("targets:", "all met" if ok else "NOT all met")


if __name__ == "__main__":
    main()
