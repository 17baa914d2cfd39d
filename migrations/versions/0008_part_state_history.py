"""City-part state history (部件状态历史): every state change of a part with the case and step
that caused it. A registered case linked to a part puts the part in its class's case state
(damaged / missing / occupied); closing it puts the part back to intact (gridcore.lifecycle).

Revision ID: 0008_part_state_history
Revises: 0007_layer_version_shards
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0008_part_state_history"
down_revision = "0007_layer_version_shards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE part_state_history (
    id bigserial PRIMARY KEY,
    -- no foreign key: the bulk part import drops and re-adds city_part's primary key
    part_code varchar(16) NOT NULL,
    at timestamptz NOT NULL,
    from_state varchar(10) NOT NULL,
    to_state varchar(10) NOT NULL,
    case_id bigint REFERENCES case_record (id),
    action varchar(16) NOT NULL,
    actor text NOT NULL DEFAULT '',
    CONSTRAINT part_state_history_states CHECK (
        from_state IN ('intact', 'damaged', 'missing', 'occupied')
        AND to_state IN ('intact', 'damaged', 'missing', 'occupied'))
);
CREATE INDEX part_state_history_part_idx ON part_state_history (part_code, at);
CREATE INDEX part_state_history_case_idx ON part_state_history (case_id);
-- the open cases holding a part are found by the case's part (layers/cases/part_state.py)
CREATE INDEX case_record_part_idx ON case_record (part_code) WHERE part_code IS NOT NULL;
""")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS case_record_part_idx")
    op.execute("DROP TABLE IF EXISTS part_state_history")
