"""The keys of a level for city health: the current unit grids' codes (or their community /
street / district prefixes) with their area, their positions and their codes as fixed-width
bytes. They depend on the grids alone, so a whole level's keys are kept until the grids layer
changes (its version bumps inside the writing transaction, as the inventory's cache relies
on): at 60,290 grids, reading and sorting them and building their positions took ≈ 0.2–0.35 s
of every window of the rankings page (benchmarks/README.md, health7), whatever the history.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock

import numpy as np
from sqlalchemy import Connection, text

from layers.health.queries import filters_for, sql_text

__all__ = ["LevelKeys", "level_keys"]


@dataclass(frozen=True)
class LevelKeys:
    """A level's keys in code order, their area (km²), each key's position and the keys as
    bytes of ``n`` characters (numpy ``S{n}``, for codes read as bytes by a binary COPY)."""

    n: int
    keys: list[str]
    area_km2: np.ndarray
    pos: dict[str, int] = field(repr=False)
    key_bytes: np.ndarray = field(repr=False)

    @classmethod
    def of(cls, n: int, keys: list[str], area_km2: np.ndarray) -> LevelKeys:
        key_bytes = np.array([k.encode() for k in keys], dtype=f"S{n}") if keys else \
            np.zeros(0, dtype=f"S{n}")
        return cls(n, keys, area_km2, {k: i for i, k in enumerate(keys)}, key_bytes)


_CACHE: OrderedDict[tuple, LevelKeys] = OrderedDict()
_CACHE_SIZE = 8
_LOCK = Lock()


def _grids_version(conn: Connection) -> object:
    return conn.execute(text("SELECT version FROM layer_version WHERE layer = 'grids'")
                        ).scalar()


def level_keys(conn: Connection, n: int, code: str | None) -> LevelKeys:
    """The keys of level ``n`` (code length), or the one ``code`` when given (not cached)."""
    filters = filters_for(n, code)
    cache_key = None
    if code is None:
        cache_key = (str(conn.engine.url), n, _grids_version(conn))
        with _LOCK:
            got = _CACHE.get(cache_key)
            if got is not None:
                _CACHE.move_to_end(cache_key)
                return got
    rows = conn.execute(text(sql_text("areas").format(**filters)),
                        {"n": n, "code": code}).all()
    keys = LevelKeys.of(n, [r[0] for r in rows], np.array([r[1] for r in rows], dtype=float))
    if cache_key is not None:
        with _LOCK:
            _CACHE[cache_key] = keys
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return keys
