"""`gridcore serve --workers N` runs N worker processes behind one port."""

from __future__ import annotations

import os
import socket
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


def test_a_client_hanging_up_mid_body_is_no_server_error(cli_env: dict[str, str]) -> None:
    """A phone losing signal halfway through a report: nothing stored, no traceback logged."""
    port = free_port()
    env = {**os.environ, **cli_env, "GRIDCORE_ENV": "development"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app",
                             "--port", str(port), "--log-level", "warning"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 5000\r\n\r\n{\"idempotency_key\": \"half")
            time.sleep(0.3)
        time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert "Exception in ASGI application" not in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
