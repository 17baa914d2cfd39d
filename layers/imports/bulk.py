"""The fast lane of a big import: columnar COPY (CSV written by pyarrow) and deferred indexes.

Formatting a million rows in Python (``"\\t".join`` per row) costs more than PostgreSQL's COPY
itself, so big loads build the COPY text column-wise in C++ (``pyarrow.csv``) and stream it in
chunks. Point geometries become hex EWKB straight from their coordinates with numpy.

Deferred indexes (bulk mode): maintaining six indexes row by row is most of the server's work
on a big load. When an import brings at least ``BULK_MIN_ROWS`` new rows and at least as many
as the table holds, the table's secondary indexes are dropped before the COPY and rebuilt after
it from their own definitions (``pg_get_indexdef``), all inside the import's transaction — a
failure rolls the drop back too. The price: readers of the table wait for the import's commit
(``DROP INDEX`` locks it), acceptable for a rare bulk load and stated in the import's help.
Indexes that back a constraint (the primary key, unique constraints) are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, text

from layers.imports.copy import PROGRESS_MIN_ROWS, _ChunkStream

log = logging.getLogger("gridcore.imports")
BULK_MIN_ROWS = 100_000
CHUNK_ROWS = 100_000
_EWKB_POINT_4326 = bytes.fromhex("0101000020E6100000")  # little-endian, Point, SRID flag, 4326


def point_ewkb_hex(x: np.ndarray, y: np.ndarray) -> pa.Array:
    """Hex EWKB (SRID 4326) of 2D points, built from the coordinate arrays in one pass."""
    n = len(x)
    rec = np.empty(n, dtype=[("h", "S9"), ("x", "<f8"), ("y", "<f8")])
    rec["h"] = _EWKB_POINT_4326
    rec["x"] = x
    rec["y"] = y
    hexed = np.frombuffer(rec.tobytes().hex().encode("ascii"), dtype="S50")
    return pa.array(hexed, type=pa.binary()).cast(pa.string())


def as_arrow(values: Any) -> pa.Array:
    """A string column for COPY; None / NaN become NULL."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    return pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)


def copy_table(conn: Connection, table: str, columns: Mapping[str, Any], n_rows: int,
               label: str = "") -> None:
    """COPY ``columns`` (name → values) into ``table`` as CSV written by pyarrow."""
    arrow = pa.table({name: as_arrow(values) for name, values in columns.items()})
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    progress = None
    if n_rows >= PROGRESS_MIN_ROWS and sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(total=n_rows, unit="rows", desc=label or f"COPY {table}")

    def chunks() -> Iterator[bytes]:
        for start in range(0, n_rows, CHUNK_ROWS):
            part = arrow.slice(start, CHUNK_ROWS)
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(part, sink, options)
            if progress is not None:
                progress.update(part.num_rows)
            yield sink.getvalue().to_pybytes()

    sql = f"COPY {table} ({', '.join(arrow.column_names)}) FROM STDIN WITH (FORMAT csv)"
    cursor = conn.connection.dbapi_connection.cursor()
    started = time.perf_counter()
    try:
        cursor.copy_expert(sql, _ChunkStream(chunks()), size=1 << 20)
    finally:
        cursor.close()
        if progress is not None:
            progress.close()
    log.debug("COPY %s: %d rows in %.2f s", table, n_rows, time.perf_counter() - started)


def wants_bulk(conn: Connection, table: str, new_rows: int) -> bool:
    if new_rows < BULK_MIN_ROWS:
        return False
    stored = conn.execute(text("SELECT greatest(reltuples, 0)::bigint FROM pg_class "
                               "WHERE oid = CAST(:t AS regclass)"), {"t": table}).scalar_one()
    return new_rows >= stored


@contextlib.contextmanager
def deferred_indexes(conn: Connection, table: str, enabled: bool) -> Iterator[None]:
    """Drop the table's secondary indexes, run the body, rebuild them (same transaction)."""
    if not enabled:
        yield
        return
    defs = conn.execute(text(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = CAST(:t AS regclass) AND NOT x.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) "
        "ORDER BY i.relname"), {"t": table}).all()
    for name, _ in defs:
        conn.execute(text(f'DROP INDEX "{name}"'))
    yield
    started = time.perf_counter()
    for _, definition in defs:
        conn.execute(text(definition))
    log.debug("rebuilt %d indexes of %s in %.2f s", len(defs), table,
              time.perf_counter() - started)
