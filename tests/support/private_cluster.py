"""A private embedded cluster of a test's own (in a temporary directory, on a free port), for
tests that stop the database under a running server or start a cluster as an old version left
it — never done to the shared cluster the other tests (and other checkouts) use."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gridcore.settings import DatabaseSettings
from layers.db.cluster import EmbeddedCluster
from tests.support.live_server import free_port


@contextmanager
def private_cluster() -> Iterator[EmbeddedCluster]:
    # Not pytest's tmp_path: its parents are root's alone, and the cluster runs as the
    # unprivileged user 'gridcore' when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="gridcore-private-cluster-"))
    os.chmod(root, 0o755)
    cluster = EmbeddedCluster(DatabaseSettings(data_dir=root / "data",
                                               cluster_port=free_port()))
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def cluster_env(cluster: EmbeddedCluster) -> dict[str, str]:
    """The environment that points gridcore (a server, the command line) at the cluster."""
    settings = cluster.settings
    return {"GRIDCORE_DATA_DIR": str(settings.data_dir),
            "GRIDCORE_CLUSTER_PORT": str(settings.cluster_port)}
