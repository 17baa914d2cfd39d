"""City parts per H3 cell, class and state (部件按六边形汇总): low-zoom part tiles read counts.

A part tile below zoom 14 shows H3 hexagons with counts. At ten million parts a zoom-12 tile
held up to 160,000 points. ``part_cell`` keeps, per cell at two levels (7 and 9: hexagons of
resolutions 6–7 and 8–9 are ranges of them), class (4 digits) and state, how many parts lie
there; a tile filtered by class, major class or state sums the matching rows.

Signed deltas as ``case_cell`` (0021): statement triggers append, in the writing transaction,
one row per level, cell, class and state that a statement's parts entered or left (insert only:
no row lock, no deadlock between writers); the bulk import's COPY fires the insert trigger once
for all its rows. The background job of ``gridcore serve`` folds the deltas. A part whose stored
cell is coarser than a level (``GRIDCORE_H3_RESOLUTION`` below 9) is not counted at that level;
``layers/ogc/part_cells.py`` recounts by the same rule.

Revision ID: 0022_part_cells
Revises: 0021_case_cells
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0022_part_cells"
down_revision = "0021_case_cells"
branch_labels = None
depends_on = None

# The rows of a transition table per level: a cell only where the stored cell is at least as
# fine as the level (bits 52–55 hold its resolution).
_CELLS = """
    SELECT l.res, gridcore_h3_cell(r.h3, l.res) AS cell, r.class_code, r.state, {sign} AS n
    FROM {rows} r CROSS JOIN (VALUES (7), (9)) l(res)
    WHERE r.h3 ~* '^[0-9a-f]{{15,16}}$'
      AND ((('x' || lpad(r.h3, 16, '0'))::bit(64)::bigint >> 52) & 15) >= l.res"""

CREATE = """
CREATE TABLE part_cell (
    res smallint NOT NULL,          -- the level: 7 or 9
    cell bigint NOT NULL,           -- the H3 cell at that level (its integer form)
    class_code varchar(4) NOT NULL,
    state varchar(10) NOT NULL,
    parts integer NOT NULL          -- parts it gained (or lost, negative)
);
CREATE INDEX part_cell_idx ON part_cell (res, cell);
-- the parts no level-7 cell counts (layers/ogc/part_cells.py UNCOUNTED: the same expression),
-- so that the counts per class (the /map's class list) never scan every part
CREATE INDEX city_part_uncounted_idx ON city_part (class_code)
    WHERE (h3 IS NULL OR h3 !~* '^[0-9a-f]{15,16}$' OR ((('x' || lpad(h3, 16, '0'))::bit(64)
           ::bigint >> 52) & 15) < 7);

"""

# A transition table exists only for the events that have it: one function per event.
TRIGGERS = """
CREATE FUNCTION gridcore_part_cells_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO part_cell (res, cell, class_code, state, parts)
    SELECT res, cell, class_code, state, sum(n) FROM ({ins}) d GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;
CREATE FUNCTION gridcore_part_cells_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO part_cell (res, cell, class_code, state, parts)
    SELECT res, cell, class_code, state, sum(n) FROM ({ins} UNION ALL {dels}) d
    GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0;
    RETURN NULL;
END $$;
CREATE FUNCTION gridcore_part_cells_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO part_cell (res, cell, class_code, state, parts)
    SELECT res, cell, class_code, state, sum(n) FROM ({dels}) d GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;
CREATE FUNCTION gridcore_part_cells_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM part_cell;
    RETURN NULL;
END $$;
CREATE TRIGGER city_part_cells_ins AFTER INSERT ON city_part
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridcore_part_cells_ins();
CREATE TRIGGER city_part_cells_upd AFTER UPDATE ON city_part
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridcore_part_cells_upd();
CREATE TRIGGER city_part_cells_del AFTER DELETE ON city_part
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gridcore_part_cells_del();
CREATE TRIGGER city_part_cells_truncate AFTER TRUNCATE ON city_part
    FOR EACH STATEMENT EXECUTE FUNCTION gridcore_part_cells_truncate();
""".format(ins=_CELLS.format(sign=1, rows="new_rows"),
           dels=_CELLS.format(sign=-1, rows="old_rows"))

FILL = f"""
INSERT INTO part_cell (res, cell, class_code, state, parts)
SELECT res, cell, class_code, state, sum(n) FROM ({_CELLS.format(sign=1, rows="city_part")}) d
GROUP BY 1, 2, 3, 4;
-- a tile reads a few hundred ranges of (res, cell): stored in that order, each is a page or two
CLUSTER part_cell USING part_cell_idx;
ANALYZE part_cell;
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS city_part_cells_truncate ON city_part;
DROP TRIGGER IF EXISTS city_part_cells_del ON city_part;
DROP TRIGGER IF EXISTS city_part_cells_upd ON city_part;
DROP TRIGGER IF EXISTS city_part_cells_ins ON city_part;
DROP FUNCTION IF EXISTS gridcore_part_cells_truncate();
DROP FUNCTION IF EXISTS gridcore_part_cells_del();
DROP FUNCTION IF EXISTS gridcore_part_cells_upd();
DROP FUNCTION IF EXISTS gridcore_part_cells_ins();
DROP TABLE IF EXISTS part_cell;
DROP INDEX IF EXISTS city_part_uncounted_idx;
"""


def upgrade() -> None:
    op.execute(CREATE + TRIGGERS + FILL)


def downgrade() -> None:
    op.execute(DOWNGRADE)
