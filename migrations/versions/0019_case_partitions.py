"""Cases partitioned by year of report (案卷按年分区), keyed for sharding.

- ``case_record`` becomes a table partitioned by RANGE (``created_at``): one partition per
  calendar year (UTC), ``case_record_y2026`` …, created ahead (every year of the data and the
  next by the migration; last, this and next year by ``gridcore db migrate`` and so by every
  ``gridcore serve`` start: ``layers.db.partitions``), and a DEFAULT partition
  (``case_record_default``) that catches a row dated outside them (an import of old cases
  before its years were made, a test clock) instead of failing the write; creating a year's
  partition moves its rows out of the default one (``gridcore_case_partition``).
  Why years, not months: every lifecycle step looks a case up by its id alone, and a lookup
  without the partition key probes every partition — 5–10 yearly partitions cost little, 60–120
  monthly ones would cost each step (and its planning) much more; a recent window (30 days of
  health, a month's evaluation, the first page of ``GET /cases``) touches 1–2 partitions either
  way, and archiving by whole years matches how cities keep records (年度归档).
- PostgreSQL requires the partition key in every unique constraint of a partitioned table, so
  ``case_record``'s key is ``(id, created_at)``. The case registry ``case_key`` (one narrow row
  per case, not partitioned) keeps what must stay unique across partitions: the id (clients'
  ids do not change), the idempotency key, the imported (source system, source id) pair — and
  the case's district code, the key a Citus cluster would distribute by. It is filled by a
  statement trigger on every insert into ``case_record`` (COPY included) and emptied by one on
  delete; a deferred foreign key ``case_record (id, created_at) → case_key`` keeps them equal.
- Every table that referenced ``case_record (id)`` (history, photos, appeals, part state
  history, tasks, whistles, messages, device links, merges) references ``case_key (id)``: the
  same ids, the same guarantee (no row for a case that does not exist), no new column to fill.

Down: the flat table again, every row and id kept (the migration test runs both ways on a
populated database).

Revision ID: 0019_case_partitions
Revises: 0018_desk
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import Connection, text

revision = "0019_case_partitions"
down_revision = "0018_desk"
branch_labels = None
depends_on = None

# Unique on the flat table, plain indexes on the partitioned one (case_key holds uniqueness)
FLAT_UNIQUE = {
    "case_record_idempotency_key_key": "(idempotency_key)",
    "case_record_public_no_key": "(public_no)",
}
SOURCE_IDX = ("CREATE {unique}INDEX case_record_source_idx ON case_record "
              "(source_system, source_id) WHERE source_system IS NOT NULL")

FUNCTIONS = r"""
-- The registry row of every new case (COPY included), in the writing statement.
CREATE FUNCTION gridcore_case_key_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO case_key (id, created_at, idempotency_key, source_system, source_id,
                          district_code)
    SELECT id, created_at, idempotency_key, source_system, source_id, district_code
    FROM new_cases ORDER BY id
    ON CONFLICT (id) DO NOTHING;  -- intake writes its keys first (layers.cases.write)
    RETURN NULL;
END $$;
CREATE FUNCTION gridcore_case_key_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM case_key k USING old_cases o WHERE k.id = o.id;
    RETURN NULL;
END $$;
-- A case's district may change (a 待定位 case placed, a case moved): the registry follows.
CREATE FUNCTION gridcore_case_key_district() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE case_key k SET district_code = n.district_code
    FROM new_cases n WHERE k.id = n.id AND k.district_code IS DISTINCT FROM n.district_code;
    RETURN NULL;
END $$;

