"""The part cells' "uncounted" partial index with a cheaper predicate (未计入部件索引谓词提速).

``city_part_uncounted_idx`` (migration 0022) finds the parts no level-7 cell counts: no stored
cell, a stored value that is not a cell, or a cell coarser than level 7. Its predicate is
evaluated for every part whenever the index is built — the bulk import of parts rebuilds it
after its COPY (``layers.db.bulk.deferred_indexes``) — although none qualifies. Its
case-insensitive anchored regular expression (``h3 !~* '^[0-9a-f]{15,16}$'``) cost about 2 µs a
row: 14 s of the 10 M parts import (benchmarks/README.md, session 5). The same set of rows is
"not 15 or 16 characters, or a character that is not a hexadecimal digit": a length and a
one-class search, about a third of that (session 10). ``layers/ogc/part_cells.py`` UNCOUNTED
is the same expression, so that the class counts keep using the index.

Revision ID: 0029_part_uncounted_cheap
Revises: 0028_case_grid_index
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0029_part_uncounted_cheap"
down_revision = "0028_case_grid_index"
branch_labels = None
depends_on = None

UPGRADE = """
DROP INDEX IF EXISTS city_part_uncounted_idx;
CREATE INDEX city_part_uncounted_idx ON city_part (class_code)
    WHERE (h3 IS NULL OR length(h3) NOT IN (15, 16) OR h3 ~ '[^0-9a-fA-F]'
           OR ((('x' || lpad(h3, 16, '0'))::bit(64)::bigint >> 52) & 15) < 7);
"""

DOWNGRADE = """
DROP INDEX IF EXISTS city_part_uncounted_idx;
CREATE INDEX city_part_uncounted_idx ON city_part (class_code)
    WHERE (h3 IS NULL OR h3 !~* '^[0-9a-f]{15,16}$' OR ((('x' || lpad(h3, 16, '0'))::bit(64)
           ::bigint >> 52) & 15) < 7);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
