"""Benchmark: case intake over HTTP on loopback vs a bare insert endpoint (the floor).

    python benchmarks/bench_intake.py [--seconds 20] [--rounds 3] [--concurrency 8,16]
                                      [--workers 2] [--small]

The city: a dedicated database (created and dropped here) holds one district of about
10 km × 10 km in Helsinki (``--box-km``): 5 streets, 25 communities, 2,500 unit grids of about
200 m × 200 m, 50,000 city parts (``--parts``: lamps, manhole covers, … of the taxonomy's
classes), departments, and dispatch rules at city, district, street and grid level.

The load: ``wrk`` (a C load generator, Debian package ``wrk``, installed by
``scripts/install.sh --test``) with ``benchmarks/intake.lua`` keeps ``--concurrency``
connections busy for ``--seconds``, at each level of that list in turn (8 and 16 by default).
Every request is a new report (its own idempotency key, a random point in the district, one of
five event / city-part classes). The targets, all warmed up first (3 s each), every run
starting from an empty case table (truncated):

Both servers run as ``gridcore serve --workers`` runs them: ``--workers`` uvicorn processes
(uvloop, httptools) on ``api.serving``'s supervisor, each listening on its own socket.

* ``POST /cases`` of the real service (``api.app:create_app``): resolve
  (in-memory locator) + nearest city part of the class within 30 m + dispatch proposal +
  duplicate candidates (open cases nearby, scored) + case, history and audit rows, durable
  commit (``synchronous_commit`` on); reports that arrive together are filed together
  (``api.intake_groups``);
* ``POST /floor`` of ``benchmarks/floor_app.py``: the same stack and plumbing (FastAPI,
  the same server processes and worker count, a request-only endpoint, the same hop
  to a plain thread executor, SQLAlchemy's pool with the same checkout check, psycopg2, the
  same prepared autocommit statement read on the driver cursor) with an endpoint that only
  inserts the same case row (every column intake fills), one insert per request. It runs
  twice, with 2 and with 4 threads per process, and each round compares gridcore with the
  faster of the two.

Rounds (``--rounds``, 3 by default): at each level the targets run one after the other,
``--rounds`` times, in alternating order, and the figures are the medians over the rounds; the
ratio is the median of the rounds' own ratios (floor and gridcore measured minutes apart on a
shared host drifted by ±15 % between single runs, enough to move the ratio by half a point).

Reported per target: sustained cases/s, p50 / p90 / p99 latency (wrk's own measurement),
non-2xx answers, each the median over the rounds, and the spread of the rate; for gridcore also
how much real work the cases of its last round did (grid found, part linked, duplicate
candidates offered), read back from the stored cases.
Targets (2-core machine): ≥ 500 cases/s, p99 ≤ 50 ms, within 2× of the floor. wrk, the servers
and PostgreSQL share the machine's 2 cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import shapely
from sqlalchemy import make_url, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scratch import admin_url, create_database, drop_database  # noqa: E402  (benchmarks/, beside this script)

from gridcore.taxonomy import Taxonomy  # noqa: E402
from layers.db.engine import make_engine  # noqa: E402
from layers.db.migrate import migrate  # noqa: E402
from layers.exchange.imports import load_areas, load_grids, load_parts  # noqa: E402
from tests.support.live_server import free_port  # noqa: E402

ORIGIN = (24.85, 60.15)  # south-west corner of the benchmark district
CATEGORIES = ["E0103", "E0102", "E0104", "P0120", "P0101"]  # must match intake.lua
LUA = Path(__file__).with_name("intake.lua")
# The floor runs with 2 and with 4 threads per process (``GRIDCORE_INTAKE_THREADS``): 4 is what
# it ran with before intake filed reports in groups, 2 is intake's count now and was the
# floor's best in one A/B at 8 connections (1,660 cases/s against 1,401). Either may win at a
# level on a given run, so each round's ratio is against the faster of the two.
FLOORS = {"floor: 2 threads": 2, "floor: 4 threads": 4}
OURS = "gridcore POST /cases"


def district_box(km: float) -> tuple[float, float, float, float]:
    lon0, lat0 = ORIGIN
    dlat = km / 111.32
    dlon = km / (111.32 * math.cos(math.radians(lat0 + dlat / 2)))
    return lon0, lat0, lon0 + dlon, lat0 + dlat


Box = tuple[float, float, float, float]


def _cells(box: Box, n: int) -> list[tuple[int, int, shapely.Polygon]]:
    xs, ys = np.linspace(box[0], box[2], n + 1), np.linspace(box[1], box[3], n + 1)
    return [(i, j, shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]))
            for i in range(n) for j in range(n)]


def seed(engine, box: tuple[float, float, float, float], parts: int) -> dict[str, int]:  # noqa: ANN001
    """District 110101 → 5 streets (columns) → 25 communities → 2,500 grids; parts; rules."""
    codes, names, geoms = ["110101"], ["benchmark district"], [shapely.box(*box)]
    x0, x1 = box[0], box[2]
    for s in range(5):
        sx0, sx1 = x0 + (x1 - x0) * s / 5, x0 + (x1 - x0) * (s + 1) / 5
        codes.append(f"110101{s + 1:03d}")
        names.append(f"street {s + 1}")
        geoms.append(shapely.box(sx0, box[1], sx1, box[3]))
    communities = []
    for i, j, cell in _cells(box, 5):  # community (i, j) lies in street i
        code = f"110101{i + 1:03d}{j + 1:03d}"
        communities.append((code, cell))
        codes.append(code)
        names.append(f"community {i + 1}-{j + 1}")
        geoms.append(cell)
    load_areas(engine, gpd.GeoDataFrame({"code": codes, "name": names}, geometry=geoms,
                                        crs=4326))
    grid_rows = [(code, cell) for code, community in communities
                 for _, _, cell in _cells(community.bounds, 10)]
    load_grids(engine, gpd.GeoDataFrame({"community_code": [c for c, _ in grid_rows]},
                                        geometry=[g for _, g in grid_rows], crs=4326),
               note="benchmark")
    rng = np.random.default_rng(11)
    classes = np.array([c.code for c in Taxonomy.default().parts()], dtype=object)
    # half of the parts are of the two city-part classes the reports use, so links happen
    hot = np.array(["0120", "0101"], dtype=object)
    part_classes = np.where(rng.random(parts) < 0.5, hot[rng.integers(0, 2, parts)],
                            classes[rng.integers(0, len(classes), parts)])
    load_parts(engine, gpd.GeoDataFrame(
        {"class_code": part_classes},
        geometry=shapely.points(rng.uniform(box[0], box[2], parts),
                                rng.uniform(box[1], box[3], parts)), crs=4326))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO department (code, name) VALUES ('D_CITY', 'city'), "
                          "('D_DIST', 'district'), ('D_STREET', 'street office'), "
                          "('D_GRID', 'grid team')"))
        grids = [r[0] for r in conn.execute(text(
            "SELECT code FROM unit_grid WHERE gen_to IS NULL ORDER BY code LIMIT 200"))]
        for cat in CATEGORIES:
            conn.execute(text(
                "INSERT INTO dispatch_rule (category_key, area_level, area_code, "
                "department_code) VALUES (:c, 'city', NULL, 'D_CITY'), "
                "(:c, 'district', '110101', 'D_DIST'), (:c, 'street', '110101002', "
                "'D_STREET')"), {"c": cat})
            conn.execute(text(
                "INSERT INTO dispatch_rule (category_key, area_level, area_code, "
                "department_code) SELECT :c, 'grid', g, 'D_GRID' FROM unnest(CAST(:g AS "
                "text[])) AS g"), {"c": cat, "g": grids})
        return {"grids": conn.execute(text("SELECT count(*) FROM unit_grid")).scalar_one(),
                "parts": conn.execute(text("SELECT count(*) FROM city_part")).scalar_one(),
                "rules": conn.execute(text("SELECT count(*) FROM dispatch_rule")).scalar_one()}


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


def wrk(url: str, seconds: float, concurrency: int, box: tuple[float, ...]) -> dict:
    """One wrk run; the Lua script's done() prints its figures as one JSON line."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
         "-s", str(LUA), url, "--", *(f"{v:.7f}" for v in box)],
        capture_output=True, text=True, check=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    figures["rate"] = figures["requests"] / (figures["duration_us"] / 1e6)
    errors = sum(figures[k] for k in ("non_2xx", "connect", "read", "write", "timeout"))
    figures["errors"] = errors
    figures["rate_ok"] = (figures["requests"] - errors) / (figures["duration_us"] / 1e6)
    return figures


