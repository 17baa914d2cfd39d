"""`gridcore serve --workers N` runs N worker processes behind one port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.live_server import free_port


def _children(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in kids.read_text().split()] if kids.exists() else []


def test_serve_with_two_workers_answers_from_two_processes(cli_env: dict[str, str]) -> None:
    port = free_port()
    env = {**os.environ, **cli_env, "GRIDCORE_ENV": "development"}
    proc = subprocess.Popen([sys.executable, "-m", "gridcore.cli", "serve", "--workers", "2",
                             "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        ready = False
        for _ in range(600):
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]  # type: ignore[union-attr]
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready and len(_children(proc.pid)) >= 2:
                break
            time.sleep(0.1)
        assert ready
        # uvicorn's supervisor holds the socket; each worker is a child process of it
        workers = [p for p in _children(proc.pid)
                   if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2
        layers = httpx.get(f"http://127.0.0.1:{port}/layers", timeout=10)
        assert layers.status_code == 200 and layers.json()
    finally:
        proc.terminate()
        proc.wait(20)
