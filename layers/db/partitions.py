"""The time partitions of ``case_record`` (案卷按年分区, migration ``*_case_partitions``): one
per calendar year (UTC) of report, made ahead, and a default one for rows outside them.

Partitions are made ahead — last year's, this year's and the next — by every
``gridcore db migrate`` (so by every ``gridcore serve`` start, which migrates first), by every
running server now and then (``api/background.py``: a server up across New Year makes the
year after next before it is needed, so its rows never fall into the default partition), and
before a bulk load (the import of old cases, the megacity) for the years it brings. A row
dated outside every partition (a case imported from a year not made yet, a test clock) lands
in ``case_record_default`` instead of failing; making its year's partition moves it out
(``gridcore_case_partition`` in SQL). The default partition is read by every query that
cannot exclude it, so it is kept empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

DEFAULT = "case_record_default"
# One maker at a time across processes: two making the same year at once would both see it
# missing and the second CREATE TABLE would fail (a transaction-level lock: released at commit).
_LOCK = 0x7061_7274  # "part"


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime | None  # None: the default partition
    end: datetime | None


def partitioned(conn: Connection) -> bool:
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table "
        "WHERE partrelid = to_regclass('case_record'))")).scalar_one())


def ensure_years(conn: Connection, start: datetime, end: datetime) -> int:
    """Make the partitions of every year from ``start`` to ``end`` (moving their rows out of
    the default partition); the number made. Nothing on a database without partitions."""
    if not partitioned(conn):
        return 0
    return int(conn.execute(text("SELECT gridcore_case_partitions(:a, :b)"),
                            {"a": start, "b": end}).scalar_one())


def ensure_ahead(engine: Engine, now: datetime | None = None) -> int:
    """Last year's (the demo's and a January's recent history), this year's and next year's
    partitions (run by migrate)."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        if partitioned(conn):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        return ensure_years(conn, now.replace(year=now.year - 1, month=1, day=1),
                            now.replace(year=now.year + 1, month=1, day=1))


def partitions(conn: Connection) -> list[Partition]:
    """Every partition of ``case_record``, oldest first, the default one last."""
    rows = conn.execute(text("""
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'case_record'::regclass""")).all()
    out = []
    for name, bound in rows:
        if bound == "DEFAULT":
            out.append(Partition(name, None, None))
            continue
        lo, hi = conn.execute(text(
            "SELECT CAST(split_part(:b, '''', 2) AS timestamptz), "
            "CAST(split_part(:b, '''', 4) AS timestamptz)"), {"b": bound}).one()
        out.append(Partition(name, lo, hi))
    return sorted(out, key=lambda p: (p.start is None, p.start or datetime.min.replace(
        tzinfo=UTC)))


def repair_indexes(conn: Connection) -> list[str]:
    """Rebuild every invalid index of a partitioned table on all its partitions, and name them.

    Until the bulk lane's fix (``layers/db/bulk.py``, session 6) a bulk load recreated the case
    table's indexes "ON ONLY" the parent: an invalid index there and none on any partition, so
    reads fell back to the primary key (seconds instead of milliseconds at 1 M cases). A
    database loaded then is mended here, at its next migration. Indexes behind a constraint
    (the keys) are left alone: the bulk lane restored those whole."""
    broken = conn.execute(text(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name, "
        "pg_get_indexdef(x.indexrelid) AS definition FROM pg_index x "
        "JOIN pg_class t ON t.oid = x.indrelid AND t.relkind = 'p' "
        "JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE NOT x.indisvalid AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) "
        "ORDER BY 1")).all()
    if broken:  # an index over millions of cases takes minutes
        conn.execute(text("SET LOCAL statement_timeout = 0"))
    for name, definition in broken:
        conn.execute(text(f"DROP INDEX {name}"))
        conn.execute(text(definition.replace(" ON ONLY ", " ON ", 1)))
    return [name for name, _ in broken]


def report_time(conn: Connection, case_id: int) -> datetime | None:
    """A case's report time from the case registry (``case_key``), or None if no such case.

    Read it first and ask ``case_record`` for ``id = :i AND created_at = :at`` with the time as
    a value: PostgreSQL then prunes to the case's own year while it plans, and plans only that
    partition's indexes. Asked by id alone (or with ``created_at = (SELECT …)``) it plans every
    year's ~30 indexes, which was most of a lookup's cost (layers.cases.view.fetch_case).
    """
    at = conn.execute(text("SELECT created_at FROM case_key WHERE id = :i"),
                      {"i": case_id}).scalar()
    return at if isinstance(at, datetime) else None
