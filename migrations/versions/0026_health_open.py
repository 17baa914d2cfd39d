"""City health facts of the open cases (health_open, layers/health/days.py): per case still
open, its first 立案 and 返工 and whether it is a repeat, so a window reads its open cases as
rows instead of probing each one's history and its earlier cases (at 10 M cases a year's window
has ≈ 11,500 open cases: most of its time; benchmarks/README.md, health7). Kept with the day
aggregates (a refresh recounts the open cases of the dirty grid days) and filled here from the
cases when the day aggregates exist (a database without them waits for its first rebuild).

Revision ID: 0026_health_open
Revises: 0025_case_tile_indexes
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0026_health_open"
down_revision = "0025_case_tile_indexes"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE health_open (
    case_id bigint PRIMARY KEY,
    grid_code varchar(15) NOT NULL,
    category_key varchar(5) NOT NULL,
    created_at timestamptz NOT NULL,
    deadline_at timestamptz,
    parked_since timestamptz,
    reg_at timestamptz,
    rework_at timestamptz,
    repeat boolean NOT NULL
);
-- a window's open cases by their report time; a refresh's dirty grid days by grid and time
CREATE INDEX health_open_created_idx ON health_open (created_at);
CREATE INDEX health_open_grid_idx ON health_open (grid_code, created_at);

CREATE OR REPLACE FUNCTION gridcore_health_days_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM health_day;
    DELETE FROM health_open;
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
    DELETE FROM health_run;
    DELETE FROM health_run_basis;
    RETURN NULL;
END $$;
DROP TABLE IF EXISTS health_open;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    # imported here, not at module level: the migration chain loads without the product's
    # layers
    from layers.health import days

    days.count_open_on(op.get_bind())


def downgrade() -> None:
    op.execute(DOWNGRADE)
