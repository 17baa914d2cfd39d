"""Storage settings (env prefix ``GRIDCORE_``)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    # PostgreSQL refuses to run as root, so root's cluster runs as an unprivileged user; that
    # user cannot traverse /root, hence a system-wide directory for root.
    if os.geteuid() == 0:
        return Path("/var/lib/gridcore")
    return Path(platformdirs.user_data_dir("gridcore"))


class DatabaseSettings(BaseSettings):
    """Where the data lives.

    ``database_url`` (``GRIDCORE_DATABASE_URL``) points at any PostgreSQL ≥ 14 with PostGIS ≥ 3.1.
    Without it, gridcore runs its own private cluster under ``data_dir``.
    """

    model_config = SettingsConfigDict(env_prefix="GRIDCORE_", env_file=None, extra="ignore")

    database_url: str | None = None
    data_dir: Path = default_data_dir()
    pg_bin_dir: Path | None = None
    cluster_port: int | None = None
    cluster_user: str = "gridcore"
    database_name: str = "gridcore"
    pool_size: int = 10
    pool_max_overflow: int = 10
    pool_recycle_s: int = 1800
    pool_timeout_s: float = 10.0
    statement_timeout_ms: int = 60_000
    # Session-level PREPARE (layers.db.prepared) needs each statement to stay on its server
    # session: turn it off behind a transaction-pooling proxy such as PgBouncer.
    prepared_statements: bool = True
    h3_resolution: int = 10
