"""Evaluation facts (考评事实): one narrow row per case — its departments, the instants of its
steps, its actors, reworks and send-backs, and its working-time durations — so that a month's
evaluation reads one row per case instead of the cases' history (layers/evaluation/store.py);
the cases written since their last count (marked by statement triggers on case_record and
case_history in the writing transaction); and the basis the durations were counted on.

Revision ID: 0020_eval_facts
Revises: 0019_case_partitions
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0020_eval_facts"
down_revision = "0019_case_partitions"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE case_eval_fact (
    case_id bigint PRIMARY KEY REFERENCES case_key (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    closed_at timestamptz,              -- as stored on the case (kept by a reopened case)
    is_closed boolean NOT NULL,
    category_key varchar(5),
    grid_code varchar(15) NOT NULL,
    community_code varchar(12),
    street_code varchar(9),
    district_code varchar(6),
    department_code varchar(32),
    source varchar(16),
    self_handled boolean NOT NULL,
    cb_reached boolean NOT NULL,
    cb_resolved boolean NOT NULL,
    cb_satisfied boolean NOT NULL,
    parked_intervals jsonb NOT NULL,
    parked_since timestamptz,
    rep_at timestamptz, reporter text, reporter_role text,
    ver_at timestamptz, verifier text,
    void_at timestamptz,
    reg_at timestamptz,
    disp_at timestamptz,
    fb_at timestamptz,
    chk_at timestamptz, checker text,
    rework_at timestamptz[],
    send_back_at timestamptz[],
    send_back_by text[],
    limit_min float8, working boolean NOT NULL,
    h_limit float8, h_working boolean NOT NULL,
    k_limit float8, k_working boolean NOT NULL,
    close_min float8,
    handle_min float8,
    verify_min float8,
    check_min float8
);
CREATE INDEX case_eval_fact_created_idx ON case_eval_fact (created_at);
-- the older cases still open when a period begins
CREATE INDEX case_eval_fact_open_idx ON case_eval_fact (created_at) WHERE closed_at IS NULL;
CREATE INDEX case_eval_fact_closed_idx ON case_eval_fact (closed_at, created_at);
-- one party explained: a department's cases, those it sent back, a grid worker's grids
CREATE INDEX case_eval_fact_department_idx ON case_eval_fact (department_code, created_at);
CREATE INDEX case_eval_fact_send_back_idx ON case_eval_fact (created_at)
    WHERE send_back_by IS NOT NULL;
CREATE INDEX case_eval_fact_grid_idx ON case_eval_fact (grid_code, created_at);

CREATE TABLE case_eval_dirty (
    id bigserial PRIMARY KEY,
    case_id bigint NOT NULL
);

CREATE TABLE case_eval_basis (
    basis text NOT NULL,
    built_at timestamptz NOT NULL
);

-- A written case (or a step of its history) marks it for a recount: one row per case and
-- statement. No basis yet (never built): nothing to keep current.
CREATE FUNCTION gridcore_eval_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM case_eval_basis) THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'case_history' THEN
        INSERT INTO case_eval_dirty (case_id) SELECT DISTINCT case_id FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO case_eval_dirty (case_id) SELECT id FROM old_rows;
    ELSE
        INSERT INTO case_eval_dirty (case_id) SELECT id FROM new_rows;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER case_record_eval_dirty_ins AFTER INSERT ON case_record
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridcore_eval_dirty();
CREATE TRIGGER case_record_eval_dirty_upd AFTER UPDATE ON case_record
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridcore_eval_dirty();
CREATE TRIGGER case_history_eval_dirty_ins AFTER INSERT ON case_history
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gridcore_eval_dirty();

CREATE FUNCTION gridcore_eval_facts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM case_eval_basis;
    DELETE FROM case_eval_dirty;
    RETURN NULL;
END $$;
CREATE TRIGGER case_record_eval_facts_truncate AFTER TRUNCATE ON case_record
    FOR EACH STATEMENT EXECUTE FUNCTION gridcore_eval_facts_truncate();
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS case_record_eval_facts_truncate ON case_record;
DROP TRIGGER IF EXISTS case_history_eval_dirty_ins ON case_history;
DROP TRIGGER IF EXISTS case_record_eval_dirty_upd ON case_record;
DROP TRIGGER IF EXISTS case_record_eval_dirty_ins ON case_record;
DROP FUNCTION IF EXISTS gridcore_eval_facts_truncate();
DROP FUNCTION IF EXISTS gridcore_eval_dirty();
DROP TABLE IF EXISTS case_eval_basis;
DROP TABLE IF EXISTS case_eval_dirty;
DROP TABLE IF EXISTS case_eval_fact;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
