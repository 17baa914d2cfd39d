"""Nothing acknowledged is lost (不丢案): concurrent reporters post cases to a real
``gridcore serve`` on loopback, the server is killed with SIGKILL mid-load and restarted.

Every case that got a 2xx must be in the database exactly once, with its history (no
half-written case); a report whose answer was lost is resent with the same idempotency key
after the restart and must land once. A second round stops the server with SIGTERM and checks
that it drains (exit 0, no 5xx). The figures go to ``test-artifacts/no_lost_case.json``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from api.security.identity import issue_token
from gridcore.settings import Settings
from layers.security.users import add_user
from tests.support.cases import plant

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
REPORTERS = 6
KILL_AFTER_ACKS = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, database_url: str, media: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "GRIDCORE_DATABASE_URL": database_url,
                    "GRIDCORE_MEDIA_DIR": str(media), "GRIDCORE_RATE_PER_S": "0",
                    "GRIDCORE_ENV": "production"}  # the reporters' tokens are what counts
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_dir = media.parent

    def start(self) -> None:
        self.log = self.log_dir / f"serve-{time.monotonic_ns()}.log"
        with self.log.open("wb") as log:  # a file, not a pipe: access logs must never block
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gridcore.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port)], env=self.env, cwd=REPO,
                stdout=log, stderr=subprocess.STDOUT)
        for _ in range(600):
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not come up")

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _payload(key: str, n: int) -> dict[str, object]:
    return {"idempotency_key": key, "category": "E0103", "source": "grid_worker",
            "lon": 116.4005 + (n % 90) * 1e-4, "lat": 39.9005 + (n % 40) * 1e-4,
            "description": f"暴露垃圾 exposed garbage #{n}"}


class Load:
    """Reporters posting until told to stop; each key's last outcome is kept."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base, self.headers = base, headers
        self.outcome: dict[str, int | str] = {}
        self.payloads: dict[str, dict[str, object]] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def acked(self) -> list[str]:
        with self.lock:
            return [k for k, v in self.outcome.items() if isinstance(v, int) and v < 300]

    def _reporter(self, worker: int) -> None:
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=15) as client:
            n = 0
            while not self.stop.is_set():
                key = f"kill-{worker}-{n}-{uuid.uuid4().hex[:6]}"
                payload = _payload(key, worker * 1000 + n)
                with self.lock:
                    self.payloads[key] = payload
                try:
                    status: int | str = client.post("/cases", json=payload).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with self.lock:
                    self.outcome[key] = status
                n += 1
                if isinstance(status, str):
                    return  # the server is gone: this reporter stops

    def run_until(self, condition, timeout_s: float = 300) -> list[threading.Thread]:  # type: ignore[no-untyped-def]
        threads = [threading.Thread(target=self._reporter, args=(i,), daemon=True)
                   for i in range(REPORTERS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        return threads


def _db_state(engine: Engine) -> tuple[dict[str, int], int]:
    with engine.connect() as conn:
        per_key = dict(conn.execute(text(
            "SELECT idempotency_key, count(*) FROM case_record GROUP BY 1")).all())
        half = conn.execute(text(
            "SELECT count(*) FROM case_record c WHERE NOT EXISTS "
            "(SELECT 1 FROM case_history h WHERE h.case_id = c.id)")).scalar_one()
    return {k: int(v) for k, v in per_key.items()}, int(half)


def test_no_acknowledged_case_is_lost(db: Engine, database_url: str, tmp_path: Path,
                                      artifacts: Path) -> None:
    plant(db)
    add_user(db, "reporter1", "correct horse battery", "grid_worker", areas=("110101001001",))
    token, _ = issue_token(Settings().security, "reporter1", "grid_worker", minutes=30)
    headers = {"Authorization": f"Bearer {token}", "X-Actor": "reporter1",
               "X-Role": "grid_worker"}
    server = Server(database_url, tmp_path / "media")
    try:
        server.start()
        load = Load(server.base, headers)
        threads = load.run_until(lambda: len(load.acked()) >= KILL_AFTER_ACKS)
        killed_rc = server.signal(signal.SIGKILL)  # mid-load: reporters are still posting
        load.stop.set()
        for t in threads:
            t.join(timeout=30)
        acked = load.acked()
        lost_answers = [k for k, v in load.outcome.items() if not isinstance(v, int)]
        server_errors = [k for k, v in load.outcome.items() if isinstance(v, int) and v >= 500]

        per_key, half_written = _db_state(db)
        assert killed_rc == -signal.SIGKILL
        assert not server_errors, {k: load.outcome[k] for k in server_errors}
        assert [k for k in acked if per_key.get(k) != 1] == []
        assert half_written == 0
        assert all(n == 1 for n in per_key.values())

        # Restart; resend every report whose answer was lost, and some acknowledged ones.
        server.start()
        resent = {}
        with httpx.Client(base_url=server.base, headers=headers, timeout=15) as client:
            for key in lost_answers + acked[:20]:
                resent[key] = client.post("/cases", json=load.payloads[key]).status_code
        assert all(status in (200, 201) for status in resent.values()), resent
        assert all(resent[k] == 200 for k in acked[:20])  # already there: the same case
        per_key, half_written = _db_state(db)
        assert sorted(per_key) == sorted(set(acked) | set(lost_answers))
        assert all(n == 1 for n in per_key.values()) and half_written == 0
        found_after_restart = len(per_key)

        # Graceful stop: SIGTERM drains in-flight requests and exits cleanly.
        drain = Load(server.base, headers)
        threads = drain.run_until(lambda: len(drain.acked()) >= 30)
        term_rc = server.signal(signal.SIGTERM)
        drain.stop.set()
        for t in threads:
            t.join(timeout=30)
        drain_5xx = [v for v in drain.outcome.values() if isinstance(v, int) and v >= 500]
        drain_errors = {k: v for k, v in drain.outcome.items() if isinstance(v, str)}
        per_key, half_written = _db_state(db)
        # uvicorn re-raises the signal after its graceful shutdown, so the exit is -SIGTERM;
        # the log shows whether it drained and ran the app's shutdown.
        log = server.log.read_text()
        assert term_rc in (0, -signal.SIGTERM) and not drain_5xx
        assert "Application shutdown complete" in log, log[-2000:]
        # drained: a request the server took in was answered (the unanswered ones were
        # refused connections or a keep-alive socket closed before the request was read)
        assert not [k for k in drain_errors if k in per_key]
        assert all(per_key.get(k) == 1 for k in drain.acked()) and half_written == 0

        figures = {
            "reporters": REPORTERS, "kill": f"SIGKILL after >= {KILL_AFTER_ACKS} acks",
            "sent_before_kill": len(load.outcome), "acknowledged_before_kill": len(acked),
            "answer_lost_at_kill": len(lost_answers),
            "resent_after_restart": len(resent),
            "found_in_database_after_restart": found_after_restart,
            "acknowledged_found_exactly_once": sum(1 for k in acked if per_key.get(k) == 1),
            "half_written": half_written,
            "sigterm_round": {"sent": len(drain.outcome), "acknowledged": len(drain.acked()),
                              "exit_code": term_rc, "server_errors": len(drain_5xx),
                              "not_answered": sorted(drain_errors.values()),
                              "not_answered_but_stored": sum(1 for k in drain_errors
                                                             if k in per_key)},
        }
        (artifacts / "no_lost_case.json").write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures))
    finally:
        server.stop()
