"""Benchmark: ``gridcore import cases`` of a legacy system's history (1 M rows ≤ 60 s).

    python benchmarks/bench_import_cases.py [--rows 1000000] [--small]

The file: the real SF 311 sample (../shared/data, read in place) resampled to N rows with new
ids, each moved by up to ±300 m (5 % moved far outside the city, 3 % without coordinates),
written as CSV to a temporary directory. The city: SF's 41 neighbourhoods as communities and
its 195 census tracts as unit grids, its 122 agencies as departments, the mapping table of
tests/support/legacy.py. A dedicated database is created and dropped by this script.

Measured, in the same run against the same server:
1. ``import_cases`` (what ``gridcore import cases`` runs) into an empty case table: read,
   check, map, locate, binary COPY into staging, insert with history rows (the bulk lane:
   indexes rebuilt once after the insert);
2. the same file again (every row unchanged: the re-import's read, hash and compare);
3. a second system's N rows into the table that now holds N cases (no bulk lane: indexes
   maintained row by row);
and, as a floor, PostgreSQL's own ``COPY`` of the same CSV into an unindexed table of text
columns (no checking, no mapping, no place, no history: what the bytes alone cost).
Target: step 1 ≤ 60 s for 1 M rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from scratch import create_database, drop_database  # benchmarks/, the script's directory
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from layers.db.engine import make_engine  # noqa: E402
from layers.db.migrate import migrate  # noqa: E402
from layers.exchange.imports import CaseFields, import_cases, import_departments  # noqa: E402
from layers.exchange.imports.report import ImportReport  # noqa: E402
from tests.support.imports import load_sf  # noqa: E402
from tests.support.legacy import (  # noqa: E402
    SF_OPTIONS,
    sf_frame,
    write_sf_departments,
    write_sf_mapping,
)


def legacy_file(folder: Path, n: int, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    base = sf_frame()
    rows = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    rows["CaseID"] = [f"B{i:08d}" for i in range(n)]
    lat = pd.to_numeric(rows["Lat"]).to_numpy() + rng.uniform(-0.0027, 0.0027, n)
    lon = pd.to_numeric(rows["Long"]).to_numpy() + rng.uniform(-0.0034, 0.0034, n)
    far = rng.random(n) < 0.05
    lon[far] += rng.uniform(0.3, 1.0, int(far.sum()))
    blank = rng.random(n) < 0.03
    rows["Lat"] = np.where(blank, "", np.round(lat, 7).astype(str))
    rows["Long"] = np.where(blank, "", np.round(lon, 7).astype(str))
    path = folder / "legacy_cases.csv"
    rows.to_csv(path, index=False)
    return path


def run(engine, path: Path, folder: Path, system: str) -> tuple[float, ImportReport]:  # noqa: ANN001
    started = time.perf_counter()
    fields = CaseFields(**SF_OPTIONS)  # type: ignore[arg-type]  # the tests' option dict
    report = import_cases(engine, path, system=system, fields=fields,
                          mapping=write_sf_mapping(folder), unmapped="other",
                          timezone="America/Los_Angeles")
    return time.perf_counter() - started, report


def floor(engine, path: Path) -> float:  # noqa: ANN001
    header = pd.read_csv(path, nrows=0).columns
    cols = ", ".join(f'"c{i}" text' for i in range(len(header)))
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE floor_copy ({cols})"))
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur, path.open("rb") as f:
            cur.copy_expert("COPY floor_copy FROM STDIN WITH (FORMAT csv, HEADER true)", f)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--small", action="store_true", help="100,000 rows")
    args = ap.parse_args()
    n = 100_000 if args.small else args.rows
    name = f"gridcore_bench_cases_{uuid.uuid4().hex[:6]}"
    url = create_database(name)
    engine = make_engine(url=url)
    print(f"bench_import_cases — {n:,} rows — {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}")
    try:
        migrate(engine)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            load_sf(engine)
            import_departments(engine, write_sf_departments(folder))
            started = time.perf_counter()
            path = legacy_file(folder, n)
            print(f"  file: {path.stat().st_size / 2**20:.0f} MiB CSV, made in "
                  f"{time.perf_counter() - started:.0f} s")
            seconds, report = run(engine, path, folder, "bench")
            print(f"  1. import into an empty case table   {seconds:6.1f} s  "
                  f"({n / seconds:,.0f} rows/s) — {report.summary().splitlines()[0]}")
            verdict = "met" if seconds <= 60 * n / 1_000_000 else "MISSED"
            print(f"     target ≤ 60 s per 1 M rows: {verdict}")
            seconds, report = run(engine, path, folder, "bench")
            print(f"  2. the same file again (unchanged)   {seconds:6.1f} s — "
                  f"{report.summary().splitlines()[0]}")
            seconds, report = run(engine, path, folder, "bench-second-system")
            print(f"  3. another system's {n:,} rows into a table of {n:,}  {seconds:6.1f} s — "
                  f"{report.inserted:,} inserted")
            print(f"  floor: COPY of the CSV into an unindexed text table  "
                  f"{floor(engine, path):6.1f} s")
    finally:
        engine.dispose()
        drop_database(name)


if __name__ == "__main__":
    main()