-- The partition of one year (UTC) of reports: created when missing, with the rows the default
-- partition holds for that year moved into it (same transaction).
-- SECURITY DEFINER: the application role (not the tables' owner) may make a year ahead.
CREATE FUNCTION gridcore_case_partition(year integer) RETURNS text LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    name text := format('case_record_y%s', year);
    lo timestamptz := make_timestamptz(year, 1, 1, 0, 0, 0, 'UTC');
    hi timestamptz := make_timestamptz(year + 1, 1, 1, 0, 0, 0, 'UTC');
    moved bigint;
    cols text;
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_attribute WHERE attrelid = 'case_record'::regclass AND attnum > 0
      AND NOT attisdropped AND attgenerated = '';
    EXECUTE format('CREATE TABLE %I (LIKE case_record INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                   'INCLUDING GENERATED INCLUDING STORAGE)', name);
    IF to_regclass('case_record_default') IS NOT NULL THEN
        EXECUTE format('WITH m AS (DELETE FROM case_record_default WHERE created_at >= %L '
                       'AND created_at < %L RETURNING *) INSERT INTO %I (%s) SELECT %s FROM m',
                       lo, hi, name, cols, cols);
        GET DIAGNOSTICS moved = ROW_COUNT;
    END IF;
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (created_at >= %L AND created_at < %L)',
                   name, name || '_range', lo, hi);
    EXECUTE format('ALTER TABLE case_record ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   name, lo, hi);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', name, name || '_range');
    RETURN name;
END $$;

