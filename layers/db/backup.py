"""Backup and restore (备份与恢复) with the cluster's own ``pg_dump`` / ``pg_restore``.

Custom format (``-Fc``): compressed, and ``pg_restore`` can replay it in one transaction, so a
failed restore leaves the target as it was. The binaries come from the same PostgreSQL
installation as the embedded cluster (``find_pg_bin``), so the dump format always matches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import make_url

from gridcore.errors import GridcoreError, ValidationError
from gridcore.settings import DatabaseSettings
from layers.db.cluster import find_pg_bin, resolve_database_url, standalone_database


def _tool(name: str, settings: DatabaseSettings) -> str:
    try:
        path = find_pg_bin(settings) / name
        if path.exists():
            return str(path)
    except GridcoreError:
        pass
    found = shutil.which(name)
    if not found:
        raise GridcoreError(f"{name} not found: install the PostgreSQL client tools")
    return found


def libpq_env(url: str) -> dict[str, str]:
    """The PG* environment for a SQLAlchemy URL (the password never appears on a command
    line, where other users could read it from the process list)."""
    parsed = make_url(url)
    env = dict(os.environ)
    def query(name: str) -> str | None:
        value = parsed.query.get(name)
        return value[0] if isinstance(value, tuple) else value

    host = query("host") or parsed.host
    port = query("port") or parsed.port
    for key, value in (("PGHOST", host), ("PGPORT", port), ("PGUSER", parsed.username),
                       ("PGPASSWORD", parsed.password), ("PGDATABASE", parsed.database)):
        if value:
            env[key] = str(value)
    return env


def backup(path: Path, url: str | None = None, settings: DatabaseSettings | None = None
           ) -> Path:
    settings = standalone_database(settings)
    url = url or resolve_database_url(settings)
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    result = subprocess.run([_tool("pg_dump", settings), "-Fc", "--no-owner", "-f", str(tmp)],
                            env=libpq_env(url), capture_output=True, text=True)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise GridcoreError(f"pg_dump failed: {result.stderr.strip()}")
    tmp.replace(path)  # a half-written dump never takes the name of a good one
    return path


def restore(path: Path, url: str | None = None, settings: DatabaseSettings | None = None
            ) -> None:
    """Replay a dump into the database, replacing what it holds, in one transaction."""
    settings = standalone_database(settings)
    url = url or resolve_database_url(settings)
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"no backup file {path}", field="path")
    with path.open("rb") as handle:
        if handle.read(5) != b"PGDMP":
            raise ValidationError(f"{path} is not a pg_dump custom-format file",
                                  field="path")
    result = subprocess.run(
        # --no-privileges: the grants are the target's own (layers/db/roles.py, applied by the
        # next migration), and its roles need not be named as the source's were
        [_tool("pg_restore", settings), "--clean", "--if-exists", "--no-owner",
         "--no-privileges", "--single-transaction", "--exit-on-error", "-d",
         make_url(url).database or "", str(path)],
        env=libpq_env(url), capture_output=True, text=True)
    if result.returncode != 0:
        raise GridcoreError(f"pg_restore failed (the database is unchanged): "
                            f"{result.stderr.strip()}")
