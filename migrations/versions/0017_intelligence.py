"""Intelligence: imported case history, the model table, the stored forecast.

- ``case_record`` learns where an imported case came from (``source_system`` + ``source_id``,
  unique together: a re-import updates instead of duplicating), the original values the
  mapping replaced (``origin``), and how its class was decided (``category_source``: reported by
  a person, predicted by the classifier at intake, or imported through the mapping table).
  A legacy case may have no location at all (a hotline message): ``geom`` and the input
  coordinates may then be NULL, for imported cases only.
- ``intel_model``: every trained model (classification, dispatch, forecast) with its version,
  data window, held-out metrics, threshold and library versions, the bytes themselves, and which
  one is active per kind (at most one). Its writes bump the ``models`` layer version, which every
  server process polls to load a newly activated model without a restart.
- ``case_forecast``: the expected cases of the week after a forecast model's data, per area
  (grid, community) × class, for the map layer and the patrol list.

Revision ID: 0017_intelligence
Revises: 0016_levels
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0017_intelligence"
down_revision = "0016_levels"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE case_record
    ADD COLUMN source_system varchar(64),
    ADD COLUMN source_id text,
    ADD COLUMN category_source varchar(10) NOT NULL DEFAULT 'reported'
        CHECK (category_source IN ('reported', 'predicted', 'imported')),
    ADD COLUMN origin jsonb,
    ALTER COLUMN geom DROP NOT NULL,
    ALTER COLUMN input_x DROP NOT NULL,
    ALTER COLUMN input_y DROP NOT NULL,
    ADD CONSTRAINT case_record_source_pair
        CHECK ((source_system IS NULL) = (source_id IS NULL)),
    -- only an imported case, or a report waiting in the 待定位 queue (levels' migration), may
    -- lack a location: this check replaces the levels' migration's case_record_placed
    DROP CONSTRAINT IF EXISTS case_record_placed,
    ADD CONSTRAINT case_record_located
        CHECK (geom IS NOT NULL OR source_system IS NOT NULL OR location_source = 'unlocated');
CREATE UNIQUE INDEX case_record_source_idx ON case_record (source_system, source_id)
    WHERE source_system IS NOT NULL;

CREATE TABLE intel_model (
    id bigserial PRIMARY KEY,
    kind varchar(16) NOT NULL CHECK (kind IN ('classify', 'dispatch', 'forecast')),
    version integer NOT NULL,
    trained_at timestamptz NOT NULL DEFAULT now(),
    trained_by text NOT NULL DEFAULT '',
    data_from timestamptz,
    data_to timestamptz,
    n_cases integer NOT NULL,
    params jsonb NOT NULL DEFAULT '{}',
    metrics jsonb NOT NULL DEFAULT '{}',
    threshold double precision,
    sklearn_version text NOT NULL,
    active boolean NOT NULL DEFAULT false,
    activated_at timestamptz,
    note text NOT NULL DEFAULT '',
    size_bytes integer NOT NULL,
    model bytea NOT NULL,
    UNIQUE (kind, version)
);
CREATE UNIQUE INDEX intel_model_active_idx ON intel_model (kind) WHERE active;
CREATE TRIGGER intel_model_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON intel_model FOR EACH STATEMENT EXECUTE FUNCTION gridcore_bump_layer_version('models');
INSERT INTO layer_version_shard (layer, shard, version) VALUES ('models', 0, 0)
    ON CONFLICT DO NOTHING;

CREATE TABLE case_forecast (
    model_id bigint NOT NULL REFERENCES intel_model (id) ON DELETE CASCADE,
    level varchar(10) NOT NULL CHECK (level IN ('grid', 'community')),
    area_code varchar(15) NOT NULL,
    category_key varchar(5) NOT NULL,
    week date NOT NULL,
    expected double precision NOT NULL,
    p90 double precision NOT NULL,
    PRIMARY KEY (model_id, level, area_code, category_key)
);
CREATE INDEX case_forecast_rank_idx ON case_forecast (model_id, level, expected DESC);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS case_forecast;
DROP TABLE IF EXISTS intel_model;
DELETE FROM layer_version_shard WHERE layer = 'models';
DROP INDEX IF EXISTS case_record_source_idx;
ALTER TABLE case_record
    DROP CONSTRAINT IF EXISTS case_record_located,
    -- the levels' check again, for new rows only: imported cases without a place may remain
    ADD CONSTRAINT case_record_placed CHECK (geom IS NOT NULL OR location_source = 'unlocated')
        NOT VALID,
    DROP CONSTRAINT IF EXISTS case_record_source_pair,
    DROP COLUMN IF EXISTS origin,
    DROP COLUMN IF EXISTS category_source,
    DROP COLUMN IF EXISTS source_id,
    DROP COLUMN IF EXISTS source_system;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    # Cases imported without a location cannot go back under NOT NULL: the downgrade refuses
    # them with PostgreSQL's own message rather than inventing a place.
    op.execute(DOWNGRADE)
    op.execute("ALTER TABLE case_record ALTER COLUMN geom SET NOT NULL, "
               "ALTER COLUMN input_x SET NOT NULL, ALTER COLUMN input_y SET NOT NULL")
