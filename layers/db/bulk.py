"""The fast lane of a big import: binary COPY built column-wise, deferred indexes and keys.

Formatting a million rows in Python (``"\\t".join`` per row) costs more than PostgreSQL's COPY
itself, so big loads build the COPY stream column-wise in C++ (pyarrow, binary COPY format:
``layers.db.binary_copy``) and stream it in chunks, each built in a background thread
while the server parses the previous one; per-row derived columns (H3 cells, EWKB points made
straight from the coordinates with numpy) are computed there too, chunk by chunk, so that work
overlaps the server's (benchmarks/README.md, "Design figures").

Deferred indexes and keys (bulk mode): maintaining the indexes row by row, and firing three
foreign-key triggers per row (each re-reads the new row even when its department columns are
NULL), is most of the server's work on a big load. When an import brings at least
``BULK_MIN_ROWS`` new rows and at least as many as the table holds, then inside the import's
transaction, before the COPY: the table's secondary indexes are dropped, its foreign keys are
dropped, and so is its primary key — with the foreign keys of other tables that reference it
(``device`` → ``city_part``): a primary key kept during the COPY is a B-tree filled in random
order that at 10 M rows no longer fits the buffer cache (the parts' COPY took 14.7 s per
million rows at 10 M against 7.5 s at 2 M, benchmarks/README.md). After the COPY they come
back from their own definitions (``pg_get_indexdef``, ``pg_get_constraintdef``) — the primary
key first, then the foreign keys, then the indexes. This is PostgreSQL's own advice for
populating a table ("Populating a Database": remove indexes and foreign-key constraints).
Integrity is not weakened: re-adding a key validates every row of the table in one pass (a
duplicate code or a dangling department code fails the import, and the rollback restores the
keys too), and no other writer can slip a row in between, because dropping them takes the
table's (and the referencing tables') ACCESS EXCLUSIVE lock until commit. The price: readers
of the table, and writers of the referenced ``department`` table, wait for the import's
commit — acceptable for a rare bulk load and stated in the import's help. Unique constraints
other than the primary key are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, cast

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, text

from layers.db.binary_copy import (
    ChunkReader,
    RowFunction,
    as_bytes,
    binary_chunks,
    column_types,
    prefetched,
)
from layers.db.copy import PROGRESS_MIN_ROWS

log = logging.getLogger("gridcore.imports")
T = TypeVar("T")
BULK_MIN_ROWS = 100_000
CHUNK_ROWS = 100_000
REBUILD_MEMORY = "1GB"  # per key or index rebuilt after a bulk COPY (one at a time)
_EWKB_POINT_4326 = bytes.fromhex("0101000020E6100000")  # little-endian, Point, SRID flag, 4326


def point_ewkb(x: np.ndarray, y: np.ndarray) -> pa.Array:
    """EWKB bytes (SRID 4326) of 2D points, for binary COPY."""
    rec = np.empty(len(x), dtype=[("h", "S9"), ("x", "<f8"), ("y", "<f8")])
    rec["h"] = _EWKB_POINT_4326
    rec["x"] = x
    rec["y"] = y
    offsets = np.arange(0, 25 * len(x) + 1, 25, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), len(x), [None, pa.py_buffer(offsets),
                                                       pa.py_buffer(rec.tobytes())])


def copy_table(conn: Connection, table: str, columns: Mapping[str, Any], *,
               rows: np.ndarray | None = None, derived: Mapping[str, RowFunction] | None = None,
               label: str = "") -> None:
    """COPY into ``table`` in PostgreSQL's binary format: ``columns`` (name → values: strings,
    or EWKB bytes for geometry), only rows ``rows`` (indices, written in that order) when given;
    ``derived`` (name → function of row indices) are computed chunk by chunk in the producer
    thread, overlapping the server's work on the previous chunk."""
    types = column_types(conn, table)
    derived = derived or {}
    encoded = {name: as_bytes(values, types[name]) for name, values in columns.items()}
    n_rows = len(rows) if rows is not None else len(next(iter(encoded.values())))
    progress = None
    if n_rows >= PROGRESS_MIN_ROWS and sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(total=n_rows, unit="rows", desc=label or f"COPY {table}")
    names = [*encoded, *derived]
    sql = f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)"
    stream = prefetched(binary_chunks(encoded, derived, types, rows, n_rows, CHUNK_ROWS,
                                      progress))
    raw: Any = conn.connection.dbapi_connection  # psycopg2's: copy_expert
    cursor = raw.cursor()  # same transaction as ``conn``
    reader = ChunkReader(stream)
    started = time.perf_counter()
    try:
        cursor.copy_expert(sql, reader, size=1 << 20)
    except Exception:
        if reader.error is not None:  # our own failure, not the server's: raise it as it was
            raise reader.error from None
        raise
    finally:
        cursor.close()
        stream.close()
        if progress is not None:
            progress.close()
    log.debug("COPY %s: %d rows in %.2f s", table, n_rows, time.perf_counter() - started)


