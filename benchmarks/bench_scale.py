"""The interactive paths against the size of the history: a megacity of N cases.

    .venv/bin/python benchmarks/bench_scale.py --db megacity_1000000      # a made megacity
    .venv/bin/python benchmarks/bench_scale.py --cases 1000000            # makes it first
    .venv/bin/python benchmarks/bench_scale.py --small                    # smoke test (s)
    .venv/bin/python benchmarks/bench_scale.py --plot r1.json r3.json r10.json -o scale.png

Each measurement drives the HTTP route users call (the app in-process, httpx's ASGI client:
the whole stack but the socket) on a megacity made by ``benchmarks/megacity.py`` (street-
shaped grids, the area tree, N parts, N cases over five years with their whole history):

- **health, all grids**: ``GET /health/rankings?level=grid`` for the last 30 days and the
  last year of the data (the health cache emptied before each run: a cold computation);
- **evaluation, a month**: ``GET /evaluation/department?period=YYYY-MM`` (the last month);
- **queues and lists**: ``GET /cases`` first page (a dispatcher, no filter; and one street),
  ``GET /cases/overdue`` (督办) first page;
- **tiles, cold**: parts, cases (all five years) and open cases (as the /map page asks),
  zooms 10–16, random tiles over the city, the tile cache emptied before each (p50 and p99
  over ``--tiles`` tiles per zoom and layer);
- **recent window plan**: ``EXPLAIN (ANALYZE, BUFFERS)`` of the cases of the last 30 days,
  with the number of case rows and partitions it touched.

Timings are medians of ``--runs`` runs; every table carries the date, the machine and the load
average, since this host is shared. ``--json FILE`` keeps the figures; ``--plot`` draws time
against history size from several such files. Targets (issue 25): health ≤ 1 s, evaluation of
a month ≤ 1 s, first pages ≤ 100 ms, cold tiles p99 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import admin_url, create_database, drop_database  # noqa: E402  (benchmarks/, beside this script)

TARGETS_MS = {"health 30d": 1000, "health 365d": 1000, "evaluation month": 1000,
              "cases first page": 100, "cases first page, one street": 100,
              "overdue first page": 100, "tiles parts p99": 100, "tiles cases p99": 100,
              "tiles cases open p99": 100}
DISPATCHER = {"X-Role": "dispatcher", "X-Actor": "bench"}
MANAGER = {"X-Role": "manager", "X-Actor": "bench"}


def host() -> dict[str, Any]:
    return {"date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "machine": platform.node(),
            "cpus": os.cpu_count(), "load": [round(x, 1) for x in os.getloadavg()],
            "python": platform.python_version()}


def median_ms(fn: Callable[[], Any], runs: int, before: Callable[[], None] | None = None
              ) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        if before:
            before()
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), times


def _ok(response: Any) -> Any:
    if response.status_code not in (200, 204):
        raise RuntimeError(f"{response.request.url}: {response.status_code} "
                           f"{response.text[:300]}")
    return response


def _tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


TILE_LAYERS = {"parts": {}, "parts live": {"datetime": "1900-01-01T00:00:00Z/.."},
               "cases": {}, "cases live": {"open": "false,true"}, "cases open": {"open": "true"}}


def _health(record: Callable[..., None], call: Callable[[str], Callable[[], None]],
            cold: Callable[[], None], end: Any, runs: int) -> None:
    """The rankings of every grid (this window and the previous one, as the page asks), 30
    and 365 days; the peers in the same run: the other path of each window (a month from the
    running totals, a year from its day rows) — agg4, layers/health/long.py."""
    from layers.health import long as long_window

    exact_max = long_window.EXACT_MAX_DAYS
    for label, days in (("health 30d", 30), ("health 365d", 365)):
        window = f"{end - timedelta(days=days)}/{end}"
        record(label, median_ms(call(window), runs, cold))
        long_window.EXACT_MAX_DAYS = 10**6 if days > exact_max else 0
        try:
            peer = "day rows, exact p90" if days > exact_max else "running totals"
            record(f"{label} peer: {peer}", median_ms(call(window), runs, cold))
        finally:
            long_window.EXACT_MAX_DAYS = exact_max


def _evaluation(record: Callable[..., None], client: Any, end: Any, runs: int) -> None:
    """Every department's evaluation of the last month, from the facts, and the peer: the
    same recounted from the history (the facts made unusable for the run)."""
    from layers.evaluation import store

    period = f"{(end - timedelta(days=1)):%Y-%m}"

    def call() -> None:
        _ok(client.get("/evaluation/department", params={"period": period}, headers=MANAGER))

    record("evaluation month", median_ms(call, runs))
    refresh = store.refresh
    store.refresh = lambda *a, **k: False  # type: ignore[assignment]
    try:
        record("evaluation month peer: recount", median_ms(call, runs))
    finally:
        store.refresh = refresh  # type: ignore[method-assign]


def measure(client: Any, app: Any, engine: Any, runs: int, tiles: int,
            only: frozenset[str] = frozenset({"health", "evaluation", "pages", "tiles"}),
            layers: tuple[str, ...] = tuple(TILE_LAYERS)) -> dict[str, Any]:
    from sqlalchemy import text

    from layers.health import scores as health_scores

    with engine.connect() as conn:
        n_cases = conn.execute(text("SELECT count(*) FROM case_record")).scalar_one()
        n_parts = conn.execute(text("SELECT count(*) FROM city_part")).scalar_one()
        last = conn.execute(text("SELECT max(created_at) FROM case_record")).scalar_one()
        street = conn.execute(text("SELECT street_code FROM case_record ORDER BY id DESC "
                                   "LIMIT 1")).scalar_one()
        box = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                "(SELECT ST_Extent(geom) e FROM unit_grid "
                                "WHERE gen_to IS NULL) s")).one()
    end = (last + timedelta(days=1)).date()
    results: dict[str, Any] = {"cases": n_cases, "parts": n_parts, "host": host(),
                               "ms": {}, "runs": {}}

    def record(name: str, value: tuple[float, list[float]]) -> None:
        results["ms"][name] = round(value[0], 1)
        results["runs"][name] = [round(t, 1) for t in value[1]]
        print(f"  {name:<32} {value[0]:>9.1f} ms   runs {', '.join(f'{t:.0f}' for t in value[1])}")

    def cold_health() -> None:
        health_scores._CACHE.clear()

    def health_call(window: str) -> Callable[[], None]:
        params = {"level": "grid", "window": window}
        return lambda: _ok(client.get("/health/rankings", params=params, headers=MANAGER))

    if "health" in only:
        _health(record, health_call, cold_health, end, runs)
    if "evaluation" in only:
        _evaluation(record, client, end, runs)
    if "pages" not in only and "tiles" not in only:
        return results
    if "pages" in only:
        _pages(record, client, street, runs)
    if "tiles" in only:
        tiles_cold(client, app, box, tiles, results, layers)
    results["plan"] = recent_plan(engine, end)
    return results


def _pages(record: Callable[..., None], client: Any, street: str, runs: int) -> None:
    record("cases first page", median_ms(lambda: _ok(client.get(
        "/cases", params={"limit": 50}, headers=DISPATCHER)), runs))
    record("cases first page, one street", median_ms(lambda: _ok(client.get(
        "/cases", params={"limit": 50, "street": street}, headers=DISPATCHER)), runs))
    record("overdue first page", median_ms(lambda: _ok(client.get(
        "/cases/overdue", params={"limit": 50}, headers=DISPATCHER)), runs))


def tiles_cold(client: Any, app: Any, box: Any, tiles: int, results: dict[str, Any],
               layers: tuple[str, ...]) -> None:
    # "cases" counts every case ever reported (five years: the H3 cells' settled counts plus
    # the open cases); "cases live" the same cases counted one by one (the peer: a filter
    # that keeps every case takes the live path); "cases open" is what the /map page asks for.
    # "parts" below zoom 14 reads the per-cell counts; "parts live" (the peer) counts the same
    # parts one by one (a time filter that keeps every part takes the live path).
    by_zoom = results.setdefault("tiles by zoom", {})
    for layer in layers:
        query = TILE_LAYERS[layer]
        rng = random.Random(7)  # the same tiles for every layer
        times: list[float] = []
        for z in range(10, 17):
            zoom_times = []
            for _ in range(tiles):
                x, y = _tile_xy(rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3]), z)
                cache = getattr(app.state, "tile_cache", None)
                if cache is not None:
                    cache.clear()
                started = time.perf_counter()
                response = client.get(f"/collections/{layer.split()[0]}/tiles/WebMercatorQuad/"
                                      f"{z}/{x}/{y}", params=query, headers=DISPATCHER)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code == 503 and "query-timeout" in response.text:
                    # a peer counting live can pass the statement time limit at 10 M: the
                    # tile took at least that long; recorded as such, the run goes on
                    results.setdefault("timed out", []).append(f"{layer} z{z}/{x}/{y}")
                else:
                    _ok(response)
                zoom_times.append(elapsed)
            zoom_times.sort()
            times += zoom_times
            by_zoom.setdefault(layer, {})[z] = [round(zoom_times[len(zoom_times) // 2], 1),
                                                round(zoom_times[-1], 1)]
        print(f"  tiles {layer} by zoom (median, max ms): "
              + ", ".join(f"z{z} {a:.0f}/{b:.0f}" for z, (a, b) in by_zoom[layer].items()))
        times.sort()
        p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
        results["ms"][f"tiles {layer} p50"] = round(p50, 1)
        results["ms"][f"tiles {layer} p99"] = round(p99, 1)
        late = sum(1 for t in results.get("timed out", []) if t.startswith(f"{layer} z"))
        print(f"  tiles {layer} z10–16 cold ({len(times)}): p50 {p50:.1f} ms, p99 {p99:.1f} ms"
              + (f" ({late} tiles cancelled at the statement time limit: at least that long)"
                 if late else ""))


def recent_plan(engine: Any, end: Any) -> dict[str, Any]:
    from sqlalchemy import text

    sql = ("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT grid_code, count(*) "
           "FROM case_record WHERE created_at >= CAST(:start AS timestamptz) GROUP BY 1")
    with engine.connect() as conn:
        plan = conn.execute(text(sql), {"start": str(end - timedelta(days=30))}).scalar_one()
    root = plan[0]["Plan"]
    scans: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node:
            scans.append(f"{node['Node Type']} on {node['Relation Name']}"
                         + (f" using {node['Index Name']}" if "Index Name" in node else ""))
        for child in node.get("Plans", []):
            walk(child)

    walk(root)
    out = {"ms": round(plan[0]["Execution Time"], 1), "scans": scans,
           "shared_blocks": root.get("Shared Hit Blocks", 0) + root.get("Shared Read Blocks", 0)}
    print(f"  recent 30 days, cases per grid: {out['ms']} ms, {len(scans)} scan(s): "
          f"{'; '.join(scans)}")
    return out


def print_table(results: dict[str, Any]) -> None:
    h = results["host"]
    print(f"\n{results['cases']:,} cases, {results['parts']:,} parts — {h['date']}, "
          f"{h['machine']}, {h['cpus']} cores, load average {', '.join(map(str, h['load']))}")
    print(f"| {'measure':<32} | {'median ms':>9} | {'target ms':>9} | {'':<6} |")
    print(f"|{'-' * 34}|{'-' * 11}|{'-' * 11}|{'-' * 8}|")
    for name, ms in results["ms"].items():
        target = TARGETS_MS.get(name)
        verdict = "" if target is None else ("met" if ms <= target else "MISSED")
        print(f"| {name:<32} | {ms:>9.1f} | {target if target else '':>9} | {verdict:<6} |")


def plot(files: list[str], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted((json.loads(Path(f).read_text()) for f in files), key=lambda r: r["cases"])
    sizes = [r["cases"] / 1e6 for r in rows]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for name in TARGETS_MS:
        if all(name in r["ms"] for r in rows):
            ax.plot(sizes, [r["ms"][name] for r in rows], marker="o", label=name)
    ax.axhline(1000, color="grey", linestyle="--", linewidth=0.8)
    ax.axhline(100, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("cases stored (millions)")
    ax.set_ylabel("time (ms, median; tiles p99)")
    ax.set_yscale("log")
    ax.set_title("gridcore: interactive paths against history size (shared 2-core host)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside, not on, the lines
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"plot written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="a megacity database of the embedded cluster")
    parser.add_argument("--cases", type=int, help="make a megacity of this many cases first")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tiles", type=int, default=15, help="cold tiles per zoom and layer")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--small", action="store_true", help="a small megacity, one run each")
    parser.add_argument("--tile-layers", default=",".join(TILE_LAYERS),
                        help=f"which tile layers to measure (of {', '.join(TILE_LAYERS)})")
    parser.add_argument("--no-migrate", action="store_true",
                        help="measure the database as it is (a shared one whose migrations "
                             "are applied by hand)")
    parser.add_argument("--only-tiles", action="store_true", help="the same as --only tiles")
    parser.add_argument("--plot", nargs="+", help="JSON files of earlier runs to plot")
    parser.add_argument("--only", default="health,evaluation,pages,tiles",
                        help="comma-separated parts to measure (health, evaluation, pages, "
                             "tiles)")
    parser.add_argument("-o", "--output", default="benchmarks/scale.png")
    args = parser.parse_args()
    if args.plot:
        plot(args.plot, args.output)
        return
    from sqlalchemy import make_url

    scratch = None
    if args.db:
        url = make_url(admin_url()).set(database=args.db).render_as_string(hide_password=False)
    else:
        from demo.megacity.build import Options, build
        from layers.db.engine import make_engine
        from layers.db.migrate import migrate

        scratch = f"bench_scale_{os.getpid()}"
        url = create_database(scratch)
        opts = (Options(cases=5_000, parts=5_000, grids=500, communities=50, streets=6,
                        districts=2, years=1.0) if args.small
                else Options(cases=args.cases or 1_000_000, parts=args.cases or 1_000_000))
        engine = make_engine(url=url)
        migrate(engine)
        build(engine, opts, echo=print if not args.small else (lambda s: None))
        engine.dispose()
    if args.small:
        args.runs, args.tiles = 1, 2
    try:
        layers = tuple(name.strip() for name in args.tile_layers.split(","))
        unknown = [name for name in layers if name not in TILE_LAYERS]
        if unknown:
            parser.error(f"unknown tile layers {unknown}")
        only = frozenset({"tiles"} if args.only_tiles else args.only.split(","))
        results = run(url, args.runs, args.tiles, only, not args.no_migrate, layers)
    finally:
        if scratch:
            drop_database(scratch)
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def run(url: str, runs: int, tiles: int,
        only: frozenset[str] = frozenset({"health", "evaluation", "pages", "tiles"}),
        migrating: bool = True, layers: tuple[str, ...] = tuple(TILE_LAYERS)) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from gridcore.settings import DatabaseSettings, SecuritySettings, Settings
    from layers.db.engine import make_engine
    from layers.db.migrate import migrate

    engine = make_engine(url=url)
    if migrating:
        migrate(engine)  # a megacity made by an older revision gains the newer tables
    settings = Settings(database=DatabaseSettings(database_url=url),
                        security=SecuritySettings(env="development"))
    print(f"host: {host()}")
    try:
        with TestClient(create_app(settings, engine=engine)) as client:
            return measure(client, client.app, engine, runs, tiles, only, layers)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
