"""The collection registry (图层目录) behind OGC API – Features and the vector tiles.

Every identifier that ends up in SQL (table, column, expression) comes from this module, never
from a request: request values only ever travel as bind parameters. Each collection names the
``layer_version`` rows it depends on, so ETags and tile caches change with the data.

The case layer (案件) plugs in by itself once its table exists: its fields are picked from the
columns the table actually has, so this module keeps working while the case schema evolves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, text

from gridcore.lifecycle import State
from layers.schema.cases import TERMINAL_SQL
from layers.schema.city import PART_STATES, SENSITIVITIES

Kind = Literal["string", "integer", "number", "date", "date-time", "boolean", "array",
               "object"]


@dataclass(frozen=True)
class Field:
    """One property of a collection: ``sql`` is an expression over the table alias ``t``."""

    name: str
    sql: str
    kind: Kind = "string"
    filterable: bool = False  # may be used as ``?name=value`` and as a tile filter
    in_tiles: bool = True  # carried as an MVT attribute
    title: str = ""
    values: tuple[str, ...] = ()  # the only values it takes (a filter on another is a 400)
    pattern: str | None = None  # a regular expression its values match (codes)


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    table: str
    id_field: str  # a Field name; unique among the rows ``where`` selects, used for paging
    fields: tuple[Field, ...]
    layers: tuple[str, ...]  # layer_version rows whose change changes this collection
    where: str = "TRUE"
    geometry_type: str = "Polygon"
    datetime_field: str | None = None
    min_zoom: int = 0
    max_zoom: int = 22
    tile_min_zoom: int = 8  # below this a tile would carry too much: served empty
    h3_aggregate_below: int | None = None  # H3 hexagons with counts below this zoom
    expires_sql: str | None = None  # when a row changes by itself (a clock turning yellow)
    keywords: tuple[str, ...] = field(default_factory=tuple)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def id_sql(self) -> str:
        found = self.field(self.id_field)
        assert found is not None, f"{self.id} has no id field {self.id_field}"
        return found.sql

    @property
    def id_is_integer(self) -> bool:
        found = self.field(self.id_field)
        return found is not None and found.kind == "integer"

    def id_value(self, raw: str) -> str | int | None:
        """A feature id from a request, typed like the column (None: cannot be one)."""
        if not self.id_is_integer:
            return raw
        try:
            return int(raw)
        except ValueError:
            return None

    @property
    def filterable(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields if f.filterable}

    @property
    def datetime_sql(self) -> str | None:
        found = self.field(self.datetime_field) if self.datetime_field else None
        return found.sql if found else None


AREA_CODE = r"^(\d{6}|\d{9}|\d{12})$"

AREAS = Collection(
    id="areas", title="Administrative areas (行政区划)",
    description="Districts, streets/towns and communities: the tree above the unit grids.",
    table="admin_area", id_field="code", layers=("areas",), datetime_field="updated_at",
    fields=(
        Field("code", "t.code", filterable=True, title="area code", pattern=AREA_CODE),
        Field("level", "t.level", filterable=True, values=("district", "street", "community")),
        Field("name", "t.name", filterable=True),
        Field("parent_code", "t.parent_code", filterable=True, pattern=AREA_CODE),
        Field("area_m2", "round(t.area_m2::numeric, 1)::float8", "number"),
        Field("updated_at", "t.updated_at", "date-time", in_tiles=False),
    ),
    keywords=("admin", "district", "street", "community"), tile_min_zoom=0,
)

GRIDS = Collection(
    id="grids", title="Unit grids (单元网格), current generation",
    description="The unit grids in force now (gen_to IS NULL); codes are 15 digits.",
    table="unit_grid", id_field="code", layers=("grids",), where="t.gen_to IS NULL",
    datetime_field="created_at",
    fields=(
        Field("code", "t.code", filterable=True, title="grid code", pattern=r"^\d{15}$"),
        Field("name", "t.name", filterable=True),
        Field("community_code", "t.community_code", filterable=True, pattern=r"^\d{12}$"),
        Field("street_code", "left(t.code, 9)", filterable=True, pattern=r"^\d{9}$"),
        Field("district_code", "left(t.code, 6)", filterable=True, pattern=r"^\d{6}$"),
        Field("area_m2", "round(t.area_m2::numeric, 1)::float8", "number"),
        Field("workers", "array_to_string(t.worker_codes, ',')"),
        Field("generation", "t.gen_from", "integer"),
        Field("created_at", "t.created_at", "date-time", in_tiles=False),
    ),
    keywords=("grid", "网格"), tile_min_zoom=10,
)

PARTS = Collection(
    id="parts", title="City parts (部件)",
    description="Street furniture and utilities; class_code = major + minor (e.g. 0101).",
    table="city_part", id_field="code", layers=("parts",), geometry_type="Point",
    datetime_field="changed_on",
    fields=(
        Field("code", "t.code", filterable=True, title="city-part code", pattern=r"^\d{16}$"),
        Field("class_code", "t.class_code", filterable=True, pattern=r"^\d{4}$"),
        Field("major", "left(t.class_code, 2)", filterable=True, pattern=r"^\d{2}$"),
        Field("name", "t.name", filterable=True),
        Field("state", "t.state", filterable=True, values=PART_STATES),
        Field("grid_code", "t.grid_code", filterable=True, pattern=r"^\d{15}$"),
        Field("competent_dept", "t.competent_dept", filterable=True, in_tiles=False),
        Field("owner_dept", "t.owner_dept", filterable=True, in_tiles=False),
        Field("maintenance_dept", "t.maintenance_dept", filterable=True, in_tiles=False),
        Field("recorded_on", "t.recorded_on", "date", in_tiles=False),
        Field("changed_on", "t.changed_on", "date", in_tiles=False),
        Field("source", "t.source", filterable=True, in_tiles=False),
    ),
    # below zoom 14: H3 hexagons with counts per state (layers/ogc/part_tiles.py)
    keywords=("city part", "部件"), tile_min_zoom=8, h3_aggregate_below=14,
)

# restricted_attributes (personal data of 9+X) is never selected here: it is not a Field. Rows
# marked 'restricted' (where a household or a person lives) are left out altogether: this API
# has no per-user scope; the scoped, masked and audited /entities API serves them.
ENTITIES = Collection(
    id="entities", title="Governance entities (综治 9+X)",
    description="9+X comprehensive-governance objects that are public or internal; restricted "
                "rows and restricted attributes are never served here.",
    table="governance_entity", id_field="code", layers=("entities",), geometry_type="Geometry",
    datetime_field="updated_at", where="t.sensitivity <> 'restricted'",
    fields=(
        Field("code", "t.code", filterable=True),
        Field("area", "t.area", filterable=True),
        Field("type", "t.type", filterable=True),
        Field("name", "t.name", filterable=True),
        Field("grid_code", "t.grid_code", filterable=True, pattern=r"^\d{15}$"),
        Field("sensitivity", "t.sensitivity", filterable=True, values=SENSITIVITIES),
        Field("attributes", "t.attributes", "object", in_tiles=False),
        Field("updated_at", "t.updated_at", "date-time", in_tiles=False),
    ),
    keywords=("9+X", "综治"), tile_min_zoom=12,
)

STATIC = (AREAS, GRIDS, PARTS, ENTITIES)

CASE_TABLE = "case_record"
# Case columns this layer can show, in order; the ones the table lacks are left out, so the
# layer follows the case schema (migrations/versions/0002_cases.py) as it evolves.
# (column, kind, filterable, in tiles)
CASE_CANDIDATES: tuple[tuple[str, Kind, bool, bool], ...] = (
    ("id", "integer", True, True),
    ("public_no", "string", True, True),
    ("state", "string", True, True),
    ("stage", "string", True, True),
    ("category_key", "string", True, True),
    ("department_code", "string", True, True),
    ("grid_code", "string", True, True),
    ("community_code", "string", True, False),
    ("street_code", "string", True, False),
    ("district_code", "string", True, False),
    ("part_code", "string", True, False),
    ("source", "string", True, False),
    ("supervised", "boolean", True, False),
    ("primary_case_id", "integer", True, False),
    ("description", "string", False, False),
    ("created_at", "date-time", False, False),
    ("updated_at", "date-time", False, False),
    ("warn_at", "date-time", False, False),
    ("deadline_at", "date-time", False, False),
    ("closed_at", "date-time", False, False),
)


CASE_RULES: dict[str, dict[str, Any]] = {
    "state": {"values": tuple(State)}, "grid_code": {"pattern": r"^\d{15}$"},
    "community_code": {"pattern": r"^\d{12}$"}, "street_code": {"pattern": r"^\d{9}$"},
    "district_code": {"pattern": r"^\d{6}$"}, "part_code": {"pattern": r"^\d{16}$"},
    "category_key": {"pattern": r"^[PE]\d{4}$"}}


def case_collection(columns: set[str]) -> Collection | None:
    """The case layer as the table ``case_record`` has it now, or None without the table."""
    if not {"geom", "id", "state"} <= columns:
        return None
    fields = [Field(col, f"t.{col}", kind, filterable, in_tiles, **CASE_RULES.get(col, {}))
              for col, kind, filterable, in_tiles in CASE_CANDIDATES if col in columns]
    if "category_key" in columns:
        fields.append(Field("event_class", "right(t.category_key, 4)", "string", True, True))
    fields.append(Field("open", f"t.state NOT IN {TERMINAL_SQL}", "boolean", True, True))
    fields.append(Field("clock", clock_sql(columns), "string", True, True,
                        title="clock colour (亮灯): green ≤ 80 % of the limit, yellow ≤ 100 %, "
                              "red overdue; none when closed",
                        values=("green", "yellow", "red", "none")))
    return Collection(
        id="cases", title="Cases (案件)",
        description="Reported events and part problems with their state and clock colour.",
        table=CASE_TABLE, id_field="id", layers=("cases",), geometry_type="Point",
        fields=tuple(fields), datetime_field="created_at" if "created_at" in columns else None,
        tile_min_zoom=0, h3_aggregate_below=15 if "h3" in columns else None,
        expires_sql=clock_changes_sql(columns), keywords=("case", "案件"),
    )


def clock_sql(columns: set[str]) -> str:
    """Clock colour as SQL from the stage's warning time (80 % of the limit, on the working
    calendar) and deadline that the case layer stores; a parked case's clock stands still."""
    if not {"warn_at", "deadline_at"} <= columns:
        return "'green'"
    at = "coalesce(t.parked_since, now())" if "parked_since" in columns else "now()"
    return (f"CASE WHEN t.state IN {TERMINAL_SQL} THEN 'none' "
            f"WHEN t.deadline_at IS NULL THEN 'green' "
            f"WHEN {at} > t.deadline_at THEN 'red' "
            f"WHEN t.warn_at IS NOT NULL AND {at} > t.warn_at THEN 'yellow' ELSE 'green' END")


