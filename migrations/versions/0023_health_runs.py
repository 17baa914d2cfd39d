"""City health running totals (累计汇总): per grid and local month boundary, the day aggregates
(health_day) of every day before it — counts, per-family counts, the sum of handling minutes and
a log-binned histogram of them — so a long window reads two boundaries per grid, not its days
(layers/health/runs.py); a GiST index finds the day rows straddling a window's end.

Revision ID: 0023_health_runs
Revises: 0022_part_cells
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0023_health_runs"
down_revision = "0022_part_cells"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE health_run (
    month date NOT NULL,
    grid_code varchar(15) NOT NULL,
    v bytea NOT NULL,
    work_sum float8 NOT NULL,
    PRIMARY KEY (month, grid_code)
);
CREATE TABLE health_run_basis (
    day_basis text NOT NULL,
    families text[] NOT NULL,
    gamma float8 NOT NULL,
    bins integer NOT NULL,
    first_month date NOT NULL,
    last_month date NOT NULL,
    built_at timestamptz NOT NULL
);
-- day rows reported before a day and closed on or after it (a window's end)
CREATE INDEX health_day_span_idx ON health_day USING gist (daterange(day, closed_day, '[]'));

CREATE OR REPLACE FUNCTION gridcore_health_days_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM health_day;
    DELETE FROM health_dirty;
    DELETE FROM health_run;
    DELETE FROM health_run_basis;
    RETURN NULL;
END $$;
"""

DOWNGRADE = """
CREATE OR REPLACE FUNCTION gridcore_health_days_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM health_day;
    DELETE FROM health_dirty;
    RETURN NULL;
END $$;
DROP INDEX IF EXISTS health_day_span_idx;
DROP TABLE IF EXISTS health_run_basis;
DROP TABLE IF EXISTS health_run;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    # Existing day aggregates get their running totals at once (a database with none waits
    # for its first rebuild); imported here, not at module level: the migration chain loads
    # without the product's layers.
    from layers.health import runs

    runs.rebuild_on(op.get_bind())


def downgrade() -> None:
    op.execute(DOWNGRADE)
