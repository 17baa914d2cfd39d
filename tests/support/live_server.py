"""Start the real service (uvicorn, its own process) on a free loopback port for a test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.support.data import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(env: dict[str, str], workers: int = 1) -> Iterator[str]:
    port = free_port()
    full_env = {**os.environ, "GRIDCORE_ENV": "development", **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level",
         "warning"], cwd=REPO, env=full_env, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                error = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"server exited: {error[-2000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not start within 30 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