def clock_changes_sql(columns: set[str]) -> str | None:
    """The next moment a clock colour changes by itself (no write): tiles expire then."""
    if not {"warn_at", "deadline_at", "parked_since"} <= columns:
        return None
    return ("CASE WHEN t.parked_since IS NOT NULL OR t.state IN "
            f"{TERMINAL_SQL} THEN NULL WHEN t.warn_at > now() THEN t.warn_at "
            "WHEN t.deadline_at > now() THEN t.deadline_at END")


def table_columns(conn: Connection, table: str) -> set[str]:
    rows = conn.execute(text(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = :t"), {"t": table})
    return {r[0] for r in rows}


class Registry:
    """The collections of one database. The case layer's shape is looked up again whenever the
    schema key of :func:`layer_versions` changes (a migration added or altered a layer)."""

    def __init__(self) -> None:
        self._key: frozenset[str] | None = None
        self._collections: dict[str, Collection] = {c.id: c for c in STATIC}

    def current(self, layers: frozenset[str]) -> dict[str, Collection] | None:
        """The collections when the schema key is the one already looked up, else None."""
        return self._collections if layers == self._key else None

    def collections(self, conn: Connection, layers: frozenset[str]) -> dict[str, Collection]:
        if layers != self._key:
            found = {c.id: c for c in STATIC}
            cases = case_collection(table_columns(conn, CASE_TABLE))
            if cases:
                found[cases.id] = cases
            self._collections, self._key = found, layers
        return self._collections


VERSIONS_SQL = ("SELECT layer, version FROM layer_version "
                "UNION ALL SELECT 'alembic:' || version_num, 0 FROM alembic_version")


def layer_versions(conn: Connection) -> tuple[dict[str, int], frozenset[str]]:
    """Every layer's version, and a schema key (layer names + Alembic revision) that changes
    when a migration adds or alters a layer. One cheap query, run on every request."""
    rows = conn.execute(text(VERSIONS_SQL)).all()
    versions = {r.layer: int(r.version) for r in rows if not r.layer.startswith("alembic:")}
    return versions, frozenset(r.layer for r in rows)
