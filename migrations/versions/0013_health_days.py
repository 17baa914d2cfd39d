"""City health day aggregates (按日汇总): per grid × class × day of report × day of closing, the
settled cases' counts and handling minutes (layers/health/days.py), the grid days written since
their last count (marked by a statement trigger on case_record in the writing transaction), the
basis they were counted on; and the three indexes a window's live cases are found by.

Revision ID: 0013_health_days
Revises: 0012_audit_guard
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0013_health_days"
down_revision = "0012_audit_guard"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE health_day (
    grid_code varchar(15) NOT NULL,
    category_key varchar(5) NOT NULL,
    day date NOT NULL,
    closed_day date NOT NULL,
    cases integer NOT NULL,
    registered integer NOT NULL,
    closed integer NOT NULL,
    closed_on_time integer NOT NULL,
    reworked integer NOT NULL,
    repeat integer NOT NULL,
    work_min float8[] NOT NULL,
    PRIMARY KEY (grid_code, day, category_key, closed_day)
);
CREATE INDEX health_day_day_idx ON health_day (day);

CREATE TABLE health_dirty (
    id bigserial PRIMARY KEY,
    grid_code varchar(15) NOT NULL,
    from_at timestamptz NOT NULL,
    to_at timestamptz NOT NULL
);
CREATE INDEX health_dirty_grid_idx ON health_dirty (grid_code);

CREATE TABLE health_day_basis (
    basis text NOT NULL,
    repeat_days integer NOT NULL,
    built_at timestamptz NOT NULL
);

-- A written case marks its grid dirty from its report day to repeat_days later (a change can
-- make a later case of the grid a repeat or not). Statement level: one row per grid and
-- statement, so a bulk load costs one mark per grid. No basis yet: nothing to keep current.
CREATE FUNCTION gridcore_health_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reach interval;
BEGIN
    SELECT make_interval(days => repeat_days) INTO reach FROM health_day_basis LIMIT 1;
    IF reach IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO health_dirty (grid_code, from_at, to_at)
        SELECT grid_code, min(created_at), max(created_at) + reach
        FROM new_rows WHERE grid_code IS NOT NULL GROUP BY grid_code;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO health_dirty (grid_code, from_at, to_at)
        SELECT grid_code, min(created_at), max(created_at) + reach
        FROM (SELECT grid_code, created_at FROM old_rows
              UNION ALL SELECT grid_code, created_at FROM new_rows) r
        WHERE grid_code IS NOT NULL GROUP BY grid_code;
    ELSE
        INSERT INTO health_dirty (grid_code, from_at, to_at)
        SELECT grid_code, min(created_at), max(created_at) + reach
        FROM old_rows WHERE grid_code IS NOT NULL GROUP BY grid_code;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER case_record_health_dirty_ins AFTER INSERT ON case_record
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridcore_health_dirty();
CREATE TRIGGER case_record_health_dirty_upd AFTER UPDATE ON case_record
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridcore_health_dirty();
CREATE TRIGGER case_record_health_dirty_del AFTER DELETE ON case_record
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gridcore_health_dirty();

CREATE FUNCTION gridcore_health_days_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM health_day;
    DELETE FROM health_dirty;
    RETURN NULL;
END $$;
CREATE TRIGGER case_record_health_days_truncate AFTER TRUNCATE ON case_record
    FOR EACH STATEMENT EXECUTE FUNCTION gridcore_health_days_truncate();

-- a window's live cases: those still open, and those closed after its last whole day
CREATE INDEX case_record_open_created_idx ON case_record (created_at)
    WHERE state NOT IN ('closed', 'voided', 'merged');
CREATE INDEX case_record_closed_at_idx ON case_record (closed_at) WHERE state = 'closed';
-- a repeat (重复问题): an earlier case of the class in the grid and H3 cell, one probe
CREATE INDEX case_record_repeat_idx ON case_record (grid_code, category_key, h3, created_at);
"""

DOWNGRADE = """
DROP INDEX IF EXISTS case_record_repeat_idx;
DROP INDEX IF EXISTS case_record_closed_at_idx;
DROP INDEX IF EXISTS case_record_open_created_idx;
DROP TRIGGER IF EXISTS case_record_health_days_truncate ON case_record;
DROP TRIGGER IF EXISTS case_record_health_dirty_del ON case_record;
DROP TRIGGER IF EXISTS case_record_health_dirty_upd ON case_record;
DROP TRIGGER IF EXISTS case_record_health_dirty_ins ON case_record;
DROP FUNCTION IF EXISTS gridcore_health_days_truncate();
DROP FUNCTION IF EXISTS gridcore_health_dirty();
DROP TABLE IF EXISTS health_day_basis;
DROP TABLE IF EXISTS health_dirty;
DROP TABLE IF EXISTS health_day;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
