"""Addresses, named places and named streets (地址、地名、道路) for geocoding.

- ``address``: a point with a street + house number (``kind='address'``) or a name
  (``kind='place'``), the unit grid it lies in (NULL outside every grid) and its search keys:
  ``street_key`` / ``name_key`` / ``alias_key`` (folded, Chinese spelled in pinyin:
  ``gridcore.geocoding.text``) indexed by ``pg_trgm`` trigrams, ``cjk`` (Chinese character
  bigrams) by GIN, and ``tsv`` (words of the names and street, the ``simple`` configuration)
  for full-text matches.
- ``street``: one row per street name (its folded key; an alias such as OSM's ``name:sv`` is a row
  whose ``canonical_key`` is the street's own), with the centre-line geometry when the source had
  lines (OSM ways, a line layer) — intersections are where two streets' lines meet.

``pg_trgm`` ships with PostgreSQL (contrib) and is trusted since PostgreSQL 13. The downgrade
leaves the extension in place: other tables' indexes may use it.

Revision ID: 0014_addresses
Revises: 0013_health_days
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0014_addresses"
down_revision = "0013_health_days"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE address (
    id bigserial PRIMARY KEY,
    kind varchar(8) NOT NULL CHECK (kind IN ('address', 'place')),
    street text NOT NULL DEFAULT '',
    housenumber text NOT NULL DEFAULT '',
    name text NOT NULL DEFAULT '',
    aliases text[] NOT NULL DEFAULT '{}',
    postcode text NOT NULL DEFAULT '',
    city text NOT NULL DEFAULT '',
    label text NOT NULL,
    street_key text NOT NULL DEFAULT '',
    number_key text NOT NULL DEFAULT '',
    name_key text NOT NULL DEFAULT '',
    alias_key text NOT NULL DEFAULT '',  -- every alias's key, for the trigram index
    alias_keys text[] NOT NULL DEFAULT '{}',  -- each alias's key, in the order of aliases
    cjk text[] NOT NULL DEFAULT '{}',
    tsv tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', name_key || ' ' || alias_key || ' ' || street_key)) STORED,
    grid_id bigint REFERENCES unit_grid (id),
    grid_code varchar(15),
    source text NOT NULL DEFAULT '',
    source_id text,
    attributes jsonb NOT NULL DEFAULT '{}',
    geom geometry(Point, 4326) NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'place' OR street <> '')
);
CREATE UNIQUE INDEX address_source_uq ON address (source, source_id) WHERE source_id IS NOT NULL;
CREATE INDEX address_street_trgm_idx ON address USING gin (street_key gin_trgm_ops);
CREATE INDEX address_name_trgm_idx ON address USING gin (name_key gin_trgm_ops);
CREATE INDEX address_alias_trgm_idx ON address USING gin (alias_key gin_trgm_ops);
CREATE INDEX address_cjk_idx ON address USING gin (cjk);
CREATE INDEX address_tsv_idx ON address USING gin (tsv);
CREATE INDEX address_street_number_idx ON address (street_key, number_key);
CREATE INDEX address_geom_idx ON address USING gist (geom);
CREATE INDEX address_grid_idx ON address (grid_code);

CREATE TABLE street (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    street_key text NOT NULL UNIQUE,
    canonical_key text NOT NULL,  -- an alias (name:sv…) points at the street's own key
    cjk text[] NOT NULL DEFAULT '{}',
    geom geometry(MultiLineString, 4326),
    source text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX street_key_trgm_idx ON street USING gin (street_key gin_trgm_ops);
CREATE INDEX street_cjk_idx ON street USING gin (cjk);
CREATE INDEX street_geom_idx ON street USING gist (geom);

CREATE TRIGGER address_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON address
    FOR EACH STATEMENT EXECUTE FUNCTION gridcore_bump_layer_version('addresses');
CREATE TRIGGER street_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON street
    FOR EACH STATEMENT EXECUTE FUNCTION gridcore_bump_layer_version('addresses');
INSERT INTO layer_version_shard (layer, shard, version) VALUES ('addresses', 0, 0)
    ON CONFLICT DO NOTHING;
"""

DOWNGRADE = """
DELETE FROM layer_version_shard WHERE layer = 'addresses';
DROP TABLE IF EXISTS street;
DROP TABLE IF EXISTS address;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
