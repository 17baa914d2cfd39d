"""Start the real service (uvicorn, its own process) on a free loopback port for a test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
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
def live_server(env: dict[str, str], workers: int = 1, supervisor: bool = False
                ) -> Iterator[str]:
    """``supervisor``: run as ``gridcore serve --workers N`` does (``api.serving``: a socket
    per worker, so connections spread over the processes) instead of uvicorn's CLI."""
    port = free_port()
    full_env = {**os.environ, "GRIDCORE_ENV": "development", **env}
    if supervisor:
        command = [sys.executable, "-m", "api.serving", "api.app:create_app", "--port",
                   str(port), "--workers", str(workers), "--graceful", "2"]
    else:
        command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app",
                   "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                   "--log-level", "warning", "--timeout-graceful-shutdown", "2"]
    # The server's log goes to a file, not a pipe nobody reads (a full pipe would block it).
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the server is
    proc = subprocess.Popen(command, cwd=REPO, env=full_env, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited: {log.read().decode()[-2000:]}")
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
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
