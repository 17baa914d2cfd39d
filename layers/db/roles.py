"""The two database roles (数据库角色): an owner and the application.

* **The owner** owns the schema: migrations, backups and restores, bulk imports (which rebuild
  indexes), the command line. In the embedded cluster it is the cluster's bootstrap superuser
  (``gridcore``): PostGIS needs a superuser to be installed.
* **The application** (``GRIDCORE_DATABASE_APP_ROLE``, ``gridcore_app``) is what ``gridcore
  serve`` connects as: no superuser, no CREATE, no role or replication rights, so
  ``session_replication_role`` (which silences triggers) is out of its reach. It reads and
  writes the tables, but on ``audit_log`` it may only read and insert: no UPDATE, DELETE or
  TRUNCATE. The sealer chains rows through ``gridcore_audit_seal`` (a function that runs with
  the owner's rights and only ever fills in the seal of unsealed rows), and ``alembic_version``
  is the owner's alone.

:func:`grant_statements` is the one list of grants: ``layers.db.migrate`` applies it after
every migration when the role exists (so tables added later are covered too), the embedded
cluster creates the role, and ``gridcore db grants`` prints it with the role statements for a
DBA who runs gridcore on their own PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Connection, make_url, text

from gridcore.errors import ValidationError
from gridcore.settings import DatabaseSettings

OWNER_ONLY = ("alembic_version", "case_archive")  # the app reads, never writes
APPEND_ONLY = ("audit_log",)  # the app reads and inserts
SEAL_FUNCTION = "gridcore_audit_seal(bigint[], bigint[], text[], text[])"


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name[:1].isalpha():
        raise ValidationError(f"role or database name {name!r}: letters, digits and _ only",
                              field="role", value=name)
    return f'"{name}"'


def database_name(settings: DatabaseSettings) -> str:
    """The database gridcore uses: the one of ``GRIDCORE_DATABASE_URL``, else the embedded
    cluster's."""
    if settings.database_url:
        return make_url(settings.database_url).database or settings.database_name
    return settings.database_name


def grant_statements(app_role: str, database: str) -> list[str]:
    """What the application role is granted in ``database`` (run as the owner)."""
    role, db = _ident(app_role), _ident(database)
    statements = [
        f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        # tables and sequences the owner creates later (new migrations) follow by themselves
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE "
        f"ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES "
        f"TO {role}",
    ]
    statements += [f"REVOKE INSERT, UPDATE, DELETE ON {t} FROM {role}" for t in OWNER_ONLY]
    statements += [f"REVOKE UPDATE, DELETE ON {t} FROM {role}" for t in APPEND_ONLY]
    statements.append(f"GRANT EXECUTE ON FUNCTION {SEAL_FUNCTION} TO {role}")
    return statements


def role_statements(app_role: str, password: str = "<password>") -> list[str]:
    """The application role itself: able to sign in, nothing more."""
    quoted = password.replace("'", "''")
    return [f"CREATE ROLE {_ident(app_role)} LOGIN PASSWORD '{quoted}' NOSUPERUSER "
            f"NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"]


def role_exists(conn: Connection, name: str) -> bool:
    return bool(conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"),
                             {"n": name}).first())


def ensure_role(conn: Connection, name: str, password: str) -> None:
    """Create the application role, or bring an existing one to its password and to no
    privileges beyond signing in (an upgraded cluster, a role made by hand)."""
    quoted = password.replace("'", "''")
    verb = "ALTER" if role_exists(conn, name) else "CREATE"
    conn.execute(text(f"{verb} ROLE {_ident(name)} LOGIN PASSWORD '{quoted}' NOSUPERUSER "
                      f"NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"))


def apply_grants(conn: Connection, app_role: str) -> bool:
    """Grant the application role its privileges in the connected database; False (nothing
    done) when the role does not exist or the connected role may not grant them."""
    if not role_exists(conn, app_role):
        return False
    database = conn.execute(text("SELECT current_database()")).scalar_one()
    if not conn.execute(text("SELECT to_regprocedure(:f) IS NOT NULL"),
                        {"f": SEAL_FUNCTION}).scalar_one():
        return False  # the schema is older than the seal function: migrate first
    for statement in grant_statements(app_role, str(database)):
        conn.execute(text(statement))
    return True
