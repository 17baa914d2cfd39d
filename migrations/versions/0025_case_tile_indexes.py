"""Case tiles read indexes, not the case rows (案件瓦片只读索引).

At 10 M cases the case tiles spent their time fetching case rows one heap page each: the
hexagons of a low zoom counted the open cases of a 40 km tile from wherever their rows lay,
and a point tile at z15–16 read one page per case (thousands of pages for a busy block).

- ``case_record_open_cell_idx``: the open cases by their level-10 H3 cell, with what their
  clock colour needs. A hexagon of display resolution 6–10 is a range of level-10 cells
  (``layers.ogc.case_cells.child_range``), so its open cases are one index range read without
  touching the table (an index-only scan), as the settled ones are a range of ``case_cell``.
- ``case_record_geom_idx`` becomes covering: the GiST index on the place also carries the
  point and the properties a point tile shows, so a point tile is an index-only scan of the
  few index pages of its neighbourhood (a sorted GiST build keeps near points on near pages)
  instead of one table page per case. It replaces the plain index (the same searches use it).

Revision ID: 0025_case_tile_indexes
Revises: 0024_event_notify_after
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0025_case_tile_indexes"
down_revision = "0024_event_notify_after"
branch_labels = None
depends_on = None

OPEN = "state NOT IN ('closed', 'voided', 'merged')"
H3_TEXT = "h3 ~* '^[0-9a-f]{15,16}$'"
# What a point tile selects (layers/ogc/collections.py, the case fields in tiles, the clock
# and the moment it changes); a column added to the tiles should be added here too.
POINT_COLUMNS = ("geom, id, public_no, state, stage, category_key, department_code, "
                 "grid_code, warn_at, deadline_at, parked_since")
OPEN_CELL = (f"(gridcore_h3_cell(h3, 10)) INCLUDE (h3, state, warn_at, deadline_at, "
             f"parked_since) WHERE {OPEN} AND {H3_TEXT}")
GEOM = f"USING gist (geom) INCLUDE ({POINT_COLUMNS})"


def upgrade() -> None:
    op.execute(f"CREATE INDEX case_record_open_cell_idx ON case_record {OPEN_CELL}")
    op.execute("DROP INDEX case_record_geom_idx")
    op.execute(f"CREATE INDEX case_record_geom_idx ON case_record {GEOM}")


def downgrade() -> None:
    op.execute("DROP INDEX case_record_geom_idx")
    op.execute("CREATE INDEX case_record_geom_idx ON case_record USING gist (geom)")
    op.execute("DROP INDEX case_record_open_cell_idx")
