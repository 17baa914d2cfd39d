"""Settled cases per H3 cell (按六边形汇总): the low-zoom case tiles read counts, not cases.

A case tile below zoom 14 shows H3 hexagons with counts. Without a filter it counts every case
ever reported in the hexagon: at millions of cases a zoom-10 tile grouped hundreds of thousands
of rows. Settled cases (closed, voided, merged) never change colour, so their counts are kept
per cell at two resolutions (8 and 10: parents of resolutions 6–8 and 9–10 are ranges of them);
open cases, whose clocks run, stay live (an index of their own). ``layers/ogc/case_cells.py``
reads, compacts, rebuilds and checks them.

``case_cell`` takes signed deltas: a statement trigger appends, in the writing transaction, one
row per level and cell a statement's cases entered or left the settled states with (insert only:
no row lock, so concurrent steps never wait on each other or deadlock); the background job of
``gridcore serve`` folds them (``compact``). A cell's count is the sum of its rows.

Revision ID: 0021_case_cells
Revises: 0020_eval_facts
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0021_case_cells"
down_revision = "0020_eval_facts"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE case_cell (
    res smallint NOT NULL,      -- the level: 8 or 10
    cell bigint NOT NULL,       -- the H3 cell at that level (its integer form)
    settled integer NOT NULL    -- settled cases it gained (or lost, negative)
);
CREATE INDEX case_cell_idx ON case_cell (res, cell);

-- The cell at resolution ``res`` holding a stored cell (hex text, finer or equal): the
-- resolution bits set to ``res``, the digits below it to 7 (unused), as H3 defines a parent.
-- Callers pass only what looks like an H3 index (15–16 hex digits): a write never fails on
-- a malformed cell, which is then simply not counted (nor shown: the tiles read the same way).
CREATE FUNCTION gridcore_h3_cell(h3 text, res integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (('x' || lpad(h3, 16, '0'))::bit(64)::bigint & ~(15::bigint << 52))
           | (res::bigint << 52) | ((1::bigint << (3 * (15 - res))) - 1)
$$;

CREATE FUNCTION gridcore_case_cells() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO case_cell (res, cell, settled)
        SELECT l.res, gridcore_h3_cell(n.h3, l.res), count(*)
        FROM new_rows n CROSS JOIN (VALUES (8), (10)) l(res)
        WHERE n.h3 ~* '^[0-9a-f]{15,16}$' AND n.state IN ('closed', 'voided', 'merged')
        GROUP BY 1, 2;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO case_cell (res, cell, settled)
        SELECT l.res, gridcore_h3_cell(d.h3, l.res), sum(d.delta)
        FROM (SELECT h3, 1 AS delta FROM new_rows
              WHERE h3 ~* '^[0-9a-f]{15,16}$' AND state IN ('closed', 'voided', 'merged')
              UNION ALL
              SELECT h3, -1 FROM old_rows
              WHERE h3 ~* '^[0-9a-f]{15,16}$' AND state IN ('closed', 'voided', 'merged')) d
        CROSS JOIN (VALUES (8), (10)) l(res)
        GROUP BY 1, 2 HAVING sum(d.delta) <> 0;
    ELSE
        INSERT INTO case_cell (res, cell, settled)
        SELECT l.res, gridcore_h3_cell(o.h3, l.res), -count(*)
        FROM old_rows o CROSS JOIN (VALUES (8), (10)) l(res)
        WHERE o.h3 ~* '^[0-9a-f]{15,16}$' AND o.state IN ('closed', 'voided', 'merged')
        GROUP BY 1, 2;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER case_record_cells_ins AFTER INSERT ON case_record
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridcore_case_cells();
CREATE TRIGGER case_record_cells_upd AFTER UPDATE ON case_record
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridcore_case_cells();
CREATE TRIGGER case_record_cells_del AFTER DELETE ON case_record
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gridcore_case_cells();

CREATE FUNCTION gridcore_case_cells_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM case_cell;
    RETURN NULL;
END $$;
CREATE TRIGGER case_record_cells_truncate AFTER TRUNCATE ON case_record
    FOR EACH STATEMENT EXECUTE FUNCTION gridcore_case_cells_truncate();

INSERT INTO case_cell (res, cell, settled)
SELECT l.res, gridcore_h3_cell(c.h3, l.res), count(*)
FROM case_record c CROSS JOIN (VALUES (8), (10)) l(res)
WHERE c.h3 ~* '^[0-9a-f]{15,16}$' AND c.state IN ('closed', 'voided', 'merged')
GROUP BY 1, 2;
ANALYZE case_cell;
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS case_record_cells_truncate ON case_record;
DROP TRIGGER IF EXISTS case_record_cells_del ON case_record;
DROP TRIGGER IF EXISTS case_record_cells_upd ON case_record;
DROP TRIGGER IF EXISTS case_record_cells_ins ON case_record;
DROP FUNCTION IF EXISTS gridcore_case_cells_truncate();
DROP FUNCTION IF EXISTS gridcore_case_cells();
DROP FUNCTION IF EXISTS gridcore_h3_cell(text, integer);
DROP TABLE IF EXISTS case_cell;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
