"""Layer versions kept in shards: a busy layer's writers no longer queue on one row.

Every writing statement bumps its layer's version inside its own transaction, which locks that
layer's row until commit. For cases — hundreds of reports a second — that one row was the
bottleneck: each commit waited for the previous holder's WAL flush and for the scheduler to
wake it (bench_intake's diagnosis with the trigger disabled: benchmarks/README.md, "Design
figures").

``layer_version`` becomes a view: the sum of the layer's shard counters. The trigger takes an
optional shard count; a writer bumps the shard of its server process (``pg_backend_pid() %
n``), so concurrent writers mostly touch different rows. The version still only grows, and it
changes in the same commit as the rows (a reader that sees a new version sees the new rows),
so every reader — tile ETags, the grid index, health caches — reads it as before. Cases get 16
shards; the other layers, written in bulk, keep one.

Revision ID: 0007_layer_version_shards
Revises: 0006_part_code_check
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0007_layer_version_shards"
down_revision = "0006_part_code_check"
branch_labels = None
depends_on = None

CASE_SHARDS = 16

UPGRADE = f"""
ALTER TABLE layer_version RENAME TO layer_version_shard;
ALTER TABLE layer_version_shard ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE layer_version_shard DROP CONSTRAINT layer_version_pkey;
ALTER TABLE layer_version_shard ADD CONSTRAINT layer_version_shard_pkey PRIMARY KEY (layer, shard);

CREATE VIEW layer_version AS
    SELECT layer, sum(version)::bigint AS version, max(changed_at) AS changed_at
    FROM layer_version_shard GROUP BY layer;

CREATE OR REPLACE FUNCTION gridcore_bump_layer_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n int := CASE WHEN TG_NARGS > 1 THEN TG_ARGV[1]::int ELSE 1 END;
BEGIN
    INSERT INTO layer_version_shard (layer, shard, version, changed_at)
    VALUES (TG_ARGV[0], pg_backend_pid() % n, 1, now())
    ON CONFLICT (layer, shard) DO UPDATE
        SET version = layer_version_shard.version + 1, changed_at = now();
    RETURN NULL;
END $$;

DROP TRIGGER case_record_layer_version ON case_record;
CREATE TRIGGER case_record_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON case_record FOR EACH STATEMENT
    EXECUTE FUNCTION gridcore_bump_layer_version('cases', '{CASE_SHARDS}');
"""

DOWNGRADE = """
DROP TRIGGER case_record_layer_version ON case_record;
CREATE TRIGGER case_record_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON case_record FOR EACH STATEMENT EXECUTE FUNCTION gridcore_bump_layer_version('cases');

DROP VIEW layer_version;
CREATE TABLE layer_version (
    layer varchar(32) PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO layer_version (layer, version, changed_at)
    SELECT layer, sum(version), max(changed_at) FROM layer_version_shard GROUP BY layer;
DROP TABLE layer_version_shard;

CREATE OR REPLACE FUNCTION gridcore_bump_layer_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO layer_version (layer, version, changed_at) VALUES (TG_ARGV[0], 1, now())
    ON CONFLICT (layer) DO UPDATE
        SET version = layer_version.version + 1, changed_at = now();
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
