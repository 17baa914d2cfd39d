"""Server-side prepared statements (PREPARE / EXECUTE) for the hot paths of case intake.

psycopg2 sends every statement as text, so PostgreSQL parses and plans it on every call: for
the intake's statements (PostGIS functions, a four-part CTE) that costs more server CPU than
executing them (benchmarks/README.md, "Design figures"). A :class:`Prepared` statement is
prepared once per pooled connection (remembered in the connection's ``info``, which lives
exactly as long as the DBAPI connection) and then only executed, on its generic plan
(``plan_cache_mode`` is set for every session by ``layers.db.engine.make_engine``). psycopg 3
and asyncpg do this by themselves; gridcore's driver is psycopg2 (its COPY and polling code use
it), so the few statements that run on every report do it by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import psycopg2
from sqlalchemy import Connection, CursorResult
from sqlalchemy.exc import DBAPIError

from layers.db.engine import PREPARED_OPTION

# :name, but not the ::type casts, nor anything inside a '…' literal (matched and kept as is)
_PARAM = re.compile(r"'(?:[^']|'')*'|(?<![:\w]):([A-Za-z_]\w*)")
_PLAN_CHANGED = "0A000"  # "cached plan must not change result type": a column was added

T = TypeVar("T")


def _enabled(conn: Connection) -> bool:
    """Off behind a transaction-pooling proxy (GRIDCORE_PREPARED_STATEMENTS=false): the option
    ``layers.db.engine.make_engine`` puts on its engine."""
    return bool(conn.get_execution_options().get(PREPARED_OPTION, True))


class Prepared:
    """One statement with ``:name`` parameters, prepared under ``name`` on first use."""

    def __init__(self, name: str, sql: str) -> None:
        self.name = name
        self.params: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) is None:
                return match.group(0)
            if match.group(1) not in self.params:
                self.params.append(match.group(1))
            return f"${self.params.index(match.group(1)) + 1}"

        self.body = _PARAM.sub(number, sql)
        # The same statement for psycopg2's own parameters, when preparing is switched off
        # (not sqlalchemy.text: it cannot read ``:name::type``).
        self._plain = _PARAM.sub(lambda m: m.group(0) if m.group(1) is None
                                 else f"%({m.group(1)})s", sql.replace("%", "%%"))
        self._execute = f"EXECUTE {name} ({', '.join(['%s'] * len(self.params))})"

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> CursorResult[Any]:
        if not _enabled(conn):
            return conn.exec_driver_sql(self._plain, dict(params))
        return self._run(conn, conn.exec_driver_sql, params)

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The result as plain dicts, read on the DBAPI cursor.

        For the per-report statements: SQLAlchemy builds result metadata for every textual
        statement it runs (a processor looked up per column, 45 columns for a stored case),
        which cost more client CPU than psycopg2 reading the row. Errors still come out as
        SQLAlchemy's (``OperationalError`` → the API's 503), and a connection the server
        dropped is invalidated so that the pool replaces it."""
        if not _enabled(conn):
            return [dict(r) for r in self.execute(conn, params).mappings()]
        raw: Any = conn.connection.dbapi_connection  # psycopg2's
        try:
            with raw.cursor() as cur:
                self._run(conn, cur.execute, params)
                names = [column.name for column in cur.description or ()]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        except psycopg2.Error as exc:
            gone = conn.dialect.is_disconnect(exc, raw, None)
            if gone:
                conn.invalidate(exc)
            raise DBAPIError.instance(self._execute, tuple(params[p] for p in self.params),
                                      exc, psycopg2.Error, connection_invalidated=gone,
                                      dialect=conn.dialect) from exc

    def _run(self, conn: Connection, run: Callable[..., T], params: Mapping[str, Any]) -> T:
        """EXECUTE through ``run`` (SQLAlchemy's or the cursor's), preparing first on a
        connection that has not seen the statement."""
        values = tuple(params[p] for p in self.params)
        done: set[str] = conn.connection.info.setdefault("gridcore_prepared", set())
        if self.name not in done:
            run(f"PREPARE {self.name} AS {self.body}")
            done.add(self.name)
        try:
            return run(self._execute, values)
        except (DBAPIError, psycopg2.Error) as exc:
            if getattr(getattr(exc, "orig", exc), "pgcode", None) != _PLAN_CHANGED \
                    or not getattr(conn.connection.dbapi_connection, "autocommit", False):
                raise  # inside a transaction the error has aborted it: nothing to retry in
            # The table changed shape under a long-lived connection: prepare it again.
            run(f"DEALLOCATE {self.name}")
            run(f"PREPARE {self.name} AS {self.body}")
            return run(self._execute, values)
