"""Bulk load through PostgreSQL COPY (text format), streamed in chunks.

Rows are turned into COPY text a chunk at a time while psycopg2 sends the previous chunk, so the
client's formatting overlaps the server's parsing and indexing, and memory stays bounded on a
million-row file. Geometries travel as hex EWKB, which PostGIS reads directly into the column.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection

from layers.db.binary_copy import ChunkReader

CHUNK_ROWS = 50_000
PROGRESS_MIN_ROWS = 100_000
NULL = "\\N"


def escape_text(values: Iterable[Any]) -> list[str]:
    """COPY text escaping for free text (names, JSON): backslash, tab, newline, CR."""
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and v != v):
            out.append(NULL)
            continue
        s = str(v)
        if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
            s = (s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                 .replace("\r", "\\r"))
        out.append(s)
    return out


def plain(values: Iterable[Any]) -> list[str]:
    """Codes, numbers and hex: nothing to escape, only NULLs to spell."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return [NULL if v != v else repr(v) for v in values.tolist()]
    return [NULL if v is None or v != v else str(v) for v in values]


def copy_columns(conn: Connection, table: str, columns: Sequence[str],
                 make_chunk: Any, n_rows: int, label: str = "") -> None:
    """COPY ``n_rows`` rows into ``table``; ``make_chunk(start, stop)`` returns the column lists
    (already COPY-ready strings) of rows ``start:stop``."""
    progress = None
    if n_rows >= PROGRESS_MIN_ROWS and sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(total=n_rows, unit="rows", desc=label or f"COPY {table}")

    def chunks() -> Iterator[bytes]:
        for start in range(0, n_rows, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, n_rows)
            cols = make_chunk(start, stop)
            text = "\n".join(map("\t".join, zip(*cols, strict=True))) + "\n"
            if progress is not None:
                progress.update(stop - start)
            yield text.encode("utf-8")

    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    raw: Any = conn.connection.dbapi_connection  # psycopg2's: copy_expert
    cursor = raw.cursor()  # same transaction as ``conn``
    try:
        cursor.copy_expert(sql, ChunkReader(chunks()), size=1 << 20)
    finally:
        cursor.close()
        if progress is not None:
            progress.close()
