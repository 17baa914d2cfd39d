"""COPY in PostgreSQL's binary format, assembled column-wise by pyarrow.

Why binary rather than the CSV pyarrow can write: the server skips the CSV scanner and the
hex decoding of geometries (PostGIS reads the EWKB bytes as they are; the server time saved is in
benchmarks/README.md), and the client builds each chunk with
a handful of vectorised joins instead of a CSV writer. Layout (PostgreSQL docs, "COPY — Binary
Format"): a signature and two zero int32s, then per row an int16 field count and, per field, an
int32 byte length (-1 = NULL) followed by the bytes; an int16 -1 ends the stream. Text travels
as UTF-8 bytes (the server still checks the encoding, so a NUL is refused as in text COPY),
``jsonb`` as a version byte 1 followed by the JSON text, geometry as EWKB.
"""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
TEXT_TYPES = {"text", "varchar", "bpchar"}
_JSONB_VERSION = pa.scalar(b"\x01", pa.binary())
RowFunction = Callable[[np.ndarray], Any]  # row indices → that column's values for them


def column_types(conn: Connection, table: str) -> dict[str, str]:
    """Column name → type name (``pg_type.typname``) of a table, temporary ones included."""
    return dict(conn.execute(text(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"),
        {"t": table}).all())


# Fixed-width types from numpy arrays: big-endian values (PostgreSQL's send format).
# timestamptz: microseconds since 2000-01-01 UTC, from datetime64 values (NaT = NULL).
_PG_EPOCH = np.datetime64("2000-01-01T00:00:00", "us")
_FIXED = {"float8": ">f8", "int8": ">i8", "int4": ">i4", "int2": ">i2", "timestamptz": ">i8"}


def _fixed_width(values: np.ndarray, typname: str) -> pa.Array:
    """A numpy column of a fixed-width type as binary values (NaN / NaT / masked → NULL)."""
    if typname == "timestamptz":
        stamps = np.asarray(values, dtype="datetime64[us]")
        valid = ~np.isnat(stamps)
        raw = np.where(valid, (stamps - _PG_EPOCH).astype(np.int64), 0)
    elif typname == "float8":
        raw = np.asarray(values, dtype=np.float64)
        valid = np.isfinite(raw)
    else:
        masked = np.ma.getmaskarray(values)
        raw = np.asarray(np.ma.getdata(values), dtype=np.int64)
        valid = ~masked
    n = len(raw)
    width = np.dtype(_FIXED[typname]).itemsize
    data = np.ascontiguousarray(raw, dtype=_FIXED[typname]).tobytes()
    offsets = np.arange(0, width * n + 1, width, dtype=np.int32)
    bitmap = None if valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(pa.binary(), n, [bitmap, pa.py_buffer(offsets),
                                                  pa.py_buffer(data)],
                                 null_count=int(n - valid.sum()))


def as_bytes(values: Any, typname: str) -> pa.Array:
    """One column as the binary values COPY expects for its type (nulls kept). Text, jsonb
    and geometry (EWKB) come as strings or bytes; float8, int2/4/8 and timestamptz as numpy
    arrays (NaN / NaT / masked entries are NULL)."""
    if typname in _FIXED and isinstance(values, np.ndarray):
        return _fixed_width(values, typname)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(np.asarray(values, dtype=object), from_pandas=True,
                          type=pa.binary() if typname == "geometry" else pa.string())
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = values.cast(pa.binary())
    if not pa.types.is_binary(values.type):
        raise TypeError(f"binary COPY: expected strings or bytes, got {values.type}")
    if typname == "jsonb":
        valid = values.is_valid()
        values = pc.if_else(valid, pc.binary_join_element_wise(_JSONB_VERSION, values, b""),
                            pa.scalar(None, pa.binary()))
    elif typname not in TEXT_TYPES and typname != "geometry":
        raise TypeError(f"binary COPY: no encoder for column type {typname}")
    return values


def _int32_prefixes(lengths: np.ndarray) -> pa.Array:
    """Big-endian int32 byte strings, one per row, as a binary array (no per-row Python)."""
    n = len(lengths)
    data = np.ascontiguousarray(lengths, dtype=">i4").tobytes()
    offsets = np.arange(0, 4 * n + 1, 4, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(data)])


def encode_rows(columns: list[pa.Array]) -> pa.Buffer:
    """The binary COPY rows (no signature, no trailer) of equally long byte columns."""
    n = len(columns[0])
    parts: list[Any] = [pa.scalar(struct.pack(">h", len(columns)), pa.binary())]
    for values in columns:
        lengths = pc.fill_null(pc.binary_length(values), -1).to_numpy(zero_copy_only=False)
        parts += [_int32_prefixes(lengths), pc.fill_null(values, b"")]
    joined = pc.binary_join_element_wise(*parts, b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=n + 1,
                            offset=joined.offset * 4)
    return joined.buffers()[2][offsets[0]:offsets[-1]] if n else pa.py_buffer(b"")


def binary_chunks(columns: Mapping[str, pa.Array], derived: Mapping[str, RowFunction],
                  types: Mapping[str, str], rows: np.ndarray | None, n_rows: int,
                  chunk_rows: int, progress: Any = None) -> Iterator[bytes | pa.Buffer]:
    """The whole COPY stream, ``chunk_rows`` rows at a time: rows ``rows`` (indices, in that
    order) or all; ``columns`` already encoded (:func:`as_bytes`), ``derived`` computed here
    per chunk from the chunk's row indices (``columns`` order first, then ``derived``)."""
    yield SIGNATURE
    for start in range(0, n_rows, chunk_rows):
        stop = min(start + chunk_rows, n_rows)
        picked = np.arange(start, stop) if rows is None else rows[start:stop]
        index = pa.array(picked)
        part = [v.slice(start, stop - start) if rows is None else v.take(index)
                for v in columns.values()]
        part += [as_bytes(f(picked), types[name]) for name, f in derived.items()]
        yield encode_rows(part)
        if progress is not None:
            progress.update(stop - start)
    yield TRAILER


def prefetched(chunks: Iterator[Any], depth: int = 2) -> Generator[Any, None, None]:
    """Run ``chunks`` in a background thread, ``depth`` items ahead: the next chunk is built
    (numpy, pyarrow and h3ronpy work, mostly outside the GIL) while psycopg2 sends the
    previous one and the server parses it. An error in the producer is raised here."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in chunks:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            items.put(exc)

    worker = threading.Thread(target=produce, name="copy-chunks", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


class ChunkReader:
    """A read()-able file over an iterator of byte chunks, without re-copying the unread
    rest of a chunk on every read (psycopg2 reads ``size`` bytes at a time)."""

    def __init__(self, chunks: Iterator[bytes | pa.Buffer]) -> None:
        self._chunks = chunks
        self._view = memoryview(b"")
        self.error: BaseException | None = None  # psycopg2 reports it as a cancelled COPY

    def read(self, size: int = -1) -> bytes:
        while not len(self._view):
            try:
                self._view = memoryview(next(self._chunks))
            except StopIteration:
                return b""
            except BaseException as exc:
                self.error = exc
                raise
        if size < 0 or size >= len(self._view):
            data, self._view = bytes(self._view), memoryview(b"")
        else:
            data, self._view = bytes(self._view[:size]), self._view[size:]
        return data

    readline = read
