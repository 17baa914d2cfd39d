"""An in-process tile cache keyed by layer version (martin #1578: invalidate when data changes).

The key holds the version of every layer the tile is drawn from, read in the request's own
connection before the tile, so a write makes its tiles unreachable at once: the next request
misses and draws the tile anew. Entries also carry the moment their content changes by itself
(a case clock turning yellow or red) and are not served past it.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

GZIP_MIN = 512  # smaller tiles gain less than the header costs


@dataclass(frozen=True)
class CachedTile:
    data: bytes
    etag: str
    expires: datetime | None
    gzipped: bytes | None = None  # compressed once, served to every client that accepts it

    @property
    def gzip_etag(self) -> str:
        # A strong ETag names one representation: the gzipped body gets its own.
        return self.etag[:-1] + '-gz"'

    def fresh(self, now: datetime | None = None) -> bool:
        return self.expires is None or (now or datetime.now(UTC)) < self.expires


def etag_of(data: bytes) -> str:
    """A strong ETag of the content: a write that does not touch a tile keeps its 304s."""
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


class TileCache:
    """LRU bounded by total bytes; safe to share between the server's worker threads."""

    def __init__(self, max_bytes: int = 128 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, CachedTile] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> CachedTile | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not entry.fresh():
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: Hashable, data: bytes, expires: datetime | None) -> CachedTile:
        packed = gzip.compress(data, compresslevel=6, mtime=0) if len(data) > GZIP_MIN else None
        entry = CachedTile(data, etag_of(data), expires, packed)
        if len(data) > self.max_bytes // 4:
            return entry
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.data) + len(old.gzipped or b"")
            self._entries[key] = entry
            self._bytes += len(data) + len(packed or b"")
            while self._bytes > self.max_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped.data) + len(dropped.gzipped or b"")
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
