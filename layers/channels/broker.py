"""The embedded MQTT broker (``gridcore broker start``): Debian's ``mosquitto`` with a
configuration gridcore writes, listening on loopback only, its files under
``<data dir>/mqtt`` — never the system-wide broker or its configuration.

For the demo and a single machine; a deployment points ``GRIDCORE_MQTT_HOST`` / ``_PORT`` at
its own broker (with TLS and per-device credentials). The tests start one of these on a free
loopback port in a temporary directory.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from gridcore.errors import ServiceUnavailable

SEARCH = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def mosquitto_binary() -> Path:
    found = shutil.which("mosquitto")
    for candidate in ([found] if found else []) + list(SEARCH):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise ServiceUnavailable("mosquitto is not installed: scripts/install.sh installs it "
                             "(apt-get install mosquitto)")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """A private mosquitto in ``directory`` on ``127.0.0.1:port``."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = Path(directory)
        self.port = port

    @property
    def config(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def pid_file(self) -> Path:
        return self.directory / "mosquitto.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "mosquitto.log"

    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Anonymous clients on loopback only: the devices of a demo. A deployment's broker
        # authenticates every device (password file or client certificates) and limits it to
        # its own topic with an ACL.
        self.config.write_text("\n".join([
            "# written by gridcore (layers/channels/broker.py); changes are overwritten",
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            f"pid_file {self.pid_file}",
            f"log_dest file {self.log_file}",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            # mosquitto drops root privileges to a user of its own, which could not write here
            f"user {getpass.getuser()}",
            "max_queued_messages 10000",
            ""]), encoding="utf-8")

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None and port_open(self.port)

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        if self.running():
            return self
        if port_open(self.port):
            raise ServiceUnavailable(f"port {self.port} is taken by another program; set "
                                     "GRIDCORE_MQTT_PORT to a free one", port=self.port)
        self.write_config()
        result = subprocess.run([str(mosquitto_binary()), "-c", str(self.config), "-d"],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceUnavailable(f"mosquitto did not start: {result.stderr.strip()}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.running():
                return self
            time.sleep(0.05)
        log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
        raise ServiceUnavailable(f"mosquitto did not listen on port {self.port}: {log}")

    def stop(self, timeout_s: float = 10.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
