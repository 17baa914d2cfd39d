"""Layer versions on the hot path of tiles, read over one dedicated connection.

Every tile request must know each layer's current version (so a write is visible on the very
next request), but taking a pooled connection for that costs a pool checkout and its liveness
check per tile. One long-lived autocommit connection, shared under a lock, answers the
one-row-per-layer query in about a tenth of a millisecond; it reconnects after a failure.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from sqlalchemy import Engine

from layers.ogc.collections import VERSIONS_SQL


class VersionReader:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None
        self._lock = threading.Lock()
        self._dbapi: Any = engine.dialect.dbapi  # psycopg2

    def _connect(self) -> Any:
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        conn = self._dbapi.connect(*cargs, **cparams)
        conn.autocommit = True
        return conn

    def read(self) -> tuple[dict[str, int], frozenset[str]]:
        """(version per layer, schema key) — see :func:`layers.ogc.collections.layer_versions`."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                    with self._conn.cursor() as cur:
                        cur.execute(VERSIONS_SQL)
                        rows = cur.fetchall()
                    break
                except self._dbapi.Error:
                    self.close_locked()
                    if attempt == 2:
                        raise
        versions = {layer: int(v) for layer, v in rows if not layer.startswith("alembic:")}
        return versions, frozenset(layer for layer, _ in rows)

    def close_locked(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()