def in_background(work: Callable[[], T], name: str) -> Callable[[], T]:
    """Run ``work`` in a daemon thread now; returns the function that waits for its result
    (and raises what it raised). For numpy / pandas work that overlaps the server's (a
    session waiting on PostgreSQL holds no GIL)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - raised in the waiting thread
            out["error"] = exc

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()

    def wait() -> T:
        worker.join()
        if "error" in out:
            raise out["error"]
        return cast(T, out["value"])

    return wait


def wants_bulk(conn: Connection, table: str, new_rows: int) -> bool:
    if new_rows < BULK_MIN_ROWS:
        return False
    # a partitioned table's rows are its partitions' (its own reltuples counts nothing)
    stored = conn.execute(text(
        "SELECT coalesce(sum(greatest(reltuples, 0)), 0)::bigint FROM pg_class "
        "WHERE (oid = CAST(:t AS regclass) AND relkind <> 'p') OR oid IN "
        "(SELECT inhrelid FROM pg_inherits WHERE inhparent = CAST(:t AS regclass))"),
        {"t": table}).scalar_one()
    return new_rows >= stored


def _deferrable_keys(conn: Connection, table: str) -> list[tuple[str, str, str]]:
    """(table, name, definition) of the keys dropped for a bulk load: the table's primary key
    first, then its foreign keys, then the foreign keys of other tables that point at it (the
    primary key cannot go while they stand) — the order they come back in."""
    return [(r[0], r[1], r[2]) for r in conn.execute(text(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
        "FROM pg_constraint c WHERE (c.conrelid = CAST(:t AS regclass) "
        "AND c.contype IN ('p', 'f')) OR (c.contype = 'f' "
        "AND c.confrelid = CAST(:t AS regclass) AND c.conrelid <> c.confrelid "
        "AND c.conparentid = 0) "
        "ORDER BY c.conrelid <> CAST(:t AS regclass), c.contype = 'p' DESC, c.conname"),
        {"t": table}).all()]


@contextlib.contextmanager
def deferred_indexes(conn: Connection, table: str, enabled: bool) -> Iterator[None]:
    """Drop the table's secondary indexes and deferrable keys, run the body, bring them back
    (same transaction)."""
    if not enabled:
        yield
        return
    keys = _deferrable_keys(conn, table)
    for owner, name, _ in reversed(keys):  # foreign keys before the primary key
        conn.execute(text(f'ALTER TABLE {owner} DROP CONSTRAINT "{name}"'))
    defs = conn.execute(text(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = CAST(:t AS regclass) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) "
        "ORDER BY i.relname"), {"t": table}).all()
    for name, _ in defs:
        conn.execute(text(f'DROP INDEX "{name}"'))
    yield
    started = time.perf_counter()
    # The keys and indexes of millions of rows: each build sorts the whole table, and with the
    # server's default (a few hundred MB) a sort of 10 M codes spills to disk in runs; for this
    # transaction only, give each build (one at a time) room to sort in memory.
    conn.execute(text("SELECT set_config('maintenance_work_mem', :m, true) WHERE "
                      "pg_size_bytes(current_setting('maintenance_work_mem')) < "
                      "pg_size_bytes(:m)"), {"m": REBUILD_MEMORY})
    for owner, name, definition in keys:
        step = time.perf_counter()
        conn.execute(text(f'ALTER TABLE {owner} ADD CONSTRAINT "{name}" {definition}'))
        log.debug("  %s in %.2f s", name, time.perf_counter() - step)
    for name, definition in defs:
        step = time.perf_counter()
        # a partitioned table's index comes back as "ON ONLY" (pg_get_indexdef): as such it
        # is an invalid parent index without one on any partition (the megacity's case
        # partitions had their primary key alone — health6); without ONLY it builds them all
        conn.execute(text(definition.replace(" ON ONLY ", " ON ", 1)))
        log.debug("  %s in %.2f s", name, time.perf_counter() - step)
    log.debug("restored %d keys and %d indexes of %s in %.2f s", len(keys), len(defs), table,
              time.perf_counter() - started)
