"""Which time partitions of ``case_record`` the routes on recent windows read (issue 25).

    .venv/bin/python benchmarks/bench_partitions.py --db part_1m [--runs 3] [--json out.json]

Drives the routes users call (the app in-process, as ``bench_scale.py``) on a megacity
database as it is — it does NOT migrate it, so the same database can be measured before and
after ``*_case_partitions`` — and records every SELECT the route sends that reads
``case_record``. Each is then run again under ``EXPLAIN (ANALYZE, BUFFERS)``; the table gives
the route's median time, and per route the partitions the plans name and the ones actually
executed (runtime pruning leaves the others "never executed"), with the shared buffers read.

Routes: health of all grids for the last 30 days of the data, ``GET /cases`` first page (a
dispatcher, no filter), the evaluation of the last month, and one case by id (a lookup without
the partition key: every partition's index is probed — the cost partitioning adds).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_scale import DISPATCHER, MANAGER, _ok, host  # noqa: E402  (benchmarks/)
from scratch import admin_url  # noqa: E402


def _scans(node: dict[str, Any], out: list[tuple[str, bool]]) -> None:
    name = node.get("Relation Name", "")
    if name.startswith("case_record"):
        out.append((name, node.get("Actual Loops", 0) > 0))
    for child in node.get("Plans", []):
        _scans(child, out)


def explain(engine: Any, statements: list[str]) -> dict[str, Any]:
    from sqlalchemy import text

    planned: set[str] = set()
    executed: set[str] = set()
    blocks = 0
    plans = []
    with engine.connect() as conn:
        for sql in statements:
            plan = conn.execute(text("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
                                     + sql.replace(":", r"\:"))).scalar_one()
            root = plan[0]["Plan"]
            plans.append(plan[0])
            scans: list[tuple[str, bool]] = []
            _scans(root, scans)
            planned |= {n for n, _ in scans}
            executed |= {n for n, ran in scans if ran}
            blocks += root.get("Shared Hit Blocks", 0) + root.get("Shared Read Blocks", 0)
            conn.rollback()  # an explained CREATE TEMP TABLE … AS goes again
    return {"statements": len(statements), "planned": sorted(planned),
            "executed": sorted(executed), "shared_blocks": blocks, "plans": plans}


def run(url: str, runs: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient
    from sqlalchemy import Engine, event, text

    from api.app import create_app
    from gridcore.settings import DatabaseSettings, SecuritySettings, Settings
    from layers.db.engine import make_engine
    from layers.health import scores as health_scores

    engine = make_engine(url=url)
    recorded: list[str] = []
    recording = [False]

    @event.listens_for(Engine, "before_cursor_execute")  # every engine the app makes
    def _record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        head = re.sub(r"^(\s*--[^\n]*\n)*", "", statement).lstrip().upper()
        reads = head.startswith(("SELECT", "WITH", "CREATE TEMP")) and "FOR UPDATE" not in head
        if recording[0] and "case_record" in statement and reads:
            recorded.append(cursor.mogrify(statement, parameters).decode())

    with engine.connect() as conn:
        last, case_id, kind = conn.execute(text(
            "SELECT max(created_at), max(id), (SELECT relkind FROM pg_class "
            "WHERE oid = 'case_record'::regclass) FROM case_record")).one()
    end = (last + timedelta(days=1)).date()
    settings = Settings(database=DatabaseSettings(database_url=url),
                        security=SecuritySettings(env="development"))
    routes = {
        "health 30d (all grids)": ("/health/rankings", {
            "level": "grid", "window": f"{end - timedelta(days=30)}/{end}"}, MANAGER),
        "GET /cases first page": ("/cases", {"limit": 50}, DISPATCHER),
        "evaluation month": ("/evaluation/department",
                             {"period": f"{end - timedelta(days=1):%Y-%m}"}, MANAGER),
        "GET /cases/{id}": (f"/cases/{case_id}", {}, DISPATCHER),
    }
    out: dict[str, Any] = {"host": host(), "partitioned": kind == "p", "routes": {}}
    print(f"host: {out['host']}; case_record partitioned: {out['partitioned']}")
    with TestClient(create_app(settings, engine=engine)) as client:
        for name, (path, params, headers) in routes.items():
            times = []
            for i in range(runs):
                health_scores._CACHE.clear()
                recording[0] = i == 0
                started = time.perf_counter()
                _ok(client.get(path, params=params, headers=headers))
                times.append((time.perf_counter() - started) * 1000)
                recording[0] = False
            plans = explain(engine, recorded)
            recorded.clear()
            out["routes"][name] = {"ms": round(statistics.median(times), 1),  # plans too
                                   "runs": [round(t, 1) for t in times], **plans}
            print(f"  {name:<24} {statistics.median(times):>8.1f} ms  "
                  f"{plans['statements']} statement(s) on case_record; partitions planned "
                  f"{len(plans['planned'])}, executed {plans['executed']}; "
                  f"{plans['shared_blocks']:,} buffers")
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="a megacity database of the cluster")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    from sqlalchemy import make_url

    url = make_url(admin_url()).set(database=args.db).render_as_string(hide_password=False)
    results = run(url, args.runs)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
