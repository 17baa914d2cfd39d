"""Security: users with roles and areas, API keys, the hash-chained audit log.

Revision ID: 0003_security
Revises: 0002_cases
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0003_security"
down_revision = "0002_cases"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE app_user (
    id bigserial PRIMARY KEY,
    username varchar(64) NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{2,64}$'),
    display_name text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    role varchar(24) NOT NULL CHECK (role IN ('grid_worker', 'dispatcher', 'department_handler',
                                              'manager', 'analyst', 'admin')),
    department_code varchar(40),
    disabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT app_user_handler_department
        CHECK (role <> 'department_handler' OR department_code IS NOT NULL)
);

-- Area codes nest by prefix: district 6, street 9, community 12, grid 15 digits.
CREATE TABLE user_area (
    user_id bigint NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    area_code varchar(15) NOT NULL CHECK (area_code ~ '^[0-9]+$'
                                          AND length(area_code) IN (6, 9, 12, 15)),
    PRIMARY KEY (user_id, area_code)
);

-- Only a prefix and a hash are stored; the secret is shown once, when the key is made.
CREATE TABLE api_key (
    id bigserial PRIMARY KEY,
    prefix varchar(16) NOT NULL UNIQUE,
    secret_sha256 char(64) NOT NULL,
    owner text NOT NULL,
    purpose varchar(16) NOT NULL CHECK (purpose IN ('open311', 'iot')),
    revoked boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Append-only, hash-chained: hash = sha256(prev_hash || canonical content of the row).
CREATE TABLE audit_log (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{}',
    remote_addr text,
    prev_hash char(64) NOT NULL,
    hash char(64) NOT NULL
);
CREATE INDEX audit_log_target_idx ON audit_log (target);
CREATE INDEX audit_log_actor_at_idx ON audit_log (actor, at);

CREATE FUNCTION gridcore_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION gridcore_audit_append_only();
"""

DOWNGRADE = """
DROP TABLE IF EXISTS audit_log;
DROP FUNCTION IF EXISTS gridcore_audit_append_only();
DROP TABLE IF EXISTS api_key;
DROP TABLE IF EXISTS user_area;
DROP TABLE IF EXISTS app_user;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
