"""The embedded private PostGIS cluster, used when no ``GRIDCORE_DATABASE_URL`` is given.

``initdb`` with the machine's PostgreSQL binaries, data under ``<data_dir>/pg``, listening on a
Unix socket in ``<data_dir>/run`` and on 127.0.0.1 only, on its own port (kept in
``<data_dir>/cluster.json`` so the next run reuses it). When gridcore runs as root the cluster
runs as an unprivileged system user, because PostgreSQL refuses to run as root.

Two database roles (``layers/db/roles.py``): the bootstrap superuser ``gridcore`` owns the
schema (migrations, backups, the command line), and the application role
(``GRIDCORE_DATABASE_APP_ROLE``, ``gridcore_app``), which ``gridcore serve`` connects as, is
no superuser. A cluster made before the application role existed gets it on its next start
(its password joins ``cluster.json``); the grants come with the next migration.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gridcore.errors import DatabaseUnsuitable
from gridcore.settings import DatabaseSettings, Settings

INSTALL_HINT = (
    "PostgreSQL with PostGIS is not installed. On Debian/Ubuntu run:\n"
    "    sudo apt-get install -y postgresql-15 postgresql-15-postgis-3\n"
    "(or set GRIDCORE_DATABASE_URL to an existing PostgreSQL >= 14 with PostGIS >= 3.1)"
)
DEFAULT_PORT = 54329


def wal_compression(bin_dir: Path) -> str:
    """``lz4`` where the binaries can (PostgreSQL 15 built with it: Debian's is), else ``on``
    (pglz, in every version). Full-page images were most of intake's write-ahead log: on the
    3 M megacity, right after a checkpoint, 17.7 of 23.3 KB per case, 8.5 KB compressed with lz4
    (benchmarks/README.md, session 10)."""
    pg_config = bin_dir / "pg_config"
    if not pg_config.exists():
        return "on"
    try:
        out = subprocess.run([str(pg_config), "--version", "--configure"], capture_output=True,
                             text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "on"
    match = re.search(r"PostgreSQL (\d+)", out)
    return "lz4" if match and int(match.group(1)) >= 15 and "--with-lz4" in out else "on"


def standalone_database(settings: DatabaseSettings | None = None) -> DatabaseSettings:
    """``settings`` when given, else the environment's database section: for callers that
    have no settings tree of their own (a notebook, a benchmark, a script). The service and the
    command line always pass the section of the tree they built."""
    return settings if settings is not None else Settings().database


def find_pg_bin(settings: DatabaseSettings) -> Path:
    """The directory holding initdb/pg_ctl/postgres, newest major version first."""
    candidates: list[Path] = []
    if settings.pg_bin_dir:
        candidates.append(Path(settings.pg_bin_dir))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 check=True).stdout.strip()
            candidates.append(Path(out))

    def major(path: str) -> float:
        match = re.search(r"/(\d+(?:\.\d+)?)/bin$", path)
        return float(match.group(1)) if match else 0.0

    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin",
                    "/opt/homebrew/opt/postgresql@*/bin", "/usr/local/opt/postgresql@*/bin"):
        candidates.extend(Path(p) for p in sorted(glob.glob(pattern), key=major, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    raise DatabaseUnsuitable(INSTALL_HINT)


@dataclass
class ClusterInfo:
    data_dir: Path
    socket_dir: Path
    port: int
    user: str
    password: str
    database: str
    app_user: str = "gridcore_app"
    app_password: str | None = None  # None: a cluster not started by this version yet

    def _credentials(self, role: str) -> tuple[str, str]:
        if role == "owner":
            return self.user, self.password
        if self.app_password is None:
            raise DatabaseUnsuitable("the embedded cluster has no application role yet; "
                                     "run `gridcore db start`")
        return self.app_user, self.app_password

    def url(self, role: str = "owner", database: str | None = None) -> str:
        """The URL of ``role`` (``owner`` or ``app``) on the socket."""
        # The Unix socket is the primary path: no TCP overhead, no password round trip.
        user, password = self._credentials(role)
        return (f"postgresql+psycopg2://{user}:{password}@/{database or self.database}"
                f"?host={self.socket_dir}&port={self.port}")

    def tcp_url(self, role: str = "owner") -> str:
        user, password = self._credentials(role)
        return (f"postgresql+psycopg2://{user}:{password}@127.0.0.1:{self.port}/"
                f"{self.database}")


class EmbeddedCluster:
    def __init__(self, settings: DatabaseSettings | None = None) -> None:
        self.settings = standalone_database(settings)
        self.root = Path(self.settings.data_dir)
        self.pgdata = self.root / "pg"
        self.socket_dir = self.root / "run"
        self.state_file = self.root / "cluster.json"
        self.log_file = self.root / "postgresql.log"
        self.run_as_root = os.geteuid() == 0

    # -- helpers -----------------------------------------------------------------------------
    def _os_user(self) -> str | None:
        return self.settings.cluster_user if self.run_as_root else None

    def _ensure_os_user(self) -> None:
        name = self.settings.cluster_user
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", str(self.root),
                            "--shell", "/usr/sbin/nologin", name], check=True)

    def _chown(self, path: Path) -> None:
        if self.run_as_root:
            entry = pwd.getpwnam(self.settings.cluster_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, args: list[str], check: bool = True,
             extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        user = self._os_user()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        env.update(extra_env or {})
        return subprocess.run(args, capture_output=True, text=True, check=check, env=env,
                              cwd=str(self.root), user=user, group=None)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load_state(self) -> dict[str, object] | None:
        if not self.state_file.exists():
            return None
        return json.loads(self.state_file.read_text())

    @staticmethod
    def _port_free(port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
            return True

    def _choose_port(self) -> int:
        if self.settings.cluster_port:
            return self.settings.cluster_port
        for port in range(DEFAULT_PORT, DEFAULT_PORT + 50):
            if self._port_free(port):
                return port
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    # -- public ------------------------------------------------------------------------------
    def info(self) -> ClusterInfo:
        state = self._load_state()
        if state is None:
            raise DatabaseUnsuitable(
                f"no embedded cluster in {self.root}; run `gridcore db start` first")
        app_password = state.get("app_password")
        return ClusterInfo(self.pgdata, self.socket_dir, int(str(state["port"])),
                           str(state["user"]), str(state["password"]), self.settings.database_name,
                           str(state.get("app_user") or self.settings.database_app_role),
                           str(app_password) if app_password else None)

    def is_initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists() and self.state_file.exists()

    def is_running(self) -> bool:
        if not self.is_initialised():
            return False
        bin_dir = find_pg_bin(self.settings)
        result = self._run([str(bin_dir / "pg_ctl"), "-D", str(self.pgdata), "status"],
                           check=False)
        return result.returncode == 0

    def init(self) -> None:
        bin_dir = find_pg_bin(self.settings)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755 if self.run_as_root else 0o700)
        if self.run_as_root:
            self._ensure_os_user()
        self._chown(self.root)
        password = secrets.token_urlsafe(24)
        pwfile = self.root / ".pwfile"
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        try:
            result = self._run([str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", "gridcore",
                                "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=scram-sha-256",
                                "--auth-host=scram-sha-256", f"--pwfile={pwfile}"], check=False)
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise DatabaseUnsuitable(f"initdb failed:\n{result.stderr.strip()}")
        port = self._choose_port()
        self._write_state({"port": port, "user": "gridcore", "password": password})

    def _write_state(self, state: dict[str, object]) -> None:
        """Replace ``cluster.json`` at once (other processes read it without the lock)."""
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(state))
        tmp.replace(self.state_file)

    def start(self) -> ClusterInfo:
        """Initialise on first use, start if stopped, create the database and PostGIS."""
        with self._lock():
            if not self.is_initialised():
                if self.pgdata.exists() and any(self.pgdata.iterdir()):
                    raise DatabaseUnsuitable(
                        f"{self.pgdata} exists but is not a gridcore cluster; move it away")
                self.init()
            info = self.info()
            if not self.is_running():
                self.socket_dir.mkdir(parents=True, exist_ok=True)
                os.chmod(self.socket_dir, 0o755 if self.run_as_root else 0o700)
                self._chown(self.socket_dir)
                if not self._port_free(info.port):
                    raise DatabaseUnsuitable(
                        f"port {info.port} of the embedded cluster is taken by another program; "
                        f"set GRIDCORE_CLUSTER_PORT or free the port")
                bin_dir = find_pg_bin(self.settings)
                options = (f"-c listen_addresses=127.0.0.1 -c port={info.port} "
                           f"-c unix_socket_directories={self.socket_dir} "
                           f"-c max_connections=200 -c shared_buffers=512MB "
                           f"-c work_mem=32MB -c maintenance_work_mem=256MB "
                           f"-c max_wal_size=2GB -c jit=off "
                           # full-page images compressed: a third less WAL per case written,
                           # and each commit waits on its WAL flush (benchmarks/README.md,
                           # session 10)
                           f"-c wal_compression={wal_compression(bin_dir)} "
                           # a replication slot whose standby never returns (layers.db.replica)
                           # may hold this much WAL, no more
                           f"-c max_slot_wal_keep_size=8GB")
                result = self._run([str(bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-l",
                                    str(self.log_file), "-w", "-t", "60", "-o", options, "start"],
                                   check=False)
                if result.returncode != 0:
                    tail = ""
                    if self.log_file.exists():
                        tail = "\n".join(self.log_file.read_text(errors="replace")
                                         .splitlines()[-15:])
                    raise DatabaseUnsuitable(
                        f"could not start the embedded PostgreSQL cluster in {self.pgdata}:\n"
                        f"{result.stderr.strip()}\n{tail}")
            return self._ensure_database(info)

    def _ensure_database(self, info: ClusterInfo) -> ClusterInfo:
        """The database, and the application role (made on the first start of a cluster
        that has none: an upgrade in place). Under the start lock."""
        import psycopg2
        from psycopg2 import sql

        conn = psycopg2.connect(dbname="postgres", user=info.user, password=info.password,
                                host=str(info.socket_dir), port=info.port)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (info.database,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(info.database)))
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (info.app_user,))
                if info.app_password is None or cur.fetchone() is None:
                    info = self._make_app_role(cur, info)
        finally:
            conn.close()
        return info

    def _make_app_role(self, cur: Any, info: ClusterInfo) -> ClusterInfo:
        from layers.db.roles import role_statements

        password = info.app_password or secrets.token_urlsafe(24)
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (info.app_user,))
        statement = role_statements(info.app_user, password)[0]
        if cur.fetchone() is not None:
            statement = statement.replace("CREATE ROLE", "ALTER ROLE", 1)
        cur.execute(statement)
        state = dict(self._load_state() or {})
        state.update(app_user=info.app_user, app_password=password)
        self._write_state(state)
        return replace(info, app_password=password)

    def stop(self) -> bool:
        if not self.is_running():
            return False
        bin_dir = find_pg_bin(self.settings)
        self._run([str(bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
        return True

    def status(self) -> dict[str, object]:
        initialised = self.is_initialised()
        status: dict[str, object] = {"data_dir": str(self.root), "initialised": initialised,
                                     "running": self.is_running() if initialised else False}
        if initialised:
            info = self.info()
            status.update(port=info.port, socket_dir=str(info.socket_dir))
        return status


def _psycopg2(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def resolve_database_url(settings: DatabaseSettings | None = None, start: bool = True,
                         role: str = "owner") -> str:
    """The URL of ``role``: ``owner`` (migrations, backups, the command line) or ``app``
    (``gridcore serve``). With ``GRIDCORE_DATABASE_URL`` (the application's) and
    ``GRIDCORE_DATABASE_OWNER_URL`` (the owner's, the same URL when unset); otherwise the
    embedded cluster's (started if asked)."""
    if role not in ("owner", "app"):
        raise ValueError(f"unknown database role {role!r}")
    settings = standalone_database(settings)
    if settings.database_url:
        if role == "owner" and settings.database_owner_url:
            return _psycopg2(settings.database_owner_url)
        return _psycopg2(settings.database_url)
    cluster = EmbeddedCluster(settings)
    info = cluster.start() if start else cluster.info()
    return info.url(role)
