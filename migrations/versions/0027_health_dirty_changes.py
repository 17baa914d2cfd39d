"""City health marks only the writes that change what it counts (健康度脏标记只记有效变更).

An UPDATE of ``case_record`` marked its grid days dirty whatever it changed. Most updates do
not touch a health fact: the supervision sweep's 预警 / 超期 marks and 督办 flag, an assignee,
a note, the version. After a bulk load the first sweep of a 3 M-case megacity marked 17,000
grid days, and the next health page recounted them on its way (37.6 s; benchmarks/README.md,
session 8). Now an updated case marks its days only when one of the columns city health reads
(layers/health/sql/facts.sql, cohort: grid, class, state, report, closing, deadline, parking,
H3 cell) differs between its old and new row; inserts and deletes mark as before. The history
rows health reads (立案, 返工, imported) come with a change of state or an insert.

Revision ID: 0027_health_dirty_changes
Revises: 0026_health_open
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0027_health_dirty_changes"
down_revision = "0026_health_open"
branch_labels = None
depends_on = None

# the columns of facts.sql's cohort; a row on one side only (never expected) marks too
_SAME = """(n.grid_code, n.category_key, n.state, n.created_at, n.closed_at, n.deadline_at,
             n.parked_since, n.parked_intervals, n.h3)
            IS NOT DISTINCT FROM
            (o.grid_code, o.category_key, o.state, o.created_at, o.closed_at, o.deadline_at,
             o.parked_since, o.parked_intervals, o.h3)"""


def _function(update_branch: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION gridcore_health_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
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
{update_branch}
    ELSE
        INSERT INTO health_dirty (grid_code, from_at, to_at)
        SELECT grid_code, min(created_at), max(created_at) + reach
        FROM old_rows WHERE grid_code IS NOT NULL GROUP BY grid_code;
    END IF;
    RETURN NULL;
END $$;
"""


UPGRADE = _function(f"""
        INSERT INTO health_dirty (grid_code, from_at, to_at)
        SELECT grid_code, min(created_at), max(created_at) + reach
        FROM (SELECT o.grid_code, o.created_at FROM old_rows o
              WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id AND {_SAME})
              UNION ALL
              SELECT n.grid_code, n.created_at FROM new_rows n
              WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE o.id = n.id AND {_SAME})) r
        WHERE grid_code IS NOT NULL GROUP BY grid_code;""")

DOWNGRADE = _function("""
        INSERT INTO health_dirty (grid_code, from_at, to_at)
        SELECT grid_code, min(created_at), max(created_at) + reach
        FROM (SELECT grid_code, created_at FROM old_rows
              UNION ALL SELECT grid_code, created_at FROM new_rows) r
        WHERE grid_code IS NOT NULL GROUP BY grid_code;""")


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
