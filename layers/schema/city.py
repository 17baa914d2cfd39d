"""The spatial layers as SQLAlchemy Core tables (GeoAlchemy2 geometry, SRID 4326 storage).

Migrations in ``migrations/versions`` create these; this module is what the repositories query.
Every layer table has a statement-level trigger that bumps its row in ``layer_version`` inside
the writing transaction, so readers (the in-memory grid locator, tile ETags) see a new version
exactly when the new data becomes visible.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

SRID = 4326
metadata = MetaData()

AREA_LEVELS = ("district", "street", "community")
PART_STATES = ("intact", "damaged", "missing", "occupied")
SENSITIVITIES = ("public", "internal", "restricted")

layer_version = Table(
    "layer_version", metadata,
    Column("layer", String(32), primary_key=True),
    Column("version", BigInteger, nullable=False, server_default="0"),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

admin_area = Table(
    "admin_area", metadata,
    Column("code", String(12), primary_key=True),
    Column("level", String(10), nullable=False),
    Column("name", Text, nullable=False),
    Column("parent_code", String(12), ForeignKey("admin_area.code", deferrable=True,
                                                  initially="DEFERRED"), nullable=True),
    Column("geom", Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False), nullable=False),
    Column("area_m2", Float, nullable=False),
    Column("attributes", JSONB, nullable=False, server_default="{}"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

grid_generation = Table(
    "grid_generation", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("note", Text, nullable=False, server_default=""),
)

grid_worker = Table(
    "grid_worker", metadata,
    Column("code", String(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("phone", Text),
    Column("active", Boolean, nullable=False, server_default="true"),
)

unit_grid = Table(
    "unit_grid", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("code", String(15), nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("community_code", String(12), ForeignKey("admin_area.code"), nullable=False),
    Column("geom", Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False), nullable=False),
    Column("area_m2", Float, nullable=False),
    Column("worker_codes", ARRAY(String(32)), nullable=False, server_default="{}"),
    Column("attributes", JSONB, nullable=False, server_default="{}"),
    # Generations (mapit): a grid row is valid from gen_from up to but excluding gen_to;
    # gen_to NULL means current. A redraw closes rows instead of rewriting them, so a case keeps
    # the grid row (id) it was filed in.
    Column("gen_from", Integer, ForeignKey("grid_generation.id"), nullable=False),
    Column("gen_to", Integer, ForeignKey("grid_generation.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("left(code, 12) = community_code", name="unit_grid_code_in_community"),
)

department = Table(
    "department", metadata,
    Column("code", String(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("parent_code", String(32), ForeignKey("department.code", deferrable=True,
                                                  initially="DEFERRED")),
    Column("contact", Text),
    # its level (district / street / community; None: a city department) and the area it
    # serves; the level team takes what is escalated to that level (migration 0016_levels)
    Column("level", String(10)),
    Column("area_code", String(12)),
    Column("level_team", Boolean, nullable=False, server_default="false"),
)

category = Table(
    "category", metadata,
    Column("key", String(5), primary_key=True),
    Column("kind", String(5), nullable=False),
    Column("code", String(4), nullable=False),
    Column("major", String(2), nullable=False),
    Column("minor", String(2), nullable=False),
    Column("name_zh", Text, nullable=False),
    Column("name_en", Text, nullable=False),
    Column("limits", JSONB, nullable=False),
    Column("dedup_radius_m", Float, nullable=False),
    Column("register_condition", Text, nullable=False, server_default=""),
    Column("close_condition", Text, nullable=False, server_default=""),
)

city_part = Table(
    "city_part", metadata,
    Column("code", String(16), primary_key=True),
    Column("class_code", String(4), nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("competent_dept", String(32), ForeignKey("department.code")),
    Column("owner_dept", String(32), ForeignKey("department.code")),
    Column("maintenance_dept", String(32), ForeignKey("department.code")),
    Column("state", String(10), nullable=False, server_default="intact"),
    Column("grid_code", String(15)),
    Column("h3", String(16)),
    Column("recorded_on", Date, nullable=False, server_default=func.current_date()),
    Column("changed_on", Date, nullable=False, server_default=func.current_date()),
    Column("source", Text, nullable=False, server_default=""),
    Column("source_id", Text),
    Column("photo_url", Text),
    Column("attributes", JSONB, nullable=False, server_default="{}"),
    Column("geom", Geometry("POINT", srid=SRID, spatial_index=False), nullable=False),
    CheckConstraint("state IN ('intact', 'damaged', 'missing', 'occupied')",
                    name="city_part_state"),
    CheckConstraint("substr(code, 7, 4) = class_code", name="city_part_code_has_class"),
)

governance_entity = Table(
    "governance_entity", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("code", String(40), nullable=False, unique=True),
    Column("area", String(8), nullable=False),
    Column("type", Text, nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("grid_code", String(15)),
    Column("sensitivity", String(10), nullable=False, server_default="internal"),
    Column("attributes", JSONB, nullable=False, server_default="{}"),
    # Restricted attributes (names, ID and phone numbers, addresses of people) live apart so
    # that no query returns them unless it names this column on purpose.
    Column("restricted_attributes", JSONB, nullable=False, server_default="{}"),
    Column("source", Text, nullable=False, server_default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("geom", Geometry("GEOMETRY", srid=SRID, spatial_index=False), nullable=False),
    CheckConstraint("sensitivity IN ('public', 'internal', 'restricted')",
                    name="governance_entity_sensitivity"),
)

dispatch_rule = Table(
    "dispatch_rule", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("category_key", String(5), ForeignKey("category.key"), nullable=False),
    Column("area_level", String(10), nullable=False),
    Column("area_code", String(15)),
    Column("department_code", String(32), ForeignKey("department.code")),
    Column("note", Text, nullable=False, server_default=""),
    Column("team_level", String(10)),  # instead of a department: that level's team
)

part_state_history = Table(
    "part_state_history", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("part_code", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("from_state", String(10), nullable=False),
    Column("to_state", String(10), nullable=False),
    Column("case_id", BigInteger),
    Column("action", String(16), nullable=False),
    Column("actor", Text, nullable=False, server_default=""),
)

# Layer name (as used in the API, CLI and layer_version) → table.
LAYER_TABLES: dict[str, Table] = {
    "areas": admin_area,
    "grids": unit_grid,
    "parts": city_part,
    "entities": governance_entity,
    "departments": department,
}
