"""A planted city once per process, its rows copied back for every later test that asks.

Many route tests plant the same small city and history before each test (``db`` empties the
database after every test): through the product's own writes that is 1.5–2.5 s a test, most of
such a test's time. :func:`plant_once` runs the planting the first time a process asks for a
``key`` and keeps a copy of every row it left (unlogged tables in a schema of their own, which
``truncate_all`` does not touch) and of every sequence; later tests of the same key get the
same rows copied back in one transaction (~0.1 s), with triggers off: the rows are the ones
the triggers already derived (case registry, daily aggregates, evaluation facts).

What a copy cannot give by itself is a new version of the layers: the product's caches (health
scores, area keys, queues) are keyed by ``layer_version``, which the triggers bump on every
write. A test that changed the cases and read health left an entry under the versions of its
own rows; the copy then bumps every layer, as a write would, so no later test reads that entry.

Each test still starts from exactly the planted state; only the way there is shorter. Use it for
plantings that are pure functions of the database (same rows every time), not for ones that
also write files or depend on the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import Engine

SCHEMA = "gridcore_test_snapshot"
T = TypeVar("T")


@dataclass(frozen=True)
class _Copy:
    tables: dict[str, str]  # table → its copy
    columns: dict[str, str]  # table → the column list to write (generated columns left out)
    sequences: list[tuple[str, int, bool]]  # sequence, last value, is_called
    planted: Any  # what the planting returned (the ids it made: the copy keeps them)


_COPIES: dict[tuple[str, str], _Copy] = {}


def plant_once(engine: Engine, key: str, plant: Callable[[], T]) -> T:
    """``plant()`` the first time this process asks for ``key`` on this database, the rows it
    left copied back every later time; what ``plant()`` returned. Call it on an emptied
    database (the ``db`` fixture); one key, one planting."""
    slot = (engine.url.render_as_string(hide_password=True), key)
    copy = _COPIES.get(slot)
    if copy is None:
        planted = plant()
        _COPIES[slot] = _take(engine, key, planted)
        return planted
    _restore(engine, copy)
    return copy.planted  # type: ignore[no-any-return]


def _take(engine: Engine, key: str, planted: object) -> _Copy:
    from sqlalchemy import text

    from tests.support.database import KEEP_TABLES

    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        # leaf tables only: a partitioned table's rows are its partitions'
        leaves = [r[0] for r in conn.execute(text(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
            "AND c.relkind = 'r' ORDER BY c.relname")) if r[0] not in KEEP_TABLES]
        tables: dict[str, str] = {}
        columns: dict[str, str] = {}
        for n, table in enumerate(leaves):
            if conn.execute(text(f'SELECT EXISTS (SELECT FROM "{table}")')).scalar():
                cols = ", ".join(f'"{c}"' for c in conn.execute(text(
                    "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) "
                    "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' "
                    "ORDER BY attnum"), {"t": f'public."{table}"'}).scalars())
                name = f'{SCHEMA}."{key[:40]}_{n}"'
                conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
                conn.execute(text(f'CREATE UNLOGGED TABLE {name} AS SELECT {cols} '
                                  f'FROM ONLY public."{table}"'))
                tables[table], columns[table] = name, cols
        sequences = [(r[0], int(r[1]), bool(r[2])) for r in conn.execute(text(
            "SELECT format('%I.%I', schemaname, sequencename), last_value, true "
            "FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL"))]
    return _Copy(tables, columns, sequences, planted)


def _restore(engine: Engine, copy: _Copy) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        # the rows as the triggers left them (no trigger fires, foreign keys are not checked:
        # every table comes back whole in this transaction)
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table, name in copy.tables.items():
            cols = copy.columns[table]
            conn.execute(text(f'INSERT INTO public."{table}" ({cols}) OVERRIDING SYSTEM VALUE '
                              f"SELECT {cols} FROM {name}"))
        for sequence, value, called in copy.sequences:
            conn.execute(text("SELECT setval(CAST(:s AS regclass), :v, :c)"),
                         {"s": sequence, "v": value, "c": called})
        # as a write would: every cache keyed by the layers' versions is behind them now
        conn.execute(text("UPDATE layer_version_shard SET version = version + 1, "
                          "changed_at = now()"))
