"""Run the Alembic migrations and keep the taxonomy table in step with its data files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError

from gridcore.settings import DatabaseSettings
from gridcore.taxonomy import Taxonomy
from layers.db.partitions import ensure_ahead, repair_indexes
from layers.db.roles import apply_grants
from layers.schema.city import category

log = logging.getLogger(__name__)
DEFAULT_APP_ROLE = DatabaseSettings.model_fields["database_app_role"].default

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = engine.url.render_as_string(hide_password=False)
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
        if exists is None:
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def sync_taxonomy(engine: Engine, taxonomy: Taxonomy | None = None) -> int:
    """Upsert every class of the taxonomy into ``category`` (classes are never deleted here:
    old cases may still name a class a city has since dropped from its files)."""
    taxonomy = taxonomy or Taxonomy.default()
    rows = [{
        "key": c.key, "kind": c.kind.value, "code": c.code, "major": c.major, "minor": c.minor,
        "name_zh": c.name_zh, "name_en": c.name_en,
        "limits": json.loads(json.dumps({s.value: str(v) for s, v in c.limits.items()})),
        "dedup_radius_m": c.dedup_radius_m, "register_condition": c.register_condition,
        "close_condition": c.close_condition,
    } for c in taxonomy]
    stmt = insert(category).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[category.c.key],
        set_={col: stmt.excluded[col] for col in rows[0] if col != "key"})
    with engine.begin() as conn:
        conn.execute(stmt)
    return len(rows)


def migrate(engine: Engine, app_role: str = DEFAULT_APP_ROLE) -> str | None:
    """Bring the schema to the newest revision (as the owner), load the taxonomy, make the
    cases' time partitions ahead and mend a partitioned table's invalid indexes
    (``layers.db.partitions``), and grant
    the application role its privileges on every table there now (``layers/db/roles.py``;
    skipped when that role does not exist, as on a server where a DBA grants by hand)."""
    upgrade(engine)
    sync_taxonomy(engine)
    ensure_ahead(engine)  # the cases' partitions of this year and the next
    with engine.begin() as conn:
        for name in repair_indexes(conn):
            log.warning("index %s was on the partitioned table alone (invalid, no partition "
                        "had it): rebuilt on every partition", name)
    try:
        with engine.begin() as conn:
            apply_grants(conn, app_role)
    except DBAPIError as exc:  # connected as a role that may not grant: the DBA's job then
        log.warning("the application role %s was not granted its privileges: %s", app_role,
                    exc.orig)
    return current_revision(engine)
