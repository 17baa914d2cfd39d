"""City health (城市体检): all grids' indicators and scores for one window, and one grid's
explained health — next to a naive per-grid query loop, in one run.

    .venv/bin/python benchmarks/bench_health.py          # 20,000 grids, 1 M cases, 1 M parts
    .venv/bin/python benchmarks/bench_health.py --small  # 2,000 grids, 100 k cases and parts

Data is generated with set-based SQL in a dedicated database of the embedded cluster (or of the
server named by GRIDCORE_TEST_ADMIN_URL): grids of ~1 ha in 200 communities of one district,
cases over one year (≈ 8 % in the 30-day window) with register / dispatch / close history rows,
5 % reworked and 3 % parked, parts 90 % intact. Targets: all grids ≤ 1 s, one grid ≤ 20 ms.
The naive loop runs the same aggregation once per grid (``code=`` filter) over a sample of grids
and is extrapolated to all grids (said so in the output).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridcore.calendar import WorkingCalendar  # noqa: E402
from gridcore.health import HealthModel, Window, score_grids  # noqa: E402
from layers.db.engine import make_engine  # noqa: E402
from layers.db.migrate import migrate  # noqa: E402
from layers.health import inventory as health_inventory  # noqa: E402
from layers.health import scores as layer_health  # noqa: E402

TARGET_ALL_S, TARGET_ONE_MS = 1.0, 20.0
WINDOW = "2026-09-01/2026-10-01"


def admin_url() -> str:
    url = os.environ.get("GRIDCORE_TEST_ADMIN_URL")
    if url:
        return url
    from layers.db.cluster import EmbeddedCluster

    return EmbeddedCluster().start().url()


GENERATE = [
    # district → 10 streets → 20 communities each → grids; ~100 m squares in a 200-wide layout
    """INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2)
       SELECT '320508', 'district', 'bench district', NULL,
              ST_Multi(ST_MakeEnvelope(120.5, 31.2, 120.7, 31.4, 4326)), 4e8""",
    """INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2)
       SELECT '320508' || lpad(s::text, 3, '0'), 'street', 'street ' || s, '320508',
              ST_Multi(ST_MakeEnvelope(120.5, 31.2, 120.7, 31.4, 4326)), 4e7
       FROM generate_series(1, 10) s""",
    """INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2)
       SELECT '320508' || lpad(s::text, 3, '0') || lpad(c::text, 3, '0'), 'community',
              'community ' || s || '-' || c, '320508' || lpad(s::text, 3, '0'),
              ST_Multi(ST_MakeEnvelope(120.5, 31.2, 120.7, 31.4, 4326)), 2e6
       FROM generate_series(1, 10) s, generate_series(1, 20) c""",
    "INSERT INTO grid_generation (id, note) VALUES (1, 'bench')",
    """INSERT INTO unit_grid (code, name, community_code, geom, area_m2, gen_from)
       SELECT '320508' || lpad((1 + (i / :per_comm) / 20)::text, 3, '0')
                       || lpad((1 + (i / :per_comm) % 20)::text, 3, '0')
                       || lpad((1 + i % :per_comm)::text, 3, '0'),
              'grid ' || i,
              '320508' || lpad((1 + (i / :per_comm) / 20)::text, 3, '0')
                       || lpad((1 + (i / :per_comm) % 20)::text, 3, '0'),
              ST_Multi(ST_MakeEnvelope(120.5 + (i % 200) * 0.001, 31.2 + (i / 200) * 0.001,
                                       120.501 + (i % 200) * 0.001, 31.201 + (i / 200) * 0.001,
                                       4326)), 10000, 1
       FROM generate_series(0, :grids - 1) i""",
    """INSERT INTO department (code, name) VALUES ('D1', 'bench department')""",
    """CREATE TEMP TABLE g AS SELECT row_number() OVER (ORDER BY code) - 1 AS i, id, code
       FROM unit_grid""",
    """CREATE TEMP TABLE cat AS SELECT row_number() OVER (ORDER BY key) - 1 AS i, key
       FROM category WHERE kind = 'event' OR key IN ('P0101', 'P0102', 'P0103')""",
    """INSERT INTO city_part (code, class_code, state, grid_code, geom)
       SELECT '320508' || cls || lpad(row_number() OVER (PARTITION BY cls ORDER BY n)::text,
                                      6, '0'), cls,
              CASE WHEN r < 0.90 THEN 'intact' WHEN r < 0.96 THEN 'damaged'
                   WHEN r < 0.99 THEN 'missing' ELSE 'occupied' END,
              g.code, ST_SetSRID(ST_MakePoint(120.5 + random() * 0.2, 31.2 + random() * 0.1),
                                 4326)
       FROM (SELECT n, (ARRAY['0101','0102','0103','0105','0201','0301','0302','0401',
                              '0402','0403'])[1 + n % 10] AS cls, random() AS r,
                    (random() * (:grids - 1))::int AS gi
             FROM generate_series(1, :parts) n) p JOIN g ON g.i = p.gi""",
    """INSERT INTO case_record (idempotency_key, payload_hash, category_key, geom, input_x,
           input_y, grid_id, grid_code, community_code, street_code, district_code, h3, state,
           stage, stage_started_at, stage_limit, deadline_at, created_at, updated_at, closed_at)
       SELECT 'b' || n, repeat('0', 64), cat.key, ST_SetSRID(ST_MakePoint(120.6, 31.3), 4326),
              120.6, 31.3, g.id, g.code, left(g.code, 12), left(g.code, 9), left(g.code, 6),
              'c' || (random() * 40000)::int,
              CASE WHEN r < 0.75 THEN 'closed' WHEN r < 0.78 THEN 'voided'
                   WHEN r < 0.85 THEN 'dispatched' WHEN r < 0.90 THEN 'reported'
                   ELSE 'handled' END,
              'handle', t, '1wd', t + interval '1 day', t, t,
              CASE WHEN r < 0.75 THEN t + random() * interval '5 days' END
       FROM (SELECT n, random() AS r, (random() * (:grids - 1))::int AS gi,
                    (random() * (SELECT count(*) - 1 FROM cat))::int AS ci,
                    timestamptz '2026-01-01 00:00+08' + random() * interval '365 days' AS t
             FROM generate_series(1, :cases) n) c
       JOIN g ON g.i = c.gi JOIN cat ON cat.i = c.ci
       ORDER BY c.t  -- ids grow with time, as intake assigns them""",
    # history as the lifecycle writes it (register, dispatch, close; some rework / park)
    """INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state)
       SELECT id, created_at + interval '10 minutes', 'bench', 'system', 'register',
              'verified', 'registered'
       FROM case_record WHERE state <> 'reported' AND state <> 'voided' ORDER BY 2""",
    """INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state)
       SELECT id, created_at + interval '20 minutes', 'bench', 'system', 'dispatch',
              'registered', 'dispatched'
       FROM case_record WHERE state IN ('closed', 'dispatched', 'handled') ORDER BY 2""",
    """INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state)
       SELECT id, created_at + interval '1 hour', 'bench', 'system', 'rework', 'checked',
              'rework'
       FROM case_record WHERE state = 'closed' AND id % 20 = 0 ORDER BY 2""",
    """INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state)
       SELECT id, created_at + CASE a WHEN 'park' THEN interval '2 hours'
                                      ELSE interval '26 hours' END,
              'bench', 'admin', a, 'accepted', 'accepted'
       FROM case_record, unnest(ARRAY['park', 'unpark']) a
       WHERE state = 'closed' AND id % 33 = 1 ORDER BY 2""",
    # the lifecycle records each parked interval on the case when it is unparked
    """UPDATE case_record
       SET parked_intervals = jsonb_build_array(jsonb_build_array(
               created_at + interval '2 hours', created_at + interval '26 hours')),
           parked_seconds = 86400
       WHERE state = 'closed' AND id % 33 = 1""",
    """INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state)
       SELECT id, closed_at, 'bench', 'system', 'close', 'checked', 'closed'
       FROM case_record WHERE state = 'closed' ORDER BY 2""",
]


def generate(engine, grids: int, cases: int, parts: int) -> None:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    params = {"grids": grids, "cases": cases, "parts": parts, "per_comm": grids // 200}
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))  # generation takes minutes
        for sql in GENERATE:
            conn.execute(text(sql), params)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SET statement_timeout = 0"))
        conn.execute(text("VACUUM ANALYZE"))
        counts = {t_: conn.execute(text(f"SELECT count(*) FROM {t_}")).scalar_one()
                  for t_ in ("unit_grid", "city_part", "case_record", "case_history")}
    print(f"generated {counts} in {time.perf_counter() - t:.1f} s")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grids", type=int, default=20_000)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=1_000_000)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--sample", type=int, default=200, help="grids in the naive loop")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse a kept database of the same size instead of generating")
    args = parser.parse_args()
    if args.small:
        args.grids, args.cases, args.parts = 2_000, 100_000, 100_000
    name = f"gridcore_bench_health_{args.grids}"
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": name}).scalar()
        reuse = bool(args.reuse and exists)
        if not reuse:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url()).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url=url)
    try:
        if reuse:
            print(f"reusing the kept database {name}")
        else:
            migrate(engine)
            generate(engine, args.grids, args.cases, args.parts)
        run(engine, args)
    finally:
        engine.dispose()
        if not (args.keep or args.reuse):
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def run(engine, args) -> None:  # type: ignore[no-untyped-def]
    model, cal = HealthModel.default(), WorkingCalendar.chinese()
    window = Window.parse(WINDOW, datetime.now(UTC))
    with engine.connect() as conn:
        in_window = conn.execute(text("SELECT count(*) FROM case_record WHERE created_at >= :s "
                                      "AND created_at < :e"),
                                 {"s": window.start, "e": window.end}).scalar_one()
    print(f"window {WINDOW}: {in_window} cases of {args.cases}")

    # 1. all grids, set-based: SQL aggregation + numpy scoring. "cold": nothing cached;
    #    "warm": the parts / 9+X inventory (window-independent) cached by layer version.
    def all_grids(cold: bool) -> tuple[float, float, Any, Any]:
        layer_health._CACHE.clear()
        if cold:
            health_inventory._INVENTORY.clear()
        t0 = time.perf_counter()
        with engine.connect() as conn:
            agg = layer_health.aggregate(conn, window, "grid", cal, model.repeat_days,
                                         names=model.aggregate_names())
        t1 = time.perf_counter()
        table = score_grids(model, agg.keys, agg.columns)
        return t1 - t0, time.perf_counter() - t1, agg, table

    results = {}
    for mode in ("cold", "warm"):
        runs = [all_grids(mode == "cold") for _ in range(3)]
        totals = [a + b for a, b, _, _ in runs]
        results[mode] = statistics.median(totals)
        agg, table = runs[-1][2], runs[-1][3]
        print(f"all {len(agg.keys)} grids, set-based, {mode}: median {results[mode]:.3f} s "
              f"(SQL {statistics.median(r[0] for r in runs):.3f} s + scoring "
              f"{ms(statistics.median(r[1] for r in runs))}); runs {[round(t, 3) for t in totals]}")
    all_s = results["cold"]
    assert table.total.shape == (len(agg.keys),)

    # 2. one grid's explained health
    code = agg.keys[len(agg.keys) // 2]
    layer_health._CACHE.clear()
    layer_health.score(engine, model, window, "grid", cal)  # warms the level table
    warm = []
    for _ in range(50):
        t = time.perf_counter()
        health = layer_health.scored(engine, model, window, "grid", code, cal)
        health.table.explain(code)
        health.aggregates.row(code)
        warm.append(time.perf_counter() - t)
    own = []
    with engine.connect() as conn:
        for _ in range(20):
            t = time.perf_counter()
            layer_health.aggregate(conn, window, "grid", cal, model.repeat_days, code=code)
            own.append(time.perf_counter() - t)
    one_ms = statistics.median(warm) * 1000
    print(f"one grid explained (level table cached, cache checked against layer versions): "
          f"median {one_ms:.2f} ms, p90 {sorted(warm)[int(len(warm) * 0.9)] * 1000:.2f} ms")
    print(f"one grid's own aggregates alone (code filter, no cache): median "
          f"{ms(statistics.median(own))}")

    # 2b. the same through HTTP (TestClient in process): current + previous window, links
    from fastapi.testclient import TestClient

    from api.app import create_app

    os.environ.setdefault("GRIDCORE_SECRET_KEY", "bench-" + "x" * 40)  # a throwaway app
    # A throwaway app on a benchmark database: development mode lets a manager act by header
    # instead of signing in (the sign-in is not what is measured).
    os.environ["GRIDCORE_ENV"] = "development"

    with TestClient(create_app(engine=engine),
                    headers={"X-Role": "manager", "X-Actor": "bench"}) as client:
        url = f"/grids/{code}/health"
        t = time.perf_counter()
        first = client.get(url, params={"window": WINDOW})
        first_s = time.perf_counter() - t
        assert first.status_code == 200, first.text
        http = []
        for _ in range(30):
            t = time.perf_counter()
            r = client.get(url, params={"window": WINDOW})
            http.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
    print(f"GET /grids/{{code}}/health: first request (the app's own model: scores both the "
          f"window and the previous one for all grids) {ms(first_s)}, then median "
          f"{ms(statistics.median(http))}")

    # 3. naive per-grid loop (the same aggregation, one query set per grid), sampled
    sample = agg.keys[:: max(1, len(agg.keys) // args.sample)][: args.sample]
    t = time.perf_counter()
    with engine.connect() as conn:
        for g in sample:
            layer_health.aggregate(conn, window, "grid", cal, model.repeat_days, code=g)
    loop_s = (time.perf_counter() - t) / len(sample) * len(agg.keys)
    print(f"naive per-grid loop: {len(sample)} grids sampled, extrapolated to "
          f"{len(agg.keys)} grids: {loop_s:.1f} s ({loop_s / all_s:.0f}× the set-based run)")

    warm_s = results["warm"]
    verdict = "met" if all_s <= TARGET_ALL_S else "MISSED"
    warm_verdict = "met" if warm_s <= TARGET_ALL_S else "MISSED"
    print(f"TARGET all grids ≤ {TARGET_ALL_S} s: cold {verdict} ({all_s:.3f} s); "
          f"inventory cached {warm_verdict} ({warm_s:.3f} s)")
    print(f"TARGET one grid ≤ {TARGET_ONE_MS} ms: "
          f"{'met' if one_ms <= TARGET_ONE_MS else 'MISSED'} ({one_ms:.2f} ms cached; "
          f"{ms(statistics.median(own))} for its own aggregates uncached)")


if __name__ == "__main__":
    main()
