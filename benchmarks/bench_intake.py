"""Benchmark: case intake over HTTP on loopback vs a bare insert endpoint (the floor).

    python benchmarks/bench_intake.py [--seconds 20] [--concurrency 16] [--workers 1] [--small]

A dedicated database (created and dropped here) gets 100 unit grids over a 2 km box of
central Helsinki, departments and dispatch rules (city, district and grid level). Then, in the
same run, concurrent reporters (asyncio + httpx, one process) post cases for ``--seconds`` to

* ``POST /cases`` of the real service (uvicorn process(es), ``api.app:create_app``): resolve
  (in-memory locator) + dispatch proposal + duplicate check (ST_DWithin on open cases) + case
  and history rows, durable commit (synchronous_commit on);
* ``POST /floor`` of ``benchmarks/floor_app.py``: a bare FastAPI endpoint on the same stack that
  only inserts the same case row.

One uvicorn worker by default: on this machine uvicorn 0.54 with ``--workers 2`` answered even a
bare endpoint in ~50 ms at one request in flight (~5 ms with one worker), so more workers made
every figure worse; ``--workers`` is there to re-check elsewhere.

Reported: sustained cases/s, p50 / p99 latency, errors. Targets (2-core machine): ≥ 500 cases/s,
p99 ≤ 50 ms, within 2× of the floor. The load generator shares the machine's cores with the
servers and PostgreSQL, so the figures are a lower bound of what the service does alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import shapely
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scratch import create_database, drop_database  # noqa: E402  (benchmarks/, beside this script)

from layers.engine import make_engine  # noqa: E402
from layers.imports import load_areas, load_grids  # noqa: E402
from layers.migrate import migrate  # noqa: E402
from tests.live_server import free_port  # noqa: E402

BOX = (24.93, 60.16, 24.966, 60.178)
CATEGORIES = ["E0103", "E0102", "E0104", "P0120", "P0101"]


def seed(engine) -> None:  # noqa: ANN001
    area = shapely.box(*BOX)
    load_areas(engine, gpd.GeoDataFrame({"code": ["110101", "110101001", "110101001001"],
                                         "name": ["district", "street", "community"]},
                                        geometry=[area] * 3, crs=4326))
    xs, ys = np.linspace(BOX[0], BOX[2], 11), np.linspace(BOX[1], BOX[3], 11)
    cells = [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(10)
             for j in range(10)]
    load_grids(engine, gpd.GeoDataFrame({"community_code": ["110101001001"] * 100},
                                        geometry=cells, crs=4326), note="benchmark")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO department (code, name) VALUES ('D_CITY', 'city'), "
                          "('D_DIST', 'district'), ('D_GRID', 'grid team')"))
        grid = conn.execute(text("SELECT code FROM unit_grid ORDER BY code LIMIT 1")).scalar()
        for cat in CATEGORIES:
            conn.execute(text(
                "INSERT INTO dispatch_rule (category_key, area_level, area_code, "
                "department_code) VALUES (:c, 'city', NULL, 'D_CITY'), "
                "(:c, 'district', '110101', 'D_DIST'), (:c, 'grid', :g, 'D_GRID')"),
                {"c": cat, "g": grid})


def start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env})
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server {cmd} did not start")


def body(rng: random.Random) -> dict:
    return {"idempotency_key": uuid.uuid4().hex, "category": rng.choice(CATEGORIES),
            "lon": rng.uniform(BOX[0] + 1e-4, BOX[2] - 1e-4),
            "lat": rng.uniform(BOX[1] + 1e-4, BOX[3] - 1e-4),
            "description": rng.choice(["路面有油污", "垃圾堆放", "路灯不亮", "井盖破损"]),
            "source": "grid_worker", "reporter": f"W{rng.randint(1, 50)}"}


async def load(url: str, seconds: float, concurrency: int, warmup: int) -> dict:
    latencies: list[float] = []
    errors: dict[int, int] = {}
    rng = random.Random(7)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        for _ in range(warmup):
            await client.post(url, json=body(rng))
        stop = time.perf_counter() + seconds

        async def reporter() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await client.post(url, json=body(rng))
                dt = time.perf_counter() - t0
                if r.status_code in (200, 201):
                    latencies.append(dt)
                else:
                    errors[r.status_code] = errors.get(r.status_code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(reporter() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 100 else [float("nan")] * 99
    return {"ok": len(latencies), "errors": errors, "rate": len(latencies) / elapsed,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="3 s runs (development)")
    ap.add_argument("--no-version-trigger", action="store_true",
                    help="diagnosis only: disable the cases layer_version trigger in the "
                         "benchmark database to measure what the one hot counter row costs")
    args = ap.parse_args()
    seconds = 3.0 if args.small else args.seconds
    name = f"gridcore_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    engine = make_engine(url=url)
    procs: list[subprocess.Popen] = []
    try:
        migrate(engine)
        seed(engine)
        if args.no_version_trigger:
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE case_record DISABLE TRIGGER "
                                  "case_record_layer_version"))
        env = {"GRIDCORE_DATABASE_URL": url, "GRIDCORE_ENV": "development",
               "GRIDCORE_MEDIA_DIR": f"/tmp/{name}-media"}
        uv = [sys.executable, "-m", "uvicorn", "--factory", "--host", "127.0.0.1",
              "--workers", str(args.workers), "--log-level", "warning", "--no-access-log"]
        p1, p2 = free_port(), free_port()
        procs.append(start([*uv, "--port", str(p1), "api.app:create_app"], env, p1))
        procs.append(start([*uv, "--port", str(p2), "benchmarks.floor_app:create_floor_app"],
                           env, p2))
        results = {}
        for label, target in (("floor: bare insert", f"http://127.0.0.1:{p2}/floor"),
                              ("gridcore POST /cases", f"http://127.0.0.1:{p1}/cases")):
            results[label] = asyncio.run(load(target, seconds, args.concurrency, 100))
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM case_record")).scalar()
        print(f"intake benchmark: {seconds:.0f} s per target, {args.concurrency} concurrent "
              f"reporters, {args.workers} uvicorn worker(s) each, loopback, {rows} rows "
              "written in total")
        print(f"machine load average (1/5/15 min): {os.getloadavg()} on {os.cpu_count()} CPUs")
        print(f"{'target':24s} {'cases/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s}  errors")
        for label, r in results.items():
            print(f"{label:24s} {r['rate']:9.0f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f}  "
                  f"{r['errors'] or 0}")
        g, f = results["gridcore POST /cases"], results["floor: bare insert"]
        ratio = f["rate"] / g["rate"] if g["rate"] else float("inf")
        print(f"targets: ≥ 500 cases/s: {'met' if g['rate'] >= 500 else 'MISSED'} "
              f"({g['rate']:.0f}); p99 ≤ 50 ms: {'met' if g['p99_ms'] <= 50 else 'MISSED'} "
              f"({g['p99_ms']:.1f}); within 2× of the floor: "
              f"{'met' if ratio <= 2 else 'MISSED'} (floor/gridcore = {ratio:.2f})")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        engine.dispose()
        drop_database(name)


if __name__ == "__main__":
    main()
