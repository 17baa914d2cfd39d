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


def _cost(key: Hashable, entry: CachedTile) -> int:
    """What an entry holds in memory, near enough: its bodies, and its key and bookkeeping —
    an empty tile is not free (1,500 empty tiles under long junk keys once grew the process
    by 88 MB while counting 0 bytes)."""
    return len(entry.data) + len(entry.gzipped or b"") + ENTRY_OVERHEAD + len(repr(key))


ENTRY_OVERHEAD = 400  # the entry, its ETag, the OrderedDict node


class TileCache:
    """LRU bounded by entries and by bytes (bodies and keys); safe to share between the
    server's worker threads."""

    def __init__(self, max_bytes: int = 128 * 1024 * 1024, max_entries: int = 50_000) -> None:
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self._entries: OrderedDict[Hashable, tuple[CachedTile, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> CachedTile | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None or not found[0].fresh():
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: Hashable, data: bytes, expires: datetime | None) -> CachedTile:
        packed = gzip.compress(data, compresslevel=6, mtime=0) if len(data) > GZIP_MIN else None
        entry = CachedTile(data, etag_of(data), expires, packed)
        cost = _cost(key, entry)
        if cost > self.max_bytes // 4:
            return entry
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (entry, cost)
            self._bytes += cost
            while self._entries and (self._bytes > self.max_bytes
                                     or len(self._entries) > self.max_entries):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return entry

    @property
    def size(self) -> tuple[int, int]:
        """(entries, bytes counted)."""
        with self._lock:
            return len(self._entries), self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
