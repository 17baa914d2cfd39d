"""Generate the synthetic megacity (``demo.megacity``) into a database of its own.

    .venv/bin/python benchmarks/megacity.py --cases 1000000 --parts 1000000 --db megacity_1m
    .venv/bin/python benchmarks/megacity.py --cases 10000000 --parts 10000000 --db megacity_10m
    .venv/bin/python benchmarks/megacity.py --small            # 2,000 grids, 50,000 cases

The database is created in the embedded cluster (``GRIDCORE_DATA_DIR``,
``GRIDCORE_CLUSTER_PORT``) or on the server of ``GRIDCORE_BENCH_ADMIN_URL``, migrated, and kept
(``--drop`` drops it at the end; ``--replace`` drops an existing one first). Deterministic from
``--seed``. Prints each step's time, the table sizes and the host's load.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import admin_url, create_database, drop_database  # noqa: E402  (benchmarks/, beside this script)

from demo.megacity.build import Options, build  # noqa: E402
from gridcore.settings import Settings  # noqa: E402
from layers.db.engine import make_engine  # noqa: E402
from layers.db.migrate import migrate  # noqa: E402

SMALL = {"cases": 50_000, "parts": 50_000, "grids": 2_000, "communities": 200, "streets": 16,
         "districts": 4}


def host() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} "
            f"cores, load average {load}")


def sizes(url: str) -> list[tuple[str, int, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [(r[0], int(r[1]), r[2]) for r in conn.execute(text(
                "SELECT c.relname, c.reltuples::bigint, "
                "pg_size_pretty(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                "AND c.relkind IN ('r', 'p') ORDER BY pg_total_relation_size(c.oid) DESC "
                "LIMIT 8"))]
    finally:
        engine.dispose()


def database_exists(name: str) -> bool:
    admin = create_engine(admin_url())
    try:
        with admin.connect() as conn:
            return bool(conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                     {"n": name}).scalar())
    finally:
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=None, help="default: as many as cases")
    parser.add_argument("--grids", type=int, default=60_000)
    parser.add_argument("--communities", type=int, default=6_000)
    parser.add_argument("--streets", type=int, default=215)
    parser.add_argument("--districts", type=int, default=16)
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--db", default=None, help="database name (default megacity_<cases>)")
    parser.add_argument("--replace", action="store_true", help="drop an existing database")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument("--small", action="store_true", help="a few seconds' city (smoke test)")
    args = parser.parse_args()
    values = {k: getattr(args, k) for k in ("cases", "grids", "communities", "streets",
                                            "districts")}
    if args.small:
        values.update({k: v for k, v in SMALL.items() if k != "parts"})
    parts = SMALL["parts"] if args.small else (args.parts if args.parts is not None
                                               else values["cases"])
    name = args.db or f"megacity_{values['cases']}"
    print(f"host: {host()}")
    if database_exists(name):
        if not args.replace:
            sys.exit(f"database {name} exists: --replace to drop it first, or --db another")
        drop_database(name)
    url = create_database(name)
    print(f"database: {name}")
    # The service's statement limit guards interactive requests; a build's COPY chunks and index
    # builds take minutes at 10 M on a loaded host, and a build cancelled after an hour is lost.
    database = Settings().database
    database = database.model_copy(update={"statement_timeout_ms": 0})
    print("statement limit: none for the build (the service keeps GRIDCORE_STATEMENT_TIMEOUT_MS)")
    engine = make_engine(database, url=url)
    try:
        migrate(engine)
        opts = Options(parts=parts, years=args.years, seed=args.seed, **values)
        timings = build(engine, opts)
        print(f"total: {sum(timings.steps.values()):.0f} s; host: {host()}")
        print("largest tables (rows, total size with indexes):")
        for table, rows, size in sizes(url):
            print(f"  {table:<24} {rows:>12,} {size:>10}")
    finally:
        engine.dispose()
        if args.drop:
            drop_database(name)


if __name__ == "__main__":
    main()
