"""Vector tiles: gridcore against tipg, side by side on the same tables, in one run.

    .venv/bin/python benchmarks/bench_tiles.py            # 12,000 grids, 60,000 parts, 20,000 cases
    .venv/bin/python benchmarks/bench_tiles.py --small    # 1,200 / 6,000 / 2,000

Synthetic ~110 m square grids, parts and cases around central Helsinki are written to a scratch
database of the embedded cluster (or GRIDCORE_TEST_ADMIN_URL's server). Both servers run as
separate uvicorn processes with one worker each; tipg (PyPI) runs from its own venv under
.cache/tipg-venv (its pinned deps differ), created on first use. For each layer and zoom
z10–z16 a block of tiles around the centre is fetched once from a freshly started server
("cold": nothing in gridcore's tile cache; PostgreSQL's buffers are warm for both, prewarmed
first) and then again several times ("warm"). Prints tiles/s (4 client threads) and p50/p99.
Targets: warm throughput ≥ 2× tipg; cold z14 p50 ≤ 10 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from layers.db.engine import make_engine  # noqa: E402
from layers.db.migrate import migrate  # noqa: E402
from tests.support.thread_server import free_port  # noqa: E402

TIPG_VENV = REPO / ".cache" / "tipg-venv"
LON0, LAT0, D = 24.90, 60.15, 0.001  # grid cells: 0.002° lon × 0.001° lat ≈ 111 m
CENTRE = (24.95, 60.18)
LAYERS = {  # ours → (tipg collection, properties asked of tipg: the same attributes)
    "grids": ("public.unit_grid", "code,name,community_code,area_m2,gen_from"),
    "parts": ("public.city_part", "code,class_code,name,state,grid_code"),
    "cases": ("public.case_record", "id,public_no,state,stage,category_key,department_code,"
                                    "grid_code"),
}
TARGETS = {"warm_vs_tipg": 2.0, "cold_z14_p50_ms": 10.0}


def admin_url() -> str:
    url = os.environ.get("GRIDCORE_TEST_ADMIN_URL")
    if url:
        return url
    from layers.db.cluster import EmbeddedCluster

    return EmbeddedCluster().start().url()


def fill(engine, cols: int, rows: int, parts: int, cases: int) -> None:  # type: ignore[no-untyped-def]
    """Grids cols × rows, parts and cases spread over them; SQL so it takes seconds."""
    with engine.begin() as conn:
        conn.execute(text(f"""
            INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2) VALUES
            ('110101', 'district', 'D', NULL, ST_Multi(ST_MakeEnvelope(24.8, 60.1, 25.2, 60.3,
              4326)), 1),
            ('110101001', 'street', 'S', '110101', ST_Multi(ST_MakeEnvelope(24.8, 60.1, 25.2,
              60.3, 4326)), 1);
            INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2)
            SELECT '110101001' || lpad(c::text, 3, '0'), 'community', 'C' || c, '110101001',
                   ST_Multi(ST_MakeEnvelope(24.8, 60.1, 25.2, 60.3, 4326)), 1
            FROM generate_series(1, 999) c;
            INSERT INTO grid_generation (id) VALUES (1);
            INSERT INTO unit_grid (code, name, community_code, geom, area_m2, gen_from)
            SELECT '110101001' || lpad((1 + i / 999)::text, 3, '0')
                       || lpad((1 + i % 999)::text, 3, '0'),
                   'grid ' || i, '110101001' || lpad((1 + i / 999)::text, 3, '0'),
                   ST_Multi(ST_MakeEnvelope({LON0} + (i % {cols}) * {2 * D},
                       {LAT0} + (i / {cols}) * {D}, {LON0} + (i % {cols} + 1) * {2 * D},
                       {LAT0} + (i / {cols} + 1) * {D}, 4326)), 12300, 1
            FROM generate_series(0, {cols * rows - 1}) i;
            INSERT INTO city_part (code, class_code, name, state, geom)
            SELECT '110101' || (ARRAY['0101','0102','0120','0204','0301'])[1 + i % 5]
                       || lpad(i::text, 6, '0'),
                   (ARRAY['0101','0102','0120','0204','0301'])[1 + i % 5], 'part ' || i,
                   (ARRAY['intact','intact','intact','damaged','missing'])[1 + i % 5],
                   ST_SetSRID(ST_MakePoint({LON0} + random() * {cols * 2 * D},
                       {LAT0} + random() * {rows * D}), 4326)
            FROM generate_series(1, {parts}) i;
            INSERT INTO case_record (idempotency_key, payload_hash, category_key, geom,
                input_x, input_y, state, stage, warn_at, deadline_at)
            SELECT 'bench-' || i, repeat('0', 64), 'E0103',
                   ST_SetSRID(ST_MakePoint({LON0} + random() * {cols * 2 * D},
                       {LAT0} + random() * {rows * D}), 4326), 0, 0,
                   (ARRAY['reported','dispatched','handled','closed'])[1 + i % 4], 'handle',
                   now() + make_interval(hours => (i % 7) - 3),
                   now() + make_interval(hours => (i % 7) - 2)
            FROM generate_series(1, {cases}) i;
        """))
        import h3

        rows_ = conn.execute(text("SELECT id, ST_X(geom), ST_Y(geom) FROM case_record")).all()
        conn.execute(text(
            "UPDATE case_record c SET h3 = u.h FROM unnest(CAST(:i AS bigint[]), "
            "CAST(:h AS text[])) AS u(i, h) WHERE c.id = u.i"),
            {"i": [r[0] for r in rows_], "h": [h3.latlng_to_cell(r[2], r[1], 10)
                                               for r in rows_]})
        conn.execute(text("ANALYZE"))


def tiles_for(z: int, span: int) -> list[tuple[int, int, int]]:
    import math

    n = 2 ** z
    x = int((CENTRE[0] + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(CENTRE[1]))) / math.pi) / 2 * n)
    half = span // 2
    return [(z, x + dx, y + dy) for dx in range(-half, span - half)
            for dy in range(-half, span - half)]


def start(cmd: list[str], env: dict[str, str], url: str) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=REPO)
    for _ in range(600):
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            error = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"{cmd[0]} died: {error[-2000:]}")
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"{cmd} did not start")


def fetch_all(urls: list[str], threads: int) -> tuple[list[float], float, int]:
    """Latencies (ms), wall time (s), bytes; ``threads`` clients with keep-alive."""
    def run(chunk: list[str]) -> tuple[list[float], int]:
        lat, size = [], 0
        with httpx.Client(timeout=60) as client:
            for u in chunk:
                t = time.perf_counter()
                r = client.get(u)
                lat.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
                size += len(r.content)
        return lat, size
    chunks = [urls[i::threads] for i in range(threads)]
    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        done = list(pool.map(run, chunks))
    wall = time.perf_counter() - t
    return [v for lat, _ in done for v in lat], wall, sum(s for _, s in done)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def bench(name: str, base: str, urls: dict[str, list[str]], warm_rounds: int,
          threads: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key, us in urls.items():  # cold: each tile once, one client (latency as seen)
        lat, wall, size = fetch_all(us, 1)
        out[f"cold {key}"] = {"n": len(us), "tiles_s": len(us) / wall, "p50": pct(lat, 50),
                              "p99": pct(lat, 99), "kb": size / len(us) / 1024}
    for key, us in urls.items():
        lat, wall, size = fetch_all(us * warm_rounds, threads)
        out[f"warm {key}"] = {"n": len(lat), "tiles_s": len(lat) / wall,
                              "p50": pct(lat, 50), "p99": pct(lat, 99),
                              "kb": size / len(lat) / 1024}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--span", type=int, default=3, help="tiles per side of each zoom's block")
    ap.add_argument("--warm-rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    cols, rows, parts, cases = (40, 30, 6000, 2000) if args.small else (120, 100, 60000, 20000)
    if not (TIPG_VENV / "bin" / "uvicorn").exists():
        subprocess.run([sys.executable, "-m", "venv", str(TIPG_VENV)], check=True)
        subprocess.run([str(TIPG_VENV / "bin" / "pip"), "install", "-q", "tipg", "uvicorn"],
                       check=True)
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    db = f"gridcore_bench_tiles_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    url = make_url(admin_url()).set(database=db)
    procs: list[subprocess.Popen] = []
    try:
        engine = make_engine(url=url.render_as_string(hide_password=False))
        migrate(engine)
        t = time.perf_counter()
        fill(engine, cols, rows, parts, cases)
        print(f"data: {cols * rows:,} grids, {parts:,} parts, {cases:,} cases "
              f"({time.perf_counter() - t:.1f} s to write)")
        ours_port, tipg_port = free_port(), free_port()
        # tipg wants a TCP URL (its settings require a host); the cluster listens on loopback.
        port = int(url.port or str(url.query.get("port") or 5432))
        host = url.host or "127.0.0.1"
        plain = url.set(drivername="postgresql", query={}, host=host, port=port) \
            .render_as_string(hide_password=False)
        ours_env = {"GRIDCORE_DATABASE_URL": url.render_as_string(hide_password=False),
                    "GRIDCORE_ENV": "development",
                    "GRIDCORE_RATE_PER_S": "0"}  # tipg has no rate limit either
        tipg_env = {"DATABASE_URL": plain, "TIPG_DB_SCHEMAS": '["public"]',
                    "TIPG_MAX_FEATURES_PER_TILE": "100000", "TIPG_DEFAULT_MINZOOM": "0"}
        ours_cmd = [str(REPO / ".venv/bin/python"), "-m", "uvicorn", "--factory",
                    "api.app:create_app", "--port", str(ours_port), "--log-level", "warning",
                    "--no-access-log"]
        tipg_cmd = [str(TIPG_VENV / "bin/uvicorn"), "tipg.main:app", "--port", str(tipg_port),
                    "--log-level", "warning", "--no-access-log"]
        zooms = range(10, 17)
        ours_base, tipg_base = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{tipg_port}"
        ours_urls = {f"{layer} z{z}": [
            f"{ours_base}/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"
            for z, x, y in tiles_for(z, args.span)] for layer in LAYERS for z in zooms}
        tipg_urls = {f"{layer} z{z}": [
            f"{tipg_base}/collections/{coll}/tiles/WebMercatorQuad/{z}/{x}/{y}?properties={props}"
            for z, x, y in tiles_for(z, args.span)]
            for layer, (coll, props) in LAYERS.items() for z in zooms}
        with engine.connect() as conn:  # prewarm PostgreSQL's buffers for both
            for table in ("unit_grid", "city_part", "case_record"):
                conn.execute(text(f"SELECT count(*), ST_Extent(geom) FROM {table}"))
        results = {}
        for name, cmd, env, base, urls in (
                ("gridcore", ours_cmd, ours_env, ours_base, ours_urls),
                ("tipg", tipg_cmd, tipg_env, tipg_base, tipg_urls)):
            proc = start(cmd, env, f"{base}/collections")
            procs.append(proc)
            results[name] = bench(name, base, urls, args.warm_rounds, args.threads)
            proc.terminate()
            proc.wait(timeout=30)
        report(results)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": db})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}"'))


def report(results: dict[str, dict[str, dict[str, float]]]) -> None:
    """Rows where gridcore serves an empty tile by design (city parts below z12) are shown
    but left out of the totals; cases below z14 are H3 hexagons for gridcore, raw points for
    tipg (that is the design, and the work differs)."""
    ours, tipg = results["gridcore"], results["tipg"]
    print(f"\n{'':16} {'gridcore/s':>10} {'p50':>6} {'p99':>6} {'KB':>6}   "
          f"{'tipg/s':>7} {'p50':>6} {'p99':>6} {'KB':>6}   {'ratio':>5}  (ms, KB per tile)")
    compared = []
    for key in ours:
        a, b = ours[key], tipg[key]
        note = ""
        if a["kb"] == 0 and b["kb"] > 0:
            note = "  empty by design"
        else:
            compared.append(key)
        if key.split()[1] == "cases" and int(key.split("z")[-1]) < 14:
            note = "  H3 hexagons"
        print(f"{key:16} {a['tiles_s']:10.0f} {a['p50']:6.1f} {a['p99']:6.1f} {a['kb']:6.1f}   "
              f"{b['tiles_s']:7.0f} {b['p50']:6.1f} {b['p99']:6.1f} {b['kb']:6.1f}   "
              f"{a['tiles_s'] / b['tiles_s']:5.2f}{note}")

    def total(res: dict, kind: str) -> float:
        rows = [res[k] for k in compared if k.startswith(kind)]
        return sum(r["n"] for r in rows) / sum(r["n"] / r["tiles_s"] for r in rows)
    warm_ratio = total(ours, "warm") / total(tipg, "warm")
    cold_ratio = total(ours, "cold") / total(tipg, "cold")
    z14 = statistics.median(v["p50"] for k, v in ours.items() if k.startswith("cold")
                            and k.endswith("z14"))
    z14_tipg = statistics.median(v["p50"] for k, v in tipg.items() if k.startswith("cold")
                                 and k.endswith("z14"))
    print(f"\nwarm throughput, z10–z16 (compared rows): gridcore {total(ours, 'warm'):.0f} "
          f"tiles/s, tipg {total(tipg, 'warm'):.0f} tiles/s → {warm_ratio:.2f}× "
          f"(target ≥ {TARGETS['warm_vs_tipg']}×: "
          f"{'met' if warm_ratio >= TARGETS['warm_vs_tipg'] else 'MISSED'})")
    print(f"cold throughput: gridcore {total(ours, 'cold'):.0f} tiles/s, tipg "
          f"{total(tipg, 'cold'):.0f} tiles/s → {cold_ratio:.2f}×")
    print(f"cold z14 p50 (median over layers): gridcore {z14:.1f} ms, tipg {z14_tipg:.1f} ms "
          f"(target ≤ {TARGETS['cold_z14_p50_ms']} ms: "
          f"{'met' if z14 <= TARGETS['cold_z14_p50_ms'] else 'MISSED'})")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
