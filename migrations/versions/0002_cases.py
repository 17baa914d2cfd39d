"""Cases: the case record (案卷), its append-only history and its photos.

Revision ID: 0002_cases
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002_cases"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

STATES = ("reported", "verified", "voided", "registered", "dispatched", "accepted",
          "sent_back", "handled", "fed_back", "checked", "closed", "rework", "merged")
_STATE_LIST = ", ".join(f"'{s}'" for s in STATES)

UPGRADE = f"""
CREATE TABLE case_record (
    id bigserial PRIMARY KEY,
    public_no text GENERATED ALWAYS AS ('C' || lpad(id::text, 8, '0')) STORED UNIQUE,
    -- A resend with the same key and the same payload hash is the same case; with another
    -- payload it is refused (409).
    idempotency_key varchar(128) NOT NULL UNIQUE,
    payload_hash char(64) NOT NULL,
    category_key varchar(5) NOT NULL REFERENCES category (key),
    description text NOT NULL DEFAULT '',
    geom geometry(Point, 4326) NOT NULL,
    input_crs varchar(32) NOT NULL DEFAULT 'EPSG:4326',
    input_x double precision NOT NULL,
    input_y double precision NOT NULL,
    -- The generation-specific grid row: a case keeps the grid it was filed in.
    grid_id bigint REFERENCES unit_grid (id),
    grid_code varchar(15),
    community_code varchar(12),
    street_code varchar(9),
    district_code varchar(6),
    h3 varchar(16),
    part_code varchar(16),
    source varchar(16) NOT NULL DEFAULT 'other'
        CHECK (source IN ('grid_worker', 'hotline', 'citizen', 'machine', 'open311', 'other')),
    reporter text NOT NULL DEFAULT '',
    state varchar(12) NOT NULL DEFAULT 'reported' CHECK (state IN ({_STATE_LIST})),
    department_code varchar(32) REFERENCES department (code),
    proposed_department varchar(32),
    proposal_rule text NOT NULL DEFAULT '',
    refused_departments varchar(32)[] NOT NULL DEFAULT '{{}}',
    stage varchar(10) CHECK (stage IN ('dispatch', 'handle', 'check')),
    stage_started_at timestamptz,
    stage_limit varchar(12),
    warn_at timestamptz,
    deadline_at timestamptz,
    parked_since timestamptz,
    parked_intervals jsonb NOT NULL DEFAULT '[]',
    parked_seconds double precision NOT NULL DEFAULT 0,
    check_result varchar(4) CHECK (check_result IN ('pass', 'fail')),
    supervised boolean NOT NULL DEFAULT false,
    primary_case_id bigint REFERENCES case_record (id),
    intake jsonb NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    closed_at timestamptz,
    version integer NOT NULL DEFAULT 1
);
CREATE INDEX case_record_geom_idx ON case_record USING gist (geom);
CREATE INDEX case_record_open_geom_idx ON case_record USING gist (geom)
    WHERE state NOT IN ('closed', 'voided', 'merged');
CREATE INDEX case_record_created_idx ON case_record (created_at, id);
CREATE INDEX case_record_state_idx ON case_record (state);
CREATE INDEX case_record_grid_idx ON case_record (grid_code);
CREATE INDEX case_record_community_idx ON case_record (community_code);
CREATE INDEX case_record_street_idx ON case_record (street_code);
CREATE INDEX case_record_district_idx ON case_record (district_code);
CREATE INDEX case_record_department_idx ON case_record (department_code);
CREATE INDEX case_record_category_idx ON case_record (category_key);
CREATE INDEX case_record_deadline_idx ON case_record (deadline_at)
    WHERE state NOT IN ('closed', 'voided', 'merged');
CREATE INDEX case_record_primary_idx ON case_record (primary_case_id);

CREATE TABLE case_history (
    id bigserial PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES case_record (id),
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    role varchar(20) NOT NULL,
    action varchar(16) NOT NULL,
    from_state varchar(12),
    to_state varchar(12) NOT NULL,
    reason text NOT NULL DEFAULT '',
    attachments jsonb NOT NULL DEFAULT '[]',
    details jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX case_history_case_idx ON case_history (case_id, id);

-- History is append-only: a row, once written, is never changed or removed.
CREATE FUNCTION gridcore_case_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_history is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER case_history_append_only BEFORE UPDATE OR DELETE ON case_history
    FOR EACH ROW EXECUTE FUNCTION gridcore_case_history_append_only();

CREATE TABLE case_photo (
    id bigserial PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES case_record (id),
    path text NOT NULL,
    sha256 char(64) NOT NULL,
    content_type varchar(32) NOT NULL,
    size_bytes integer NOT NULL CHECK (size_bytes > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_photo_case_idx ON case_photo (case_id);

CREATE TRIGGER case_record_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON case_record FOR EACH STATEMENT EXECUTE FUNCTION gridcore_bump_layer_version('cases');
INSERT INTO layer_version (layer, version) VALUES ('cases', 0) ON CONFLICT DO NOTHING;
"""

DOWNGRADE = """
DROP TABLE IF EXISTS case_photo;
DROP TABLE IF EXISTS case_history;
DROP FUNCTION IF EXISTS gridcore_case_history_append_only();
DROP TABLE IF EXISTS case_record;
DELETE FROM layer_version WHERE layer = 'cases';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
