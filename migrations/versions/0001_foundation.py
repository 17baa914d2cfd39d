"""Foundation: PostGIS, administrative areas, unit grids with generations, city parts,
9+X entities, departments, taxonomy, grid workers, layer versions.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None

LAYERS = ("areas", "grids", "parts", "entities", "departments", "workers", "categories",
          "dispatch_rules")
TRIGGERED = {
    "admin_area": "areas",
    "unit_grid": "grids",
    "grid_generation": "grids",
    "city_part": "parts",
    "governance_entity": "entities",
    "department": "departments",
    "grid_worker": "workers",
    "category": "categories",
    "dispatch_rule": "dispatch_rules",
}

UPGRADE = """
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE layer_version (
    layer varchar(32) PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0,
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- Bumped once per writing statement, inside the writer's transaction: a reader that sees the
-- new version also sees the new rows, and never a version without its data.
CREATE FUNCTION gridcore_bump_layer_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO layer_version (layer, version, changed_at) VALUES (TG_ARGV[0], 1, now())
    ON CONFLICT (layer) DO UPDATE
        SET version = layer_version.version + 1, changed_at = now();
    RETURN NULL;
END $$;

CREATE TABLE admin_area (
    code varchar(12) PRIMARY KEY,
    level varchar(10) NOT NULL CHECK (level IN ('district', 'street', 'community')),
    name text NOT NULL,
    parent_code varchar(12) REFERENCES admin_area (code) DEFERRABLE INITIALLY DEFERRED,
    geom geometry(MultiPolygon, 4326) NOT NULL,
    area_m2 double precision NOT NULL,
    attributes jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT admin_area_code_digits CHECK (code ~ '^[0-9]+$'),
    CONSTRAINT admin_area_code_length CHECK (
        (level = 'district' AND length(code) = 6 AND parent_code IS NULL)
        OR (level = 'street' AND length(code) = 9)
        OR (level = 'community' AND length(code) = 12)),
    CONSTRAINT admin_area_parent_prefix CHECK (
        parent_code IS NULL OR left(code, length(parent_code)) = parent_code)
);
CREATE INDEX admin_area_geom_idx ON admin_area USING gist (geom);
CREATE INDEX admin_area_parent_idx ON admin_area (parent_code);
CREATE INDEX admin_area_level_idx ON admin_area (level);

CREATE TABLE grid_generation (
    id integer PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    note text NOT NULL DEFAULT ''
);

CREATE TABLE grid_worker (
    code varchar(32) PRIMARY KEY,
    name text NOT NULL,
    phone text,
    active boolean NOT NULL DEFAULT true
);

CREATE TABLE unit_grid (
    id bigserial PRIMARY KEY,
    code varchar(15) NOT NULL CHECK (code ~ '^[0-9]{12}(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})$'),
    name text NOT NULL DEFAULT '',
    community_code varchar(12) NOT NULL REFERENCES admin_area (code),
    geom geometry(MultiPolygon, 4326) NOT NULL,
    area_m2 double precision NOT NULL,
    worker_codes varchar(32)[] NOT NULL DEFAULT '{}',
    attributes jsonb NOT NULL DEFAULT '{}',
    gen_from integer NOT NULL REFERENCES grid_generation (id),
    gen_to integer REFERENCES grid_generation (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT unit_grid_code_in_community CHECK (left(code, 12) = community_code),
    CONSTRAINT unit_grid_generation_order CHECK (gen_to IS NULL OR gen_to > gen_from)
);
CREATE UNIQUE INDEX unit_grid_current_code_idx ON unit_grid (code) WHERE gen_to IS NULL;
CREATE INDEX unit_grid_geom_idx ON unit_grid USING gist (geom);
CREATE INDEX unit_grid_community_idx ON unit_grid (community_code);

CREATE TABLE department (
    code varchar(32) PRIMARY KEY,
    name text NOT NULL,
    parent_code varchar(32) REFERENCES department (code) DEFERRABLE INITIALLY DEFERRED,
    contact text
);

CREATE TABLE category (
    key varchar(5) PRIMARY KEY,
    kind varchar(5) NOT NULL CHECK (kind IN ('part', 'event')),
    code varchar(4) NOT NULL,
    major varchar(2) NOT NULL,
    minor varchar(2) NOT NULL,
    name_zh text NOT NULL,
    name_en text NOT NULL,
    limits jsonb NOT NULL,
    dedup_radius_m double precision NOT NULL,
    register_condition text NOT NULL DEFAULT '',
    close_condition text NOT NULL DEFAULT ''
);

CREATE TABLE city_part (
    code varchar(16) PRIMARY KEY CHECK (code ~ '^[0-9]{16}$'),
    class_code varchar(4) NOT NULL,
    name text NOT NULL DEFAULT '',
    competent_dept varchar(32) REFERENCES department (code),
    owner_dept varchar(32) REFERENCES department (code),
    maintenance_dept varchar(32) REFERENCES department (code),
    state varchar(10) NOT NULL DEFAULT 'intact'
        CONSTRAINT city_part_state CHECK (state IN ('intact', 'damaged', 'missing', 'occupied')),
    grid_code varchar(15),
    h3 varchar(16),
    recorded_on date NOT NULL DEFAULT current_date,
    changed_on date NOT NULL DEFAULT current_date,
    source text NOT NULL DEFAULT '',
    source_id text,
    photo_url text,
    attributes jsonb NOT NULL DEFAULT '{}',
    geom geometry(Point, 4326) NOT NULL,
    CONSTRAINT city_part_code_has_class CHECK (substr(code, 7, 4) = class_code)
);
CREATE INDEX city_part_geom_idx ON city_part USING gist (geom);
CREATE INDEX city_part_grid_idx ON city_part (grid_code);
CREATE INDEX city_part_class_idx ON city_part (class_code);
CREATE INDEX city_part_h3_idx ON city_part (h3);
CREATE UNIQUE INDEX city_part_source_idx ON city_part (source, source_id)
    WHERE source_id IS NOT NULL;

-- Dispatch rules (权责清单): category x area -> department. The most specific area wins
-- (grid > community > street > district > city); a city-part owner overrides them all.
CREATE TABLE dispatch_rule (
    id bigserial PRIMARY KEY,
    category_key varchar(5) NOT NULL REFERENCES category (key),
    area_level varchar(10) NOT NULL
        CHECK (area_level IN ('grid', 'community', 'street', 'district', 'city')),
    area_code varchar(15),
    department_code varchar(32) NOT NULL REFERENCES department (code),
    note text NOT NULL DEFAULT '',
    CONSTRAINT dispatch_rule_area CHECK (
        (area_level = 'city' AND area_code IS NULL)
        OR (area_level = 'district' AND length(area_code) = 6)
        OR (area_level = 'street' AND length(area_code) = 9)
        OR (area_level = 'community' AND length(area_code) = 12)
        OR (area_level = 'grid' AND length(area_code) = 15))
);
CREATE UNIQUE INDEX dispatch_rule_unique_idx
    ON dispatch_rule (category_key, area_level, coalesce(area_code, ''));

CREATE TABLE governance_entity (
    id bigserial PRIMARY KEY,
    code varchar(40) NOT NULL UNIQUE,
    area varchar(8) NOT NULL,
    type text NOT NULL,
    name text NOT NULL DEFAULT '',
    grid_code varchar(15),
    sensitivity varchar(10) NOT NULL DEFAULT 'internal'
        CONSTRAINT governance_entity_sensitivity
        CHECK (sensitivity IN ('public', 'internal', 'restricted')),
    attributes jsonb NOT NULL DEFAULT '{}',
    restricted_attributes jsonb NOT NULL DEFAULT '{}',
    source text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now(),
    geom geometry(Geometry, 4326) NOT NULL
);
CREATE INDEX governance_entity_geom_idx ON governance_entity USING gist (geom);
CREATE INDEX governance_entity_grid_idx ON governance_entity (grid_code);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS governance_entity;
DROP TABLE IF EXISTS dispatch_rule;
DROP TABLE IF EXISTS city_part;
DROP TABLE IF EXISTS category;
DROP TABLE IF EXISTS department;
DROP TABLE IF EXISTS unit_grid;
DROP TABLE IF EXISTS grid_worker;
DROP TABLE IF EXISTS grid_generation;
DROP TABLE IF EXISTS admin_area;
DROP FUNCTION IF EXISTS gridcore_bump_layer_version();
DROP TABLE IF EXISTS layer_version;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    for table, layer in TRIGGERED.items():
        op.execute(
            f"CREATE TRIGGER {table}_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION gridcore_bump_layer_version('{layer}')"
        )
    values = ", ".join(f"('{layer}', 0)" for layer in LAYERS)
    op.execute(f"INSERT INTO layer_version (layer, version) VALUES {values}")


def downgrade() -> None:
    # PostGIS stays: other databases' objects may depend on it and dropping it is not ours.
    op.execute(DOWNGRADE)
