"""Hot standbys of the embedded cluster (只读副本): PostgreSQL streaming replication on loopback.

``gridcore db replica start`` makes a real physical replica, the same mechanism a city runs
across machines: ``pg_basebackup`` copies the primary over the replication protocol, creates
a **replication slot** (so the primary keeps the WAL the standby has not received yet) and
writes ``standby.signal`` with the connection back to the primary (``-R``); the standby then
runs as its own server on its own port and socket under ``<data_dir>/replicas/<name>``, in hot
standby (read-only queries allowed) with ``hot_standby_feedback`` (long reads on the standby
are not cancelled by the primary's vacuum). Roles and passwords are the primary's (a physical
copy), so the replica's URL is the primary's with another port and socket.

``stop`` stops the server (the slot stays and keeps WAL for it: a restarted standby catches up);
``remove`` also drops the slot and the files. A slot whose standby never comes back would keep
WAL forever: the embedded primary caps what a slot may hold (``max_slot_wal_keep_size``), after
which that standby must be removed and made again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridcore.errors import DatabaseUnsuitable, NotFound, ValidationError
from gridcore.settings import DatabaseSettings
from layers.db.cluster import ClusterInfo, EmbeddedCluster, find_pg_bin, standalone_database

NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
# The standby's own settings: a read-only server beside the primary on the same machine.
STANDBY_OPTIONS = ("-c hot_standby=on -c hot_standby_feedback=on -c max_connections=200 "
                   "-c shared_buffers=256MB -c work_mem=32MB -c jit=off "
                   "-c max_standby_streaming_delay=30s")


@dataclass
class ReplicaStatus:
    name: str
    port: int
    running: bool
    slot: str
    slot_active: bool | None
    replay_lag_bytes: int | None
    replay_lag_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class EmbeddedReplica:
    """One hot standby named ``name`` of the embedded cluster of ``settings``."""

    def __init__(self, settings: DatabaseSettings | None = None, name: str = "replica1") -> None:
        if not NAME.match(name):
            raise ValidationError(f"replica name {name!r}: lower-case letters, digits and _ "
                                  "(at most 31, starting with a letter)", field="name",
                                  value=name)
        self.settings = standalone_database(settings)
        if self.settings.database_url:
            raise DatabaseUnsuitable(
                "GRIDCORE_DATABASE_URL is set: replicas of an external server are made by its "
                "own operators; point GRIDCORE_READ_DATABASE_URL at them")
        self.primary = EmbeddedCluster(self.settings)
        self.name = name
        self.root = Path(self.settings.data_dir) / "replicas" / name
        self.pgdata = self.root / "pg"
        self.socket_dir = self.root / "run"
        self.state_file = self.root / "replica.json"
        self.log_file = self.root / "postgresql.log"
        self.slot = f"gridcore_{name}"

    # -- state -------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.state_file.exists() and (self.pgdata / "standby.signal").exists()

    def port(self) -> int:
        if not self.state_file.exists():
            raise NotFound(f"no replica {self.name!r} in {self.root.parent}; "
                           "run `gridcore db replica start` first", replica=self.name)
        return int(json.loads(self.state_file.read_text())["port"])

    def info(self) -> ClusterInfo:
        primary = self.primary.info()
        return ClusterInfo(self.pgdata, self.socket_dir, self.port(), primary.user,
                           primary.password, primary.database, primary.app_user,
                           primary.app_password)

    def url(self, role: str = "app") -> str:
        """The replica's URL for ``role``: by default the application role's, which
        ``gridcore serve`` reads as (``GRIDCORE_READ_DATABASE_URL``) — a replica's roles are
        the primary's, so a superuser there could still read the server's files; ``owner``
        for maintenance (pausing replay)."""
        return self.info().url(role)

    def _pg_ctl(self, *args: str, check: bool = True) -> Any:
        bin_dir = find_pg_bin(self.settings)
        return self.primary._run([str(bin_dir / "pg_ctl"), "-D", str(self.pgdata), *args],
                                 check=check)

    def is_running(self) -> bool:
        return self.exists() and self._pg_ctl("status", check=False).returncode == 0

    def _choose_port(self, wanted: int | None, primary_port: int) -> int:
        if wanted:
            return wanted
        for port in range(primary_port + 1, primary_port + 50):
            if self.primary._port_free(port):
                return port
        raise DatabaseUnsuitable("no free port for the replica; give one with --port")

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, port: int | None = None) -> ClusterInfo:
        """Make the standby on first use (base backup + slot), then start it if stopped."""
        primary = self.primary.start()
        with self.primary._lock():
            if not self.exists():
                self._make(primary, port)
            info = self.info()
            if not self.is_running():
                self.socket_dir.mkdir(parents=True, exist_ok=True)
                os.chmod(self.socket_dir, 0o755 if self.primary.run_as_root else 0o700)
                self.primary._chown(self.socket_dir)
                options = (f"-c listen_addresses=127.0.0.1 -c port={info.port} "
                           f"-c unix_socket_directories={self.socket_dir} {STANDBY_OPTIONS}")
                result = self._pg_ctl("-l", str(self.log_file), "-w", "-t", "120", "-o",
                                      options, "start", check=False)
                if result.returncode != 0:
                    raise DatabaseUnsuitable(f"the replica {self.name} did not start:\n"
                                             f"{result.stderr.strip()}\n{self._log_tail()}")
            return info

    def _make(self, primary: ClusterInfo, port: int | None) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)  # a half-made replica of an earlier attempt
        self.root.mkdir(parents=True)
        os.chmod(self.root, 0o755 if self.primary.run_as_root else 0o700)
        self.primary._chown(self.root)
        self._drop_slot()  # a slot left by a removed replica of the same name
        bin_dir = find_pg_bin(self.settings)
        result = self.primary._run(
            [str(bin_dir / "pg_basebackup"), "-h", str(primary.socket_dir),
             "-p", str(primary.port), "-U", primary.user, "-D", str(self.pgdata),
             "-X", "stream", "-R", "-C", "-S", self.slot, "--checkpoint=fast", "--no-sync"],
            check=False, extra_env={"PGPASSWORD": primary.password})
        if result.returncode != 0:
            shutil.rmtree(self.root, ignore_errors=True)
            raise DatabaseUnsuitable(f"pg_basebackup failed:\n{result.stderr.strip()}")
        chosen = self._choose_port(port, primary.port)
        self.state_file.write_text(json.dumps({"port": chosen, "slot": self.slot}))
        os.chmod(self.state_file, 0o600)

    def stop(self) -> bool:
        if not self.is_running():
            return False
        self._pg_ctl("-m", "fast", "-w", "stop")
        return True

    def remove(self) -> None:
        """Stop the standby, drop its slot on the primary, delete its files."""
        if self.exists():
            self.stop()
        if self.primary.is_running():
            self._drop_slot()
        shutil.rmtree(self.root, ignore_errors=True)

    def _primary_sql(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg2

        info = self.primary.info()
        conn = psycopg2.connect(dbname="postgres", user=info.user, password=info.password,
                                host=str(info.socket_dir), port=info.port)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def _drop_slot(self) -> None:
        self._primary_sql("SELECT pg_drop_replication_slot(slot_name) FROM "
                          "pg_replication_slots WHERE slot_name = %s AND NOT active",
                          (self.slot,))

    def status(self) -> ReplicaStatus:
        port = self.port()
        running = self.is_running()
        rows = self._primary_sql(
            "SELECT s.active, pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint, "
            "extract(epoch FROM r.replay_lag) FROM pg_replication_slots s "
            "LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = %s",
            (self.slot,)) if self.primary.is_running() else []
        active, lag_bytes, lag_s = rows[0] if rows else (None, None, None)
        return ReplicaStatus(self.name, port, running, self.slot, active,
                             None if lag_bytes is None else int(lag_bytes),
                             None if lag_s is None else float(lag_s))

    def _log_tail(self) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])


def replicas(settings: DatabaseSettings | None = None) -> list[EmbeddedReplica]:
    """The replicas made under the embedded cluster's data directory."""
    settings = standalone_database(settings)
    root = Path(settings.data_dir) / "replicas"
    if not root.exists():
        return []
    return [EmbeddedReplica(settings, p.name) for p in sorted(root.iterdir())
            if (p / "replica.json").exists()]
