"""The audit log guarded beyond its row trigger (issue 18, finding 3).

* A statement trigger refuses ``TRUNCATE audit_log`` (the row trigger never sees a truncate).
* ``gridcore_audit_seal`` — the one way to seal rows: it fills in the chain position and the
  hashes of rows that have none, continuing the chain's head, and runs with its owner's rights
  (``SECURITY DEFINER``), so the application role needs no UPDATE on ``audit_log`` at all
  (``layers/db/roles.py``: it may only read and insert there).

Revision ID: 0012_audit_guard
Revises: 0011_case_caller
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0012_audit_guard"
down_revision = "0011_case_caller"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE FUNCTION gridcore_audit_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (TRUNCATE refused)'
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION gridcore_audit_no_truncate();

CREATE FUNCTION gridcore_audit_seal(seqs bigint[], positions bigint[], prevs text[],
                                    hashes text[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    head_pos bigint;
    head_hash text;
    sealed integer;
BEGIN
    IF cardinality(seqs) = 0 THEN
        RETURN 0;
    END IF;
    SELECT chain_pos, hash INTO head_pos, head_hash FROM audit_log
        WHERE chain_pos IS NOT NULL ORDER BY chain_pos DESC LIMIT 1;
    -- a seal continues the chain where it ends, or it is refused
    IF positions[1] <> coalesce(head_pos, 0) + 1
       OR prevs[1] <> coalesce(head_hash, repeat('0', 64)) THEN
        RAISE EXCEPTION 'audit seal does not continue the chain at %', coalesce(head_pos, 0)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE audit_log a SET chain_pos = v.pos, prev_hash = v.prev, hash = v.hash
    FROM unnest(seqs, positions, prevs, hashes) AS v (seq, pos, prev, hash)
    WHERE a.seq = v.seq AND a.hash IS NULL AND a.chain_pos IS NULL;
    GET DIAGNOSTICS sealed = ROW_COUNT;
    RETURN sealed;
END $$;
REVOKE ALL ON FUNCTION gridcore_audit_seal(bigint[], bigint[], text[], text[]) FROM PUBLIC;
"""

DOWNGRADE = """
DROP FUNCTION IF EXISTS gridcore_audit_seal(bigint[], bigint[], text[], text[]);
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
DROP FUNCTION IF EXISTS gridcore_audit_no_truncate();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
