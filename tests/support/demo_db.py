"""The demo city for tests, built once per run.

``gridcore demo`` reads the Helsinki extract and files its history through the product's own
import, intake and lifecycle: about two minutes on this machine. Two files test it (the stored
city, ``tests/db/test_demo.py``; the map on it, ``tests/browser/test_map_demo_browser.py``), and
each built it in its own database. Now the first to ask builds it into a template database
(one per run), and each gets a copy (``CREATE DATABASE … TEMPLATE``: seconds). A PostgreSQL
advisory lock makes the other pytest processes wait for the build instead of building too (a
copy also needs the template left alone while it is made). The template is dropped when the
run ends (``drop_template``, from ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from tests.support.data import shared_file
from tests.support.database import fast_commits

LOCK = 0x67726964  # 'grid': the advisory lock of the build and the copies
SHARED_PBF = "helsinki/Helsinki.osm.pbf"
ROOT = Path(__file__).resolve().parents[2]  # the checkout: `python -m gridcore.cli` from it


def run_id(config: pytest.Config) -> str:
    """The run's id: the same in every pytest-xdist process of one run."""
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        return str(worker["testrunuid"])
    if getattr(config.option, "testrunuid", None) is None:
        config.option.testrunuid = uuid.uuid4().hex  # xdist hands this one to its workers
    return str(config.option.testrunuid)


def _marker(run: str) -> Path:
    """Says that this run made a template (the controller process drops it at the end)."""
    return Path(tempfile.gettempdir()) / f"gridcore-demo-template-{run}"


def _template(run: str) -> str:
    return f"gridcore_demo_{run[:16]}"


def _url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _build(admin_url: str, admin: Engine, name: str) -> list[str]:
    """The demo city in a new database ``name``, by ``gridcore demo`` in a process of its own
    (its engines and their background threads end with it: a template must have no session
    left); the lines it printed."""
    building = f"{name}_building"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{building}"'))
        fast_commits(conn, building)
    env = {k: v for k, v in os.environ.items()
           if k not in ("GRIDCORE_PORT", "GRIDCORE_HOST", "GRIDCORE_PUBLIC_URL")}
    env.update(GRIDCORE_DATABASE_URL=_url(admin_url, building),
               GRIDCORE_DEMO_PBF=str(shared_file(SHARED_PBF)))
    # the similar-case index the demo publishes is named after the database being built,
    # which no copy is: written to a folder that goes with the build, not the data dir
    with tempfile.TemporaryDirectory(prefix="gridcore-demo-index-") as index_dir:
        env["GRIDCORE_INTEL_INDEX_DIR"] = index_dir
        done = subprocess.run([sys.executable, "-m", "gridcore.cli", "demo"], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"gridcore demo failed:\n{done.stdout}\n{done.stderr}"
    lines = done.stdout.splitlines()
    with admin.connect() as conn:
        # renamed only once complete: a build that failed half-way is never copied
        conn.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{name}"'))
        conn.execute(text(f"COMMENT ON DATABASE \"{name}\" IS :lines"),
                     {"lines": json.dumps(lines)})
    return lines


@contextmanager
def demo_database(admin_url: str, run: str) -> Iterator[tuple[Engine, list[str]]]:
    """A database of the caller's own holding the demo city (dropped after), and the lines
    the city's build said."""
    from layers.db.engine import make_engine

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = _template(run)
    copy = f"{name}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK})
            try:
                found = conn.execute(text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = :n"), {"n": name}).first()
                if found is None:
                    _marker(run).touch()
                    lines = _build(admin_url, admin, name)
                else:
                    lines = json.loads(found[0] or "[]")
                conn.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"'))
                fast_commits(conn, copy)  # a database's settings are not copied
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK})
        engine = make_engine(url=_url(admin_url, copy))
        try:
            yield engine, lines
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
    finally:
        admin.dispose()


def drop_template(config: pytest.Config) -> None:
    """At the end of a run, in its controlling process: the run's template, if it made one."""
    if getattr(config, "workerinput", None) is not None:
        return
    run = run_id(config)
    if not _marker(run).exists():
        return
    url = os.environ.get("GRIDCORE_TEST_ADMIN_URL")
    if not url:
        from layers.db.cluster import EmbeddedCluster

        url = EmbeddedCluster().start().url()
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{_template(run)}" WITH (FORCE)'))
    finally:
        admin.dispose()
        _marker(run).unlink(missing_ok=True)
