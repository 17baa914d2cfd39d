"""The current grids, their hierarchy and the dispatch rules, in memory and kept fresh.

PostGIS is the system of record; this is the read model the resolver answers from. Freshness:
every ``current()`` call (at most every ``check_interval_s``) reads ``layer_version`` — one
primary-key lookup — and when the grids, areas, rules, departments or workers changed, builds a
new :class:`IndexSnapshot` from one REPEATABLE READ transaction (so the version read belongs to
exactly the rows read) and swaps it in with a single reference assignment. A request never sees
a half-built index: readers keep the old snapshot until the new one is complete; while one thread
rebuilds, others wait for it at most ``stale_wait_s`` and then answer from the previous complete
snapshot instead of queueing behind a long rebuild.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg2
import shapely
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from gridcore.dispatch import DispatchRules
from layers.db.prepared import Prepared
from layers.grids.dispatch_rules import load_rules
from spatial.locator import GridLocator

LAYERS = ("grids", "areas", "dispatch_rules", "departments", "workers", "categories")
_RAW_VERSIONS = "SELECT layer, version FROM layer_version WHERE layer = ANY(%s)"
_VERSIONS = Prepared("gridcore_layer_versions",
                     "SELECT layer, version FROM layer_version WHERE layer = ANY(:layers)")


@dataclass(frozen=True)
class IndexSnapshot:
    versions: tuple[int, ...]  # in the order of LAYERS
    locator: GridLocator
    grid_ids: np.ndarray  # aligned with the locator's index
    codes: np.ndarray
    community: np.ndarray
    workers: list[tuple[str, ...]]
    areas: dict[str, tuple[str, str]]  # code → (level, name)
    rules: DispatchRules
    categories: frozenset[str] = frozenset()  # the taxonomy's class keys (P0101, E0103…)

    @property
    def grid_version(self) -> int:
        return self.versions[0]


def read_versions(conn: Connection) -> tuple[int, ...]:
    rows: list[Any] = list(_VERSIONS.execute(conn, {"layers": list(LAYERS)}))
    got = {row[0]: row[1] for row in rows}
    return tuple(int(got.get(layer, 0)) for layer in LAYERS)


def build_snapshot(engine: Engine, snap_m: float, previous: IndexSnapshot | None = None,
                   cell_m: float | None = None) -> IndexSnapshot:
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            versions = read_versions(conn)
            if previous is not None and previous.versions[0] == versions[0]:
                locator = previous.locator  # grids unchanged: keep the built index
                meta = (previous.grid_ids, previous.codes, previous.community, previous.workers)
            else:
                rows = conn.execute(text(
                    "SELECT id, code, community_code, worker_codes, ST_AsBinary(geom) AS wkb "
                    "FROM unit_grid WHERE gen_to IS NULL")).all()
                geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else []
                locator = GridLocator(geoms, [r.code for r in rows],
                                      np.arange(len(rows)), snap_m=snap_m, cell_m=cell_m)
                order = np.asarray(locator.ids, dtype=np.int64)  # positions into rows
                meta = (np.asarray([rows[i].id for i in order], dtype=np.int64),
                        np.asarray([rows[i].code for i in order], dtype=object),
                        np.asarray([rows[i].community_code for i in order], dtype=object),
                        [tuple(rows[i].worker_codes or ()) for i in order])
            areas = {r.code: (r.level, r.name) for r in conn.execute(
                text("SELECT code, level, name FROM admin_area"))}
            rules = load_rules(conn)
            categories = frozenset(r[0] for r in conn.execute(text("SELECT key FROM category")))
    return IndexSnapshot(versions, locator, *meta, areas=areas, rules=rules,
                         categories=categories)


class GridIndex:
    """Holds the current :class:`IndexSnapshot` of one database."""

    def __init__(self, engine: Engine, snap_m: float = 30.0, check_interval_s: float = 0.0,
                 cell_m: float | None = None, stale_wait_s: float = 2.0) -> None:
        self.engine = engine
        self.stale_wait_s = stale_wait_s
        self.snap_m = snap_m
        self.check_interval_s = check_interval_s
        self.cell_m = cell_m
        self._snapshot: IndexSnapshot | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._poll_conn: Any = None
        self._poll_cursor: Any = None
        self.builds = 0

    def _poll_versions(self) -> tuple[int, ...]:
        # A dedicated autocommit connection: one round trip per check instead of a pool
        # checkout and its liveness check; a broken one is replaced once, then errors propagate.
        with self._poll_lock:
            for attempt in (1, 2):
                try:
                    if self._poll_conn is None:
                        self._poll_conn = self._connect_outside_pool()
                        self._poll_cursor = self._poll_conn.cursor()
                    # Raw DBAPI cursor: SQLAlchemy's statement machinery would double the cost.
                    self._poll_cursor.execute(_RAW_VERSIONS, (list(LAYERS),))
                    got = dict(self._poll_cursor.fetchall())
                    return tuple(int(got.get(layer, 0)) for layer in LAYERS)
                except (DBAPIError, psycopg2.Error):
                    self.close()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def _connect_outside_pool(self) -> Any:
        # Outside the pool on purpose: it lives as long as the index, must not hold a pool
        # slot, and closes quietly when the index is garbage-collected.
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        raw = self.engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
        raw.autocommit = True
        return raw

    def close(self) -> None:
        conn, self._poll_conn, self._poll_cursor = self._poll_conn, None, None
        if conn is not None:
            with contextlib.suppress(DBAPIError, psycopg2.Error):
                conn.close()

    def current(self, conn: Connection | None = None,
                versions: Mapping[str, int] | None = None) -> IndexSnapshot:
        """The snapshot as of the layer versions just read (``versions``, when the caller read
        them itself, else read here)."""
        snap = self._snapshot
        now = time.monotonic()
        if versions is not None:
            seen = tuple(int(versions.get(layer, 0)) for layer in LAYERS)
            return self._fresh(snap, seen, now)
        if snap is not None and now - self._checked_at < self.check_interval_s:
            return snap
        seen = read_versions(conn) if conn is not None else self._poll_versions()
        return self._fresh(snap, seen, now)

    def _fresh(self, snap: IndexSnapshot | None, versions: tuple[int, ...],
               now: float) -> IndexSnapshot:
        self._checked_at = now
        if snap is not None and not _older(snap.versions, versions):
            return snap
        # Another thread is rebuilding: wait for it up to ``stale_wait_s`` (a small layer
        # rebuilds in milliseconds, so callers see the new grids), then answer from the
        # complete previous snapshot rather than stall behind a large rebuild.
        if not self._lock.acquire(timeout=-1 if snap is None else self.stale_wait_s):
            return snap  # type: ignore[return-value]
        try:
            snap = self._snapshot
            if snap is None or _older(snap.versions, versions):
                snap = build_snapshot(self.engine, self.snap_m, snap, self.cell_m)
                self._snapshot = snap  # the atomic swap
                self.builds += 1
            return snap
        finally:
            self._lock.release()


def _older(have: tuple[int, ...], seen: tuple[int, ...]) -> bool:
    # Versions only grow: a snapshot is stale when any of its layers is behind what was seen.
    return any(h < v for h, v in zip(have, seen, strict=True))


_SHARED_LOCK = threading.Lock()


def shared_index(engine: Engine, snap_m: float = 30.0, check_interval_s: float = 0.0,
                 cell_m: float | None = None) -> GridIndex:
    """One index per (engine, settings) in a process: resolvers created by different parts of
    the app (``/resolve``, case intake) share one build and one copy in memory. Kept on the
    engine object itself, so it lives exactly as long as the engine."""
    key = (float(snap_m), float(check_interval_s), cell_m)
    with _SHARED_LOCK:
        per_engine = engine.__dict__.setdefault("_gridcore_grid_indexes", {})
        index = per_engine.get(key)
        if index is None:
            index = per_engine[key] = GridIndex(engine, snap_m, check_interval_s, cell_m)
        return index