-- Partitions for every year from ``lo`` to ``hi`` (the bulk paths call it before a COPY).
CREATE FUNCTION gridcore_case_partitions(lo timestamptz, hi timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    y integer;
    n integer := 0;
BEGIN
    FOR y IN extract(year FROM lo AT TIME ZONE 'UTC')::int
             .. extract(year FROM hi AT TIME ZONE 'UTC')::int LOOP
        IF to_regclass(format('case_record_y%s', y)) IS NULL THEN
            PERFORM gridcore_case_partition(y);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS gridcore_case_partitions(timestamptz, timestamptz);
DROP FUNCTION IF EXISTS gridcore_case_partition(integer);
DROP FUNCTION IF EXISTS gridcore_case_key_district();
DROP FUNCTION IF EXISTS gridcore_case_key_delete();
DROP FUNCTION IF EXISTS gridcore_case_key_insert();
"""

KEY_TRIGGERS = """
CREATE TRIGGER case_record_key_ins AFTER INSERT ON case_record
    REFERENCING NEW TABLE AS new_cases FOR EACH STATEMENT
    EXECUTE FUNCTION gridcore_case_key_insert();
CREATE TRIGGER case_record_key_del AFTER DELETE ON case_record
    REFERENCING OLD TABLE AS old_cases FOR EACH STATEMENT
    EXECUTE FUNCTION gridcore_case_key_delete();
CREATE TRIGGER case_record_key_district AFTER UPDATE ON case_record
    REFERENCING NEW TABLE AS new_cases FOR EACH STATEMENT
    EXECUTE FUNCTION gridcore_case_key_district();
"""
KEY_TRIGGER_NAMES = ("case_record_key_ins", "case_record_key_del", "case_record_key_district")


def _rows(conn: Connection, sql: str, **params: object) -> list[tuple]:
    return [tuple(r) for r in conn.execute(text(sql), params)]


def _referencing(conn: Connection, table: str) -> list[tuple[str, str, str]]:
    """(table, constraint, definition) of other tables' foreign keys to ``table``."""
    return _rows(conn, """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.contype = 'f' AND c.confrelid = CAST(:t AS regclass)
          AND c.conrelid <> c.confrelid AND c.conparentid = 0
          AND c.conrelid <> 'case_record'::regclass
        ORDER BY 1, 2""", t=table)


def _own_fks(conn: Connection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in _rows(conn, """
        SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid = CAST(:t AS regclass) AND contype = 'f' AND conparentid = 0
        ORDER BY conname""", t=table)]


def _indexes(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's indexes that back no constraint."""
    return [(r[0], r[1]) for r in _rows(conn, """
        SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = CAST(:t AS regclass)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        ORDER BY i.relname""", t=table)]


def _triggers(conn: Connection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in _rows(conn, """
        SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
        WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal AND tgparentid = 0
        ORDER BY tgname""", t=table)]


def _columns(conn: Connection, table: str) -> str:
    """The stored (not generated) columns, in order."""
    return ", ".join(r[0] for r in _rows(conn, """
        SELECT attname FROM pg_attribute
        WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped
          AND attgenerated = ''
        ORDER BY attnum""", t=table))


def _rebuild(conn: Connection, partitioned: bool) -> None:
    """``case_record`` rebuilt as the other kind of table (same rows, ids, names)."""
    ex = conn.execute
    ex(text("LOCK TABLE case_record IN ACCESS EXCLUSIVE MODE"))
    ex(text("SET LOCAL statement_timeout = 0"))
    target = "case_key" if partitioned else "case_record"
    referencing = _referencing(conn, "case_record" if partitioned else "case_key")
    for table, name, _ in referencing:
        ex(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    own_fks = [(n, d) for n, d in _own_fks(conn, "case_record") if n != "case_record_key_fk"]
    indexes = [(n, d) for n, d in _indexes(conn, "case_record") if n not in FLAT_UNIQUE
               and n != "case_record_source_idx"]
    triggers = [(n, d) for n, d in _triggers(conn, "case_record") if n not in KEY_TRIGGER_NAMES]
    for name, _ in own_fks:
        ex(text(f'ALTER TABLE case_record DROP CONSTRAINT "{name}"'))
    for name, _ in triggers:
        ex(text(f'DROP TRIGGER "{name}" ON case_record'))
    for name, _ in [*indexes, *((n, "") for n in FLAT_UNIQUE),
                    ("case_record_source_idx", "")]:
        ex(text(f'ALTER INDEX IF EXISTS "{name}" RENAME TO "{name}_old"'))
    for name in ("case_record_pkey", *FLAT_UNIQUE):
        if _rows(conn, "SELECT 1 FROM pg_constraint WHERE conname = :n "
                       "AND conrelid = 'case_record'::regclass", n=name):
            ex(text(f'ALTER TABLE case_record RENAME CONSTRAINT "{name}" TO "{name}_old"'))
    # CHECK constraints keep their names on the new table (LIKE copies them): the old ones go
    for (name,) in _rows(conn, "SELECT conname FROM pg_constraint WHERE contype = 'c' "
                               "AND conrelid = 'case_record'::regclass AND conparentid = 0"):
        ex(text(f'ALTER TABLE case_record RENAME CONSTRAINT "{name}" TO "{name}_old"'))
    ex(text("ALTER TABLE case_record RENAME TO case_record_old"))
    ex(text("ALTER SEQUENCE case_record_id_seq OWNED BY NONE"))
    like = ("LIKE case_record_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED "
            "INCLUDING STORAGE INCLUDING COMMENTS")
    columns = _columns(conn, "case_record_old")
    if partitioned:
        ex(text(f"CREATE TABLE case_record ({like}) PARTITION BY RANGE (created_at)"))
        _strip_old_suffix(conn)
        ex(text("CREATE TABLE case_record_default PARTITION OF case_record DEFAULT"))
        years = _rows(conn, """
            SELECT coalesce(min(extract(year FROM created_at AT TIME ZONE 'UTC'))::int, y),
                   greatest(coalesce(max(extract(year FROM created_at AT TIME ZONE 'UTC'))::int,
                                     y), y + 1)
            FROM case_record_old, (SELECT extract(year FROM now() AT TIME ZONE 'UTC')::int AS y) n
            GROUP BY y""")
        lo, hi = years[0] if years else (None, None)
        if lo is None:
            (now_year,) = _rows(conn, "SELECT extract(year FROM now() AT TIME ZONE 'UTC')::int")[0]
            lo, hi = now_year, now_year + 1
        for year in range(int(lo), int(hi) + 1):
            ex(text("SELECT gridcore_case_partition(:y)"), {"y": year})
        ex(text("INSERT INTO case_key (id, created_at, idempotency_key, source_system, "
                "source_id, district_code) SELECT id, created_at, idempotency_key, "
                "source_system, source_id, district_code FROM case_record_old ORDER BY id"))
        ex(text(f"INSERT INTO case_record ({columns}) SELECT {columns} FROM case_record_old"))
        ex(text("ALTER TABLE case_record ADD CONSTRAINT case_record_pkey "
                "PRIMARY KEY (id, created_at)"))
        for name, cols in FLAT_UNIQUE.items():
            ex(text(f'CREATE INDEX "{name}" ON case_record {cols}'))
        ex(text(SOURCE_IDX.format(unique="")))
        ex(text("ALTER TABLE case_record ADD CONSTRAINT case_record_key_fk "
                "FOREIGN KEY (id, created_at) REFERENCES case_key (id, created_at) "
                "DEFERRABLE INITIALLY DEFERRED"))
    else:
        ex(text(f"CREATE TABLE case_record ({like})"))
        _strip_old_suffix(conn)
        ex(text(f"INSERT INTO case_record ({columns}) SELECT {columns} FROM case_record_old"))
        ex(text("ALTER TABLE case_record ADD CONSTRAINT case_record_pkey PRIMARY KEY (id)"))
        for name, cols in FLAT_UNIQUE.items():
            ex(text(f'ALTER TABLE case_record ADD CONSTRAINT "{name}" UNIQUE {cols}'))
        ex(text(SOURCE_IDX.format(unique="UNIQUE ")))
    ex(text("ALTER SEQUENCE case_record_id_seq OWNED BY case_record.id"))
    for _name, definition in indexes:
        ex(text(definition.replace(" ON ONLY ", " ON ")
                .replace(" ON public.case_record_old ", " ON public.case_record ")))
    for name, definition in own_fks:
        definition = definition.replace("case_key(id)", f"{target}(id)").replace(
            "case_record(id)", f"{target}(id)")
        ex(text(f'ALTER TABLE case_record ADD CONSTRAINT "{name}" {definition}'))
    for _name, definition in triggers:
        ex(text(definition.replace(" ON public.case_record_old ", " ON public.case_record ")))
    if partitioned:
        ex(text(KEY_TRIGGERS))
    ex(text("DROP TABLE case_record_old"))
    for table, name, definition in referencing:
        definition = definition.replace("case_record(id)", f"{target}(id)").replace(
            "case_key(id)", f"{target}(id)")
        ex(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))


def _strip_old_suffix(conn: Connection) -> None:
    """LIKE copied the CHECK constraints under their ``_old`` names: give them theirs back."""
    for (name,) in _rows(conn, "SELECT conname FROM pg_constraint WHERE contype = 'c' "
                               "AND conrelid = 'case_record'::regclass AND conname LIKE '%\\_old'"):
        conn.execute(text(f'ALTER TABLE case_record RENAME CONSTRAINT "{name}" '
                          f'TO "{name[:-4]}"'))


def upgrade() -> None:
    conn = op.get_bind()
    conn.execute(text("""
CREATE TABLE case_key (
    id bigint PRIMARY KEY,
    created_at timestamptz NOT NULL,
    idempotency_key varchar(128) NOT NULL UNIQUE,
    source_system varchar(64),
    source_id text,
    district_code varchar(6),
    UNIQUE (id, created_at)
);
CREATE UNIQUE INDEX case_key_source_idx ON case_key (source_system, source_id)
    WHERE source_system IS NOT NULL;
CREATE INDEX case_key_district_idx ON case_key (district_code, id);

-- Years of cases archived to files (gridcore archive) and brought back (gridcore db restore).
CREATE TABLE case_archive (
    id bigserial PRIMARY KEY,
    partition text NOT NULL,
    range_from timestamptz NOT NULL,
    range_to timestamptz NOT NULL,
    cases bigint NOT NULL,
    rows jsonb NOT NULL,
    file text NOT NULL,
    sha256 char(64) NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now(),
    archived_by text NOT NULL,
    restored_at timestamptz,
    restored_by text
);
"""))
    conn.execute(text(FUNCTIONS))
    _rebuild(conn, partitioned=True)
    conn.execute(text("ANALYZE case_record"))
    conn.execute(text("ANALYZE case_key"))


def downgrade() -> None:
    conn = op.get_bind()
    (archived,) = _rows(conn, "SELECT count(*) FROM case_archive WHERE restored_at IS NULL")[0]
    if archived:
        raise RuntimeError(f"{archived} year(s) of cases are archived to files (case_archive): "
                           "bring them back (gridcore db restore FILE) before going below "
                           "0019_case_partitions")
    _rebuild(conn, partitioned=False)
    conn.execute(text("DROP TABLE IF EXISTS case_archive"))
    conn.execute(text("DROP TABLE case_key"))
    conn.execute(text(DROP_FUNCTIONS))
    conn.execute(text("ANALYZE case_record"))
