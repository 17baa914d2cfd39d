"""HTTP settings (env prefix ``GRIDCORE_``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDCORE_", env_file=None, extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    # Processes of `gridcore serve`. Python runs one request's code at a time per process, so
    # a machine with N cores serves up to N times more with N workers (bench_intake uses 2 on
    # 2 cores); each worker keeps its own grid index in memory and its own connection pool.
    workers: int = 1
    # With several workers, one whose event loop has stood still this long is killed and
    # replaced (api.serving): it would keep receiving its share of new connections.
    worker_hung_after_s: float = 20.0
    public_url: str | None = None
    max_body_bytes: int = 20 * 1024 * 1024
    page_limit_default: int = 100
    page_limit_max: int = 10_000
