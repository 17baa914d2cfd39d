"""City-part code columns compare bytewise (COLLATE "C").

``code``, ``class_code``, ``grid_code`` and ``h3`` hold only ASCII digits and lowercase hex, so
every collation orders them the same way; but any collation other than "C" makes PostgreSQL
compare them through ``strcoll`` and gives up abbreviated sort keys. On the 1M-row import
benchmark that was about half of each B-tree build, on the embedded cluster whose default
collation is C.UTF-8 (benchmarks/README.md, "Design figures"), and of every per-row insert into
those indexes.
Joins with default-collation columns (``unit_grid.code``, case tables) keep working: a column's
non-default collation wins over the database default, and results do not change.

Changing a column's collation rebuilds its indexes, no table rewrite.

Revision ID: 0005_part_code_collation
Revises: 0004_audit_seal
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0005_part_code_collation"
down_revision = "0004_audit_seal"
branch_labels = None
depends_on = None

COLUMNS = (("code", 16), ("class_code", 4), ("grid_code", 15), ("h3", 16))


def _alter(collation: str) -> str:
    changes = ", ".join(f"ALTER COLUMN {name} TYPE varchar({width}){collation}"
                        for name, width in COLUMNS)
    return f"ALTER TABLE city_part {changes}"


def upgrade() -> None:
    op.execute(_alter(' COLLATE "C"'))


def downgrade() -> None:
    op.execute(_alter(' COLLATE "default"'))