def existing_database(name: str) -> str:
    return make_url(admin_url()).set(database=name).render_as_string(hide_password=False)


def survey_city(engine, box_km: float) -> tuple[dict[str, int], int, Box]:  # noqa: ANN001
    """An existing city (``--db``): its sizes, its last case id (the cases kept), and a
    ``box_km`` box around the middle of its current grids, where the reports fall."""
    with engine.connect() as conn:
        x0, y0, x1, y1 = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom) AS e FROM unit_grid WHERE gen_to IS NULL) s")).one()
        city = {k: int(conn.execute(text(q)).scalar_one()) for k, q in {
            "grids": "SELECT count(*) FROM unit_grid WHERE gen_to IS NULL",
            "parts": "SELECT count(*) FROM city_part",
            "rules": "SELECT count(*) FROM dispatch_rule",
            "history": "SELECT count(*) FROM case_key"}.items()}
        keep = int(conn.execute(text("SELECT coalesce(max(id), 0) FROM case_key")).scalar_one())
    lon0, lat0 = (x0 + x1) / 2, (y0 + y1) / 2
    dlat = box_km / 111.32 / 2
    dlon = box_km / (111.32 * math.cos(math.radians(lat0))) / 2
    return city, keep, (lon0 - dlon, lat0 - dlat, lon0 + dlon, lat0 + dlat)


