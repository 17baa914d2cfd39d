"""One B-tree less on every case written: ``case_record_grid_idx`` (grid_code) goes
(案件表去掉一个冗余索引).

``case_record_repeat_idx`` (grid_code, category_key, h3, created_at; migration 0013) begins
with the same column, so every lookup by grid — a grid's open cases on the map
(layers/ogc/map_queries.py), the health recount of a grid's days (layers/health/days.py), a
health or evaluation filter on one grid (``grid_code = :code`` / ``= ANY(...)``) — can read it
instead; on the 1 M megacity the planner already chose it over ``case_record_grid_idx`` in every
partition but one (the current year's) for both queries. What goes is one index insertion per
case and its share of the write-ahead log: on the 3 M megacity 1 record and up to 6.6 KB of
full-page images per case after a checkpoint (benchmarks/README.md, session 10).

Revision ID: 0028_case_grid_index
Revises: 0027_health_dirty_changes
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0028_case_grid_index"
down_revision = "0027_health_dirty_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the partitioned index: its partitions' indexes go with it
    op.execute("DROP INDEX IF EXISTS case_record_grid_idx")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS case_record_grid_idx ON case_record (grid_code)")
