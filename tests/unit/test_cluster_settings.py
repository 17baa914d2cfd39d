"""The embedded cluster's WAL compression: lz4 where the binaries have it, pglz (``on``) else."""

from __future__ import annotations

from pathlib import Path

import pytest

from layers.db.cluster import wal_compression


def _pg_config(tmp_path: Path, version: str, configure: str) -> Path:
    script = tmp_path / "pg_config"
    script.write_text(f"#!/bin/sh\necho 'PostgreSQL {version}'\necho \"{configure}\"\n")
    script.chmod(0o755)
    return tmp_path


@pytest.mark.parametrize(("version", "configure", "expected"), [
    ("15.20 (Debian 15.20-0+deb12u1)", "'--prefix=/usr' '--with-lz4' '--with-zstd'", "lz4"),
    ("15.4", "'--prefix=/usr/local'", "on"),   # built without lz4
    ("14.10", "'--with-lz4'", "on"),           # 14 takes on/off only
])
def test_wal_compression_follows_the_binaries(tmp_path: Path, version: str, configure: str,
                                              expected: str) -> None:
    assert wal_compression(_pg_config(tmp_path, version, configure)) == expected


def test_wal_compression_without_pg_config(tmp_path: Path) -> None:
    assert wal_compression(tmp_path) == "on"