def empty_cases(engine, keep: int = 0) -> None:  # noqa: ANN001
    """Remove the cases of the last run; the ``keep`` first (the stored history) stay, and
    what the case table's triggers keep beside the cases (the key registry, city health's day
    aggregates, the case cells) follows their removal. Their audit rows stay: the audit log is
    a hash chain, append-only."""
    with engine.begin() as conn:
        if not keep:
            conn.execute(text("TRUNCATE case_record, case_history, case_photo CASCADE"))
            return
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        # a group a server was still writing as the load stopped lands before or after the
        # clean-up, not between its statements
        conn.execute(text("LOCK TABLE case_key IN EXCLUSIVE MODE"))
        # the history is append-only (a trigger): this is a benchmark's clean-up, not a user's
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in ("case_photo", "case_history", "case_event"):
            conn.execute(text(f"DELETE FROM {table} WHERE case_id > :k"), {"k": keep})
        # the cases themselves with their triggers on: the registry, health days and cells
        conn.execute(text("SET LOCAL session_replication_role = origin"))
        conn.execute(text("DELETE FROM case_record WHERE id > :k"), {"k": keep})


def store_history(engine, box: tuple[float, ...], n: int) -> int:  # noqa: ANN001
    """``n`` settled (closed) cases over the five years before now, spread over the district
    and the classes, each with its report in the history: the history intake works beside
    (its duplicate search and indexes must not grow with it). Returns the last case id."""
    chunk = 100_000
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))  # minutes on a loaded host
        for lo in range(0, n, chunk):
            # two statements: a case's registry row (case_key, which the history's key
            # points at) is written by a trigger at the end of the cases' statement
            ids = conn.execute(text("""
                WITH c AS (
                    INSERT INTO case_record (idempotency_key, payload_hash, category_key,
                        description, geom, input_x, input_y, state, stage, created_at,
                        updated_at, closed_at, deadline_at, warn_at)
                    SELECT 'history-' || i, repeat('0', 64),
                           k.keys[1 + i % array_length(k.keys, 1)], '历史案件 stored case',
                           ST_SetSRID(ST_MakePoint(x, y), 4326), x, y, 'closed', NULL,
                           t, t + interval '2 days', t + interval '2 days',
                           t + interval '3 days', t + interval '2 days'
                    FROM (SELECT i, :x0 + random() * (:x1 - :x0) AS x,
                                 :y0 + random() * (:y1 - :y0) AS y,
                                 now() - interval '5 years' * random() - interval '1 day' AS t
                          FROM generate_series(:lo, :hi) i) s,
                         (SELECT array_agg(key ORDER BY key) AS keys FROM category) k
                    RETURNING id)
                SELECT min(id), max(id) FROM c"""),
                {"x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3], "lo": lo,
                 "hi": min(n, lo + chunk) - 1}).one()
            conn.execute(text("""
                INSERT INTO case_history (case_id, actor, role, action, from_state, to_state, at)
                SELECT id, 'history', 'system', 'report', NULL, 'closed', created_at
                FROM case_record WHERE id BETWEEN :a AND :b"""), {"a": ids[0], "b": ids[1]})
        last = int(conn.execute(text("SELECT coalesce(max(id), 0) FROM case_record"))
                   .scalar_one())
    settle(engine)
    return last


