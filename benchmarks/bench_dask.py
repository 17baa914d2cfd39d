"""Distributed batch resolve: ``spatial.batch.resolve`` on a dask-geopandas frame running on a
``distributed`` LocalCluster of 1 and of 2 worker processes, next to the same call in one
process without dask, on the megacity's street-shaped grids.

    .venv/bin/python benchmarks/bench_dask.py --db megacity_1m          # 20 M points
    .venv/bin/python benchmarks/bench_dask.py --small                   # 2,000 grids, 400 k

The grids come from a megacity database of the embedded cluster (``--db``, made by
``benchmarks/megacity.py``) or, without one, from a scratch database holding only the
megacity's ground (grids and areas; dropped afterwards). Points are uniform over the grids'
bounding box (about a third outside every grid: the city is ragged), generated inside each
partition from its seed, so the client never holds them; the measured job is "resolve every
point, then count points per district" (an analyst's first aggregation). Generation alone is
timed too and subtracted for the resolve throughput. Times are medians of ``--runs`` runs;
the snapshot is scattered to the workers once per cluster (its transfer is in the first run
only, reported apart).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import admin_url, create_database, drop_database  # noqa: E402  (benchmarks/, beside this script)


def host() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} "
            f"cores, load average {load}")


def points(seed: int, n: int, box: tuple[float, float, float, float]) -> Any:
    import geopandas as gpd

    rng = np.random.default_rng(seed)
    x = rng.uniform(box[0], box[2], n)
    y = rng.uniform(box[1], box[3], n)
    return gpd.GeoDataFrame({"category_key": np.where(rng.random(n) < 0.5, "E0103",
                                                      "P0120")},
                             geometry=gpd.points_from_xy(x, y), crs=4326)


def frame(n: int, parts: int, box: tuple[float, float, float, float]) -> Any:
    import dask.dataframe as dd
    import dask_geopandas  # noqa: F401 - registers GeoDataFrame partitions with dask

    per = n // parts
    meta = points(0, 0, box)
    return dd.from_map(points, list(range(parts)), n=per, box=box, meta=meta,
                       enforce_metadata=False)


def job(gdf: Any, snap: Any) -> Any:
    from spatial.batch import resolve

    out = resolve(gdf, snap, category="category_key")
    return out.groupby("district_code", dropna=False).size(split_out=1)


def timed(fn: Any, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="a megacity database of the embedded cluster")
    parser.add_argument("--points", type=int, default=20_000_000)
    parser.add_argument("--partitions", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    if args.small:
        args.points, args.partitions, args.runs = 400_000, 8, 1
    from sqlalchemy import make_url

    from layers.db.engine import make_engine
    from layers.grids.resolver import Resolver

    print(f"host: {host()}")
    scratch = None
    if args.db:
        url = make_url(admin_url()).set(database=args.db).render_as_string(hide_password=False)
    else:
        from demo.megacity.build import Options, build
        from layers.db.migrate import migrate

        scratch = f"bench_dask_{os.getpid()}"
        url = create_database(scratch)
        small: dict[str, Any] = (dict(grids=2_000, communities=200, streets=16, districts=4)
                                 if args.small else {})
        engine = make_engine(url=url)
        migrate(engine)
        build(engine, Options(cases=0, parts=0, **small), echo=lambda s: None)
        engine.dispose()
    try:
        engine = make_engine(url=url)
        started = time.perf_counter()
        snap = Resolver(engine).index.current()
        print(f"grid snapshot: {len(snap.codes):,} grids, built in "
              f"{time.perf_counter() - started:.1f} s")
        engine.dispose()
        xy = np.asarray([g.bounds for g in snap.locator.geoms])
        box = (xy[:, 0].min(), xy[:, 1].min(), xy[:, 2].max(), xy[:, 3].max())
        run(args, snap, box)
    finally:
        if scratch:
            drop_database(scratch)
    print(f"host at the end: {host()}")


def run(args: argparse.Namespace, snap: Any, box: tuple[float, float, float, float]) -> None:
    import dask
    from distributed import Client, LocalCluster

    from spatial.batch import resolve

    n = args.points // args.partitions * args.partitions
    rows: list[tuple[str, float, float]] = []
    # in one process, no dask: the same points partition by partition, resolved one by one
    def local() -> None:
        for i in range(args.partitions):
            resolve(points(i, n // args.partitions, box), snap,
                    category="category_key").groupby("district_code", dropna=False).size()

    gen_local, _ = timed(lambda: [points(i, n // args.partitions, box)
                                  for i in range(args.partitions)], 1)
    med, _ = timed(local, 1)
    rows.append(("one process, no dask", med, gen_local))
    for workers in [int(w) for w in args.workers.split(",")]:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          memory_limit="6GiB", dashboard_address=":0") as cluster, \
                Client(cluster):
            gdf = frame(n, args.partitions, box)
            started = time.perf_counter()
            job(gdf, snap).compute()
            first = time.perf_counter() - started
            gen, _ = timed(lambda g=gdf: g.map_partitions(len).compute(), args.runs)
            med, times = timed(lambda g=gdf: job(g, snap).compute(), args.runs)
            print(f"  {workers} worker(s): first run (snapshot scattered) {first:.1f} s, "
                  f"runs {', '.join(f'{t:.1f}' for t in times)} s")
            rows.append((f"LocalCluster, {workers} worker process(es)", med, gen))
    del dask
    print(f"\n{n:,} points over {len(snap.codes):,} street-shaped grids, "
          f"{args.partitions} partitions")
    print(f"| {'setup':<36} | {'job s':>7} | {'generation s':>12} | {'points/s (job)':>15} "
          f"| {'points/s (resolve)':>18} |")
    print(f"|{'-' * 38}|{'-' * 9}|{'-' * 14}|{'-' * 17}|{'-' * 20}|")
    for name, total, gen in rows:
        resolve_s = max(total - gen, 1e-9)
        print(f"| {name:<36} | {total:>7.1f} | {gen:>12.1f} | {n / total:>15,.0f} "
              f"| {n / resolve_s:>18,.0f} |")


if __name__ == "__main__":
    main()
