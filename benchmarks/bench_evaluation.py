"""Evaluation (考评) and briefings at 1 M cases: every department's and every grid worker's
evaluation for a month, one party explained, a district's briefing PDF — next to the naive
peer, a loop that explains every department one by one (what a report script would do).

    .venv/bin/python benchmarks/bench_evaluation.py           # 1 M cases over one year
    .venv/bin/python benchmarks/bench_evaluation.py --small   # 100 k cases

Data is generated with set-based SQL in a dedicated database (as bench_health.py): 20,000 grids
of ~1 ha in 200 communities of 10 streets, one grid worker per community, 40 departments;
cases over 2026 with the history the lifecycle writes — the report (70 % by the grid worker of
the community, 30 % hotline), verify, register, dispatch (with its department), accept,
feedback, check, close; 5 % reworked, 4 % sent back and re-dispatched, 3 % parked a day, 10 %
left open — and some approved appeals. Targets: all departments and workers for a month
≤ 1 s, one party explained ≤ 50 ms, a district briefing PDF ≤ 15 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import admin_url  # noqa: E402  (benchmarks/, beside this script)

from gridcore.calendar import WorkingCalendar  # noqa: E402
from gridcore.evaluation import EvaluationModel, Period  # noqa: E402
from gridcore.settings import CaseSettings  # noqa: E402
from layers.db.engine import make_engine  # noqa: E402
from layers.db.migrate import migrate  # noqa: E402
from layers.evaluation import store  # noqa: E402
from layers.evaluation.evaluate import evaluate, explain  # noqa: E402

TARGET_ALL_S, TARGET_ONE_MS, TARGET_BRIEFING_S = 1.0, 50.0, 15.0
PERIOD = "2026-09"


GENERATE = [
    """INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2)
       SELECT '320508', 'district', '基准区', NULL,
              ST_Multi(ST_MakeEnvelope(120.5, 31.2, 120.7, 31.3, 4326)), 2e8""",
    """INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2)
       SELECT '320508' || lpad(s::text, 3, '0'), 'street', '第' || s || '街道', '320508',
              ST_Multi(ST_MakeEnvelope(120.5 + (s - 1) * 0.02, 31.2, 120.52 + (s - 1) * 0.02,
                                       31.3, 4326)), 2e7
       FROM generate_series(1, 10) s""",
    """INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2)
       SELECT '320508' || lpad(s::text, 3, '0') || lpad(c::text, 3, '0'), 'community',
              '社区' || s || '-' || c, '320508' || lpad(s::text, 3, '0'),
              ST_Multi(ST_MakeEnvelope(120.5, 31.2, 120.7, 31.3, 4326)), 1e6
       FROM generate_series(1, 10) s, generate_series(1, 20) c""",
    "INSERT INTO grid_generation (id, note) VALUES (1, 'bench')",
    # 100 grids per community: a 10 × 10 block of ~100 m squares; the street's 20 communities
    # side by side in its 0.02° column
    """INSERT INTO unit_grid (code, name, community_code, geom, area_m2, gen_from, worker_codes)
       SELECT cc || lpad((g + 1)::text, 3, '0'), 'grid ' || cc || '-' || g, cc,
              ST_Multi(ST_MakeEnvelope(x, y, x + 0.001, y + 0.001, 4326)), 9500, 1,
              ARRAY['W' || cc]::varchar[]
       FROM (SELECT '320508' || lpad(s::text, 3, '0') || lpad(c::text, 3, '0') AS cc, g,
                    120.5 + (s - 1) * 0.02 + ((c - 1) % 2) * 0.01 + (g % 10) * 0.001 AS x,
                    31.2 + ((c - 1) / 2) * 0.01 + (g / 10) * 0.001 AS y
             FROM generate_series(1, 10) s, generate_series(1, 20) c,
                  generate_series(0, 99) g) q""",
    """INSERT INTO grid_worker (code, name)
       SELECT 'W' || code, '网格员 ' || code FROM admin_area WHERE level = 'community'""",
    """INSERT INTO department (code, name)
       SELECT 'D' || lpad(d::text, 2, '0'), '部门' || d FROM generate_series(1, 40) d""",
    """CREATE TEMP TABLE g AS SELECT row_number() OVER (ORDER BY code) - 1 AS i, id, code,
                                   community_code FROM unit_grid""",
    """CREATE TEMP TABLE cat AS SELECT row_number() OVER (ORDER BY key) - 1 AS i, key
       FROM category WHERE kind = 'event'""",
    """CREATE TEMP TABLE plan AS
       SELECT n, g.id AS grid_id, g.code AS grid_code, g.community_code, cat.key,
              t, random() AS r, random() AS r2,
              'D' || lpad((1 + (n::bigint * 7919) % 40)::text, 2, '0') AS dept
       FROM (SELECT n, (random() * (:grids - 1))::int AS gi,
                    (random() * (SELECT count(*) - 1 FROM cat))::int AS ci,
                    timestamptz '2026-01-01 08:30+08' + random() * interval '365 days' AS t
             FROM generate_series(1, :cases) n) c
       JOIN g ON g.i = c.gi JOIN cat ON cat.i = c.ci
       ORDER BY c.t""",
    """INSERT INTO case_record (idempotency_key, payload_hash, category_key, geom, input_x,
           input_y, grid_id, grid_code, community_code, street_code, district_code, h3, state,
           source, department_code, refused_departments, stage, stage_started_at, stage_limit,
           deadline_at, created_at, updated_at, closed_at, parked_intervals, parked_seconds)
       SELECT 'b' || n, repeat('0', 64), key, ST_SetSRID(ST_MakePoint(120.6, 31.25), 4326),
              120.6, 31.25, grid_id, grid_code, community_code, left(grid_code, 9),
              left(grid_code, 6), 'c' || (n % 40000),
              CASE WHEN r < 0.85 THEN 'closed' WHEN r < 0.88 THEN 'voided'
                   WHEN r < 0.95 THEN 'accepted' ELSE 'reported' END,
              CASE WHEN r2 < 0.7 THEN 'grid_worker' ELSE 'hotline' END,
              CASE WHEN r < 0.95 AND r >= 0.88 OR r < 0.85 THEN dept END,
              CASE WHEN n % 25 = 0 AND (r < 0.85 OR r >= 0.88 AND r < 0.95)
                   THEN ARRAY['D' || lpad((1 + (n * 31) % 40)::text, 2, '0')]::varchar[]
                   ELSE '{}' END,
              'handle', t, '1wd', t + interval '1 day', t, t,
              CASE WHEN r < 0.85 THEN t + interval '2 hours' + r2 * interval '3 days' END,
              CASE WHEN n % 33 = 1 AND r < 0.85 THEN jsonb_build_array(jsonb_build_array(
                  t + interval '40 minutes', t + interval '1 day 40 minutes')) ELSE '[]' END,
              CASE WHEN n % 33 = 1 AND r < 0.85 THEN 86400 ELSE 0 END
       FROM plan ORDER BY t""",
    # the history as the lifecycle writes it, in time order per step
    """INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state)
       SELECT c.id, c.created_at, CASE WHEN c.source = 'grid_worker' THEN 'W' || c.community_code
                                       ELSE '12345' END,
              CASE WHEN c.source = 'grid_worker' THEN 'grid_worker' ELSE 'system' END,
              'report', NULL, 'reported'
       FROM case_record c ORDER BY c.id""",
    """INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state)
       SELECT c.id, c.created_at + interval '10 minutes' + (c.id % 7) * interval '10 minutes',
              'W' || c.community_code, 'grid_worker', 'verify', 'reported', 'verified'
       FROM case_record c WHERE c.state <> 'reported' ORDER BY c.id""",
    """INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state)
       SELECT c.id, c.created_at + interval '20 minutes', 'bench', 'dispatcher', 'void',
              'verified', 'voided'
       FROM case_record c WHERE c.state = 'voided' ORDER BY c.id""",
    """INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state,
           details)
       SELECT c.id, c.created_at + interval '25 minutes', 'bench', 'dispatcher', a.action,
              a.f, a.t, a.details
       FROM case_record c, LATERAL (VALUES
           ('register', 'verified', 'registered', '{}'::jsonb, 1),
           ('dispatch', 'registered', 'dispatched',
            jsonb_build_object('department', coalesce(c.refused_departments[1],
                                                      c.department_code)), 2),
           ('send_back', 'dispatched', 'sent_back',
            jsonb_build_object('refused_by', c.refused_departments[1]), 3),
           ('dispatch', 'sent_back', 'dispatched',
            jsonb_build_object('department', c.department_code), 4),
           ('accept', 'dispatched', 'accepted', '{}'::jsonb, 5)) AS a(action, f, t, details, k)
       WHERE c.department_code IS NOT NULL
         AND (a.k IN (1, 2, 5) OR c.refused_departments <> '{}')
       ORDER BY c.id, a.k""",
    """INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state)
       SELECT c.id, c.closed_at - a.back, a.actor, a.role, a.action, a.f, a.t
       FROM case_record c, LATERAL (VALUES
           ('feed_back', c.department_code, 'department_handler', 'handled', 'fed_back',
            interval '30 minutes'),
           ('check', 'W' || c.community_code, 'grid_worker', 'fed_back', 'checked',
            interval '10 minutes'),
           ('close', 'bench', 'dispatcher', 'checked', 'closed', interval '0 minutes'))
           AS a(action, actor, role, f, t, back)
       WHERE c.state = 'closed' ORDER BY c.id, a.back DESC""",
    """INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state)
       SELECT c.id, c.closed_at - interval '20 minutes', 'bench', 'dispatcher', 'rework',
              'checked', 'rework'
       FROM case_record c WHERE c.state = 'closed' AND c.id % 20 = 0 ORDER BY c.id""",
    # approved appeals: every 500th late-ish closed case, for its department
    """INSERT INTO appeal (case_id, party_kind, party_code, penalty, period, reason, state,
           filed_by, filed_role, filed_at, decide_by, decided_by, decided_at, decision_reason)
       SELECT c.id, 'department', c.department_code, 'overdue', '2026', 'bench', 'approved',
              'bench', 'department_handler', c.closed_at, c.closed_at + interval '7 days',
              'boss', c.closed_at + interval '1 day', 'bench'
       FROM case_record c WHERE c.state = 'closed' AND c.id % 500 = 0""",
]


def generate(engine, grids: int, cases: int) -> None:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        for sql in GENERATE:
            conn.execute(text(sql), {"grids": grids, "cases": cases})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SET statement_timeout = 0"))
        conn.execute(text("VACUUM ANALYZE"))
        counts = {t_: conn.execute(text(f"SELECT count(*) FROM {t_}")).scalar_one()
                  for t_ in ("unit_grid", "case_record", "case_history", "appeal")}
    print(f"generated {counts} in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()  # as after any bulk load: the per-case evaluation facts
    rows = store.rebuild(engine, WorkingCalendar.chinese(), EvaluationModel.default())
    print(f"evaluation facts of {rows} cases built in {time.perf_counter() - t:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept database")
    parser.add_argument("--no-briefing", action="store_true")
    args = parser.parse_args()
    if args.small:
        args.cases = 100_000
    grids = 20_000
    name = f"gridcore_bench_eval_{args.cases}"
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
            generate(engine, grids, args.cases)
        run(engine, args)
    finally:
        engine.dispose()
        if not (args.keep or args.reuse):
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else f"missed by {value / target - 1:.0%}"


def run(engine, args) -> None:  # type: ignore[no-untyped-def]
    model, cal, period = EvaluationModel.default(), WorkingCalendar.chinese(), \
        Period.parse(PERIOD)
    w = period.window(cal.timezone)
    with engine.connect() as conn:
        in_period = conn.execute(text("SELECT count(*) FROM case_record WHERE created_at >= :s "
                                      "AND created_at < :e"),
                                 {"s": w.start, "e": w.end}).scalar_one()
    print(f"period {PERIOD}: {in_period} cases reported in it, {args.cases} in all")

    # 1. every department and every grid worker for the month (one cohort of facts)
    runs = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        result = evaluate(engine, model, period, cal, [("department", None), ("worker", None)])
        runs.append(time.perf_counter() - t)
    all_s = statistics.median(runs)
    deps, workers = result["department"], result["worker"]
    print(f"all {len(deps.keys)} departments and {len(workers.keys)} workers: median "
          f"{all_s:.3f} s (runs {[round(r, 3) for r in runs]}); target ≤ {TARGET_ALL_S} s: "
          f"{verdict(all_s, TARGET_ALL_S)}")
    # the same from the history (what an evaluation does while the facts are not current)
    refresh, store.refresh = store.refresh, lambda *a, **k: False  # type: ignore[assignment]
    try:
        t = time.perf_counter()
        evaluate(engine, model, period, cal, [("department", None), ("worker", None)])
        print(f"peer — the same recounted from the history: {time.perf_counter() - t:.3f} s")
    finally:
        store.refresh = refresh  # type: ignore[method-assign]
    t = time.perf_counter()
    evaluate(engine, model, period, cal, [("area", "street"), ("area", "community")])
    print(f"all streets and communities: {time.perf_counter() - t:.3f} s")

    # 2. one party explained (its figures after and before appeals, the cases behind them)
    for kind, code in (("department", deps.keys[len(deps.keys) // 2]),
                       ("worker", workers.keys[len(workers.keys) // 2]),
                       ("area", "320508005")):
        level = "street" if kind == "area" else None
        times = []
        for _ in range(10 * args.rounds):
            t = time.perf_counter()
            explain(engine, model, period, cal, kind, code, level)
            times.append(time.perf_counter() - t)
        one = statistics.median(times) * 1000
        print(f"one {kind} explained ({code}): median {one:.1f} ms; target ≤ {TARGET_ONE_MS} "
              f"ms: {verdict(one, TARGET_ONE_MS)}")

    # the peer: every department explained one by one
    t = time.perf_counter()
    for code in deps.keys:
        explain(engine, model, period, cal, "department", code)
    loop = time.perf_counter() - t
    print(f"peer — every department explained one by one: {loop:.2f} s "
          f"({loop / max(all_s, 1e-9):.1f}× the set-based evaluation of departments and "
          f"workers)")

    # 3. the district's briefing PDF
    if not args.no_briefing:
        from api.routes.briefing_doc import briefing_pdf

        cases = CaseSettings(calendar="chinese", city_timezone="Asia/Shanghai")
        times = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            pdf = briefing_pdf(engine, cases, model, period, "320508")
            times.append(time.perf_counter() - t)
        b = statistics.median(times)
        print(f"district briefing PDF ({len(pdf) / 1e6:.1f} MB): median {b:.1f} s (runs "
              f"{[round(x, 1) for x in times]}); target ≤ {TARGET_BRIEFING_S} s: "
              f"{verdict(b, TARGET_BRIEFING_S)}")


if __name__ == "__main__":
    main()