def settle(engine, analyze: bool = True) -> None:  # noqa: ANN001
    """VACUUM (ANALYZE) the case tables: the freshly stored history (all its pages new, no
    visibility map, no statistics) or the last run's deleted cases (dead index entries the
    duplicate search and the open-case indexes would step over). Without it autovacuum wakes
    up on them in the middle of a measured round (session 3's unexplained collapse at 8
    connections beside a stored history).

    The statistics are taken with open cases present (``analyze`` after the warm-up, not after
    a clean-up): a city always has some. Statistics that say no case is open (a settled
    history, the warm-up's cases deleted) made PostgreSQL plan the duplicate search as a walk
    over every open case of the partition instead of the open cases' spatial index: 10 ms
    instead of 0.4 ms per search once a round had filed a few thousand
    (benchmarks/README.md, "Session 5 (branch intake5)")."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SET statement_timeout = 0"))
        for table in ("case_record", "case_key", "case_history", "case_event", "case_cell",
                      "health_dirty", "case_eval_dirty", "audit_log"):
            if conn.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar():
                conn.execute(text(f"VACUUM {'ANALYZE ' if analyze else ''}{table}"))


def work_done(engine, keep: int = 0) -> dict[str, float]:  # noqa: ANN001
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT count(*), avg((grid_code IS NOT NULL)::int), "
            "avg((part_code IS NOT NULL)::int) FILTER (WHERE category_key LIKE 'P%'), "
            "avg(jsonb_array_length(intake -> 'duplicates')), "
            "avg((jsonb_array_length(intake -> 'duplicates') > 0)::int), "
            "avg((proposed_department IS NOT NULL)::int) FROM case_record WHERE id > :k"),
            {"k": keep}).one()
    return {"cases": row[0], "grid": float(row[1] or 0), "part": float(row[2] or 0),
            "dups": float(row[3] or 0), "with_dups": float(row[4] or 0),
            "proposed": float(row[5] or 0)}


def _median(values: list[float]) -> float:
    return float(np.median(values))


def report(city: dict[str, int], args: argparse.Namespace, seconds: float, rounds: int,
           levels: list[int], runs: dict[tuple[int, str], list[dict]],
           work: dict[int, dict[str, float]]) -> None:
    print(f"intake benchmark: {seconds:.0f} s per run, {rounds} round(s) per target and load "
          f"(medians), {args.workers} uvicorn worker(s) each, wrk on loopback; district "
          f"{args.box_km:g} km × {args.box_km:g} km, {city['grids']:,} grids, "
          f"{city['parts']:,} city parts, {city['rules']:,} dispatch rules, "
          f"{city.get('history', 0):,} settled cases stored beforehand")
    print(f"machine load average (1/5/15 min): "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'connections':>11s} {'target':22s} {'cases/s':>8s} {'(min–max)':>11s} "
          f"{'p50 ms':>7s} {'p90 ms':>7s} {'p99 ms':>7s} {'errors':>6s}")
    for (conc, label), rs in runs.items():
        rates = [r["rate_ok"] for r in rs]
        print(f"{conc:11d} {label:22s} {_median(rates):8.0f} "
              f"{f'{min(rates):.0f}–{max(rates):.0f}':>11s} "
              f"{_median([r['p50_us'] for r in rs]) / 1e3:7.1f} "
              f"{_median([r['p90_us'] for r in rs]) / 1e3:7.1f} "
              f"{_median([r['p99_us'] for r in rs]) / 1e3:7.1f} "
              f"{sum(r['errors'] for r in rs):6d}")
    for conc in levels:
        w, ours = work[conc], runs[conc, OURS]
        floor = [max(rs, key=lambda r: r["rate_ok"])
                 for rs in zip(*(runs[conc, label] for label in FLOORS), strict=True)]
        print(f"{conc} connections, work per gridcore case ({w['cases']:,} stored in the last "
              f"round): grid found {w['grid']:.0%}, department proposed {w['proposed']:.0%}, "
              f"part linked {w['part']:.0%} of city-part reports, duplicate candidates offered "
              f"{w['dups']:.2f} on average ({w['with_dups']:.0%} of cases have one or more)")
        ratios = [f["rate_ok"] / g["rate_ok"] if g["rate_ok"] else float("inf")
                  for f, g in zip(floor, ours, strict=True)]
        rate = _median([g["rate_ok"] for g in ours])
        p99 = _median([g["p99_us"] for g in ours]) / 1e3
        ratio = _median(ratios)
        print(f"  targets: ≥ 500 cases/s: {'met' if rate >= 500 else 'MISSED'} ({rate:.0f}); "
              f"p99 ≤ 50 ms: {'met' if p99 <= 50 else 'MISSED'} ({p99:.1f}); within 2× of the "
              f"floor: {'met' if ratio <= 2 else 'MISSED'} (floor/gridcore = {ratio:.2f}, "
              f"rounds {', '.join(f'{r:.2f}' for r in ratios)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", default="8,16",
                    help="open connections (reporters in flight), comma-separated levels")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes each")
    ap.add_argument("--rounds", type=int, default=None,
                    help="runs of each target per level, in alternating order (medians); "
                         "3, or 1 with --small")
    ap.add_argument("--box-km", type=float, default=10.0, help="side of the district")
    ap.add_argument("--parts", type=int, default=50_000)
    ap.add_argument("--history", type=int, default=0,
                    help="settled cases stored before the runs and kept (a large history)")
    ap.add_argument("--small", action="store_true",
                    help="5 s runs, one round, 5,000 parts (development)")
    ap.add_argument("--no-vacuum", action="store_true",
                    help="no VACUUM of the case tables between runs (a 10 M megacity: "
                         "autovacuum's, minutes each)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the benchmark's database (its name is printed) for --db")
    ap.add_argument("--db", default=None,
                    help="an existing database (a kept one, or a megacity): no seeding; the "
                         "reports fall in a --box-km box in the middle of its grids; the cases "
                         "stored before are kept and every case the runs add is removed after")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: scripts/install.sh --test installs it "
                         "(Debian: apt-get install wrk)")
    seconds = 5.0 if args.small else args.seconds
    rounds = max(1, args.rounds or (1 if args.small else 3))
    box = district_box(args.box_km)
    name = args.db or f"gridcore_bench_{uuid.uuid4().hex[:8]}"
    url = existing_database(name) if args.db else create_database(name)
    engine = make_engine(url=url)
    procs: list[subprocess.Popen] = []
    try:
        if args.db:
            city, keep, box = survey_city(engine, args.box_km)
        else:
            migrate(engine)
            city = seed(engine, box, 5_000 if args.small else args.parts)
            keep = store_history(engine, box, args.history) if args.history else 0
            city["history"] = args.history
        env = {"GRIDCORE_DATABASE_URL": url, "GRIDCORE_ENV": "development",
               "GRIDCORE_MEDIA_DIR": f"/tmp/{name}-media"}
        uv = [sys.executable, "-m", "api.serving", "--host", "127.0.0.1",
              "--workers", str(args.workers), "--log-level", "warning"]
        port = free_port()
        procs.append(start([*uv, "--port", str(port), "api.app:create_app"], env, port))
        targets = [(OURS, f"http://127.0.0.1:{port}/cases")]
        for label, threads in FLOORS.items():
            port = free_port()
            procs.append(start([*uv, "--port", str(port), "benchmarks.floor_app:create_floor_app"],
                               {**env, "GRIDCORE_INTAKE_THREADS": str(threads)}, port))
            targets.insert(0, (label, f"http://127.0.0.1:{port}/floor"))
        levels = [int(c) for c in args.concurrency.split(",")]
        for _, target in targets:
            wrk(target, 3, levels[0], box)  # warm-up: pools, plans, grid snapshots, caches
        if not args.db:  # a megacity's statistics are its own (with its open cases)
            settle(engine)  # statistics with the warm-up's open cases (see settle)
        runs: dict[tuple[int, str], list[dict]] = {}
        work: dict[int, dict[str, float]] = {}
        for conc in levels:
            for rnd in range(rounds):
                for label, target in targets[::1 if rnd % 2 == 0 else -1]:
                    empty_cases(engine, keep)
                    if keep and not args.no_vacuum:
                        settle(engine, analyze=False)  # the deleted cases' dead rows
                    runs.setdefault((conc, label), []).append(wrk(target, seconds, conc, box))
                    if label == OURS:
                        work[conc] = work_done(engine, keep)
        report(city, args, seconds, rounds, levels, runs, work)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        if args.db or keep:
            empty_cases(engine, keep)  # a kept or shared database: as it was before the runs
        engine.dispose()
        if args.keep or args.db:
            print(f"database kept: {name} (bench_intake.py --db {name})")
        else:
            drop_database(name)


if __name__ == "__main__":
    main()
