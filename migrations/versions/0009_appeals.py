"""Appeals (申诉) against one case's effect on one party's evaluation, with their own deadline
and decision; and the index one department's explanation reads its send-backs by.

Revision ID: 0009_appeals
Revises: 0008_part_state_history
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0009_appeals"
down_revision = "0008_part_state_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE appeal (
    id bigserial PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES case_record (id),
    party_kind varchar(12) NOT NULL,
    party_code varchar(40) NOT NULL,
    penalty varchar(16) NOT NULL,
    period varchar(24) NOT NULL,
    reason text NOT NULL,
    attachments jsonb NOT NULL DEFAULT '[]',
    state varchar(10) NOT NULL DEFAULT 'filed',
    filed_by text NOT NULL,
    filed_role varchar(20) NOT NULL,
    filed_at timestamptz NOT NULL,
    decide_by timestamptz NOT NULL,
    decided_by text,
    decided_at timestamptz,
    decision_reason text,
    version integer NOT NULL DEFAULT 1,
    CONSTRAINT appeal_state CHECK (state IN ('filed', 'approved', 'rejected')),
    CONSTRAINT appeal_party_kind CHECK (party_kind IN ('department', 'area', 'worker'))
);
-- one appeal in force per case, party and penalty (a rejected one may be followed by another)
CREATE UNIQUE INDEX appeal_live_idx ON appeal (case_id, party_kind, party_code, penalty)
    WHERE state IN ('filed', 'approved');
CREATE INDEX appeal_party_idx ON appeal (party_kind, party_code, state);
CREATE INDEX appeal_case_idx ON appeal (case_id) WHERE state = 'approved';
-- a department's send-backs, for its explanation; cases never sent back are not indexed,
-- so case intake writes nothing more
CREATE INDEX case_record_refused_idx ON case_record USING gin (refused_departments)
    WHERE refused_departments <> '{}';
""")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS case_record_refused_idx")
    op.execute("DROP TABLE IF EXISTS appeal")
