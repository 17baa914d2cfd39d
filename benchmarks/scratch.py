"""Scratch databases for the benchmarks: created for one run, dropped after it.

``GRIDCORE_BENCH_ADMIN_URL`` names a server where the benchmark may CREATE DATABASE; without
it the embedded cluster is used (started if needed).
"""

from __future__ import annotations

import os

from sqlalchemy import create_engine, make_url, text


def admin_url() -> str:
    url = os.environ.get("GRIDCORE_BENCH_ADMIN_URL")
    if url:
        return url
    from layers.db.cluster import EmbeddedCluster

    return EmbeddedCluster().start().url()


def create_database(name: str) -> str:
    """Create an empty database and return its URL."""
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return make_url(admin.url).set(database=name).render_as_string(hide_password=False)
    finally:
        admin.dispose()


def drop_database(name: str) -> None:
    """Drop the database, ending any session still connected to it (a server the benchmark
    ran in a thread keeps its own pool; pg_terminate_backend alone races with the backends'
    exit, WITH (FORCE) does not)."""
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
