"""Benchmark: city-part import through gridcore's path vs ``GeoDataFrame.to_postgis``.

    python benchmarks/bench_import.py [--rows 1000000] [--small]

Generates N city parts (random points in a 2 km box of central Helsinki, classes drawn from the
taxonomy), in a dedicated database created and dropped by this script (embedded cluster, or
the server of ``GRIDCORE_BENCH_ADMIN_URL``). The box is covered by 100 unit grids, so the
gridcore path does all its real work: validation, point-in-grid, H3 cells, code generation,
COPY into ``city_part`` with its indexes, constraints and triggers.

The gridcore path is ``load_parts`` as ``gridcore import parts`` runs it: a load this big takes
the bulk lane (binary COPY; indexes, primary key and department foreign keys rebuilt once after
it, in the same transaction; rows written in grid and code order; see
``layers/db/bulk.py``).

The peer is ``GeoDataFrame.to_postgis`` with the very rows gridcore wrote (already computed, so
it does less work), put back in the file's order, twice:
- ``comparable``: appending into ``city_part_peer``, a fresh table created ``LIKE city_part
  INCLUDING ALL`` plus the same department foreign keys — same columns, collations, defaults,
  checks and indexes, so both paths pay the same schema costs and the ratio measures the path;
- ``lean``: ``if_exists="replace"``, the table geopandas creates itself (no key, no checks,
  one GiST index) — the common notebook usage, printed for reference.
All three run in the same process against the same server, one after the other.
Target: gridcore ≥ 3× to_postgis.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scratch import create_database, drop_database  # benchmarks/, the script's directory
from sqlalchemy import text

from gridcore.taxonomy import Taxonomy
from layers.db.engine import make_engine
from layers.db.migrate import migrate
from layers.exchange.export import read_layer
from layers.exchange.imports import load_areas, load_grids, load_parts

BOX = (24.93, 60.16, 24.966, 60.178)  # ≈ 2.0 km × 2.0 km


def seed_grids(engine) -> None:  # noqa: ANN001
    x0, y0, x1, y1 = BOX
    area = shapely.box(*BOX)
    load_areas(engine, gpd.GeoDataFrame({"code": ["110101", "110101001", "110101001001"],
                                         "name": ["district", "street", "community"]},
                                        geometry=[area] * 3, crs=4326))
    xs, ys = np.linspace(x0, x1, 11), np.linspace(y0, y1, 11)
    cells = [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(10) for j in range(10)]
    load_grids(engine, gpd.GeoDataFrame({"community_code": ["110101001001"] * 100},
                                        geometry=cells, crs=4326), note="benchmark")


def parts_frame(n: int, seed: int = 7) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    classes = np.array([c.code for c in Taxonomy.default().parts()], dtype=object)
    lon = rng.uniform(BOX[0], BOX[2], n)
    lat = rng.uniform(BOX[1], BOX[3], n)
    return gpd.GeoDataFrame({"class_code": classes[rng.integers(0, len(classes), n)]},
                            geometry=shapely.points(lon, lat), crs=4326)


def in_file_order(stored: gpd.GeoDataFrame, source: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The stored rows back in the file's order (a bulk import stores them by grid and code):
    to_postgis gets the order a user's frame would have. Rows are matched on their exact
    coordinates (EWKB round-trips float64 exactly)."""
    position = pd.DataFrame({"x": source.geometry.x.to_numpy(), "y": source.geometry.y.to_numpy(),
                             "position": np.arange(len(source))})
    found = pd.DataFrame({"x": stored.geometry.x.to_numpy(), "y": stored.geometry.y.to_numpy()}
                         ).merge(position, on=["x", "y"], how="left", validate="one_to_one")
    assert found["position"].notna().all() and len(found) == len(stored)
    return stored.iloc[np.argsort(found["position"].to_numpy())].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", action="store_true", help="100,000 rows (development)")
    args = parser.parse_args()
    n = 100_000 if args.small else args.rows
    name = f"gridcore_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    engine = make_engine(url=url)
    try:
        migrate(engine)
        seed_grids(engine)
        gdf = parts_frame(n)
        print(f"{n:,} generated city parts, {gdf.class_code.nunique()} classes, 100 grids")

        t0 = time.perf_counter()
        report = load_parts(engine, gdf)
        ours = time.perf_counter() - t0
        assert report.inserted == n, report

        peer_frame = read_layer(engine, "parts").rename_geometry("geom")  # the rows we wrote
        peer_frame = in_file_order(peer_frame, gdf)
        # to_postgis writes '' as NULL (CSV COPY): leave all-empty columns to the defaults,
        # as gridcore does
        empty = [c for c in peer_frame.columns if c != "geom"
                 and peer_frame[c].isna().all() | (peer_frame[c] == "").all()]
        peer_frame = peer_frame.drop(columns=empty)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE city_part_peer (LIKE city_part INCLUDING ALL)"))
            for col in ("competent_dept", "owner_dept", "maintenance_dept"):
                conn.execute(text(f"ALTER TABLE city_part_peer ADD FOREIGN KEY ({col}) "
                                  "REFERENCES department (code)"))
        t0 = time.perf_counter()
        peer_frame.to_postgis("city_part_peer", engine, if_exists="append", index=False)
        peer = time.perf_counter() - t0
        t0 = time.perf_counter()
        peer_frame.to_postgis("city_part_lean", engine, if_exists="replace", index=False)
        lean = time.perf_counter() - t0
        with engine.connect() as conn:
            counts = [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                      for t in ("city_part", "city_part_peer", "city_part_lean")]
            located = conn.execute(text("SELECT count(*) FROM city_part WHERE grid_code IS NOT "
                                        "NULL")).scalar_one()
        assert counts == [n, n, n], counts
        print(f"gridcore import           : {n / ours:>9,.0f} rows/s ({ours:6.2f} s; grid code "
              f"on {located:,}, H3, codes, COPY)")
        print(f"to_postgis, same schema   : {n / peer:>9,.0f} rows/s ({peer:6.2f} s)")
        print(f"to_postgis, its own table : {n / lean:>9,.0f} rows/s ({lean:6.2f} s)")
        print(f"ratio vs same schema      : {peer / ours:>9.2f}× (target ≥ 3×)")
        print(f"ratio vs its own table    : {lean / ours:>9.2f}×")
        print(f"load average              : {' '.join(f'{v:.1f}' for v in os.getloadavg())} "
              f"on {os.cpu_count()} cores")
    finally:
        engine.dispose()
        drop_database(name)


if __name__ == "__main__":
    main()
