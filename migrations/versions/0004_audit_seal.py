"""Audit log sealed after commit: writers append without a global lock, a sealer chains them.

0003 chained each row inside its writer's transaction under one advisory lock; that
serialised every audited commit behind the previous one's fsync (benchmarks/README.md, "Design
figures"). Now a writer only inserts; the sealer (one at a
time, advisory lock) gives committed rows their chain position and hash, in the order it sees
them. Rows 0003 already chained keep their hashes (their position is their seq).

Revision ID: 0004_audit_seal
Revises: 0003_security
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004_audit_seal"
down_revision = "0003_security"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE SEQUENCE audit_log_seq_seq OWNED BY audit_log.seq;
SELECT setval('audit_log_seq_seq', COALESCE((SELECT max(seq) FROM audit_log), 0) + 1, false);
ALTER TABLE audit_log ALTER COLUMN seq SET DEFAULT nextval('audit_log_seq_seq'),
    ALTER COLUMN prev_hash DROP NOT NULL, ALTER COLUMN hash DROP NOT NULL,
    ADD COLUMN chain_pos bigint UNIQUE;
ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
UPDATE audit_log SET chain_pos = seq;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;
CREATE INDEX audit_log_unsealed_idx ON audit_log (seq) WHERE hash IS NULL;

-- Content is never changed and rows are never deleted; the one update allowed is the seal
-- (chain position and hashes, set once on a row that has none).
CREATE OR REPLACE FUNCTION gridcore_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.hash IS NULL AND OLD.chain_pos IS NULL
       AND NEW.hash IS NOT NULL AND NEW.chain_pos IS NOT NULL
       AND (NEW.seq, NEW.at, NEW.actor, NEW.action, NEW.target, NEW.details, NEW.remote_addr)
           IS NOT DISTINCT FROM
           (OLD.seq, OLD.at, OLD.actor, OLD.action, OLD.target, OLD.details, OLD.remote_addr)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""

DOWNGRADE = """
CREATE OR REPLACE FUNCTION gridcore_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
DROP INDEX IF EXISTS audit_log_unsealed_idx;
ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
DELETE FROM audit_log WHERE hash IS NULL;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;
ALTER TABLE audit_log DROP COLUMN chain_pos, ALTER COLUMN seq DROP DEFAULT,
    ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL;
DROP SEQUENCE IF EXISTS audit_log_seq_seq;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
