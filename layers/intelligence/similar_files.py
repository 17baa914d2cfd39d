"""The similar-case index as files that every server process maps read-only (相似案例推荐 at
scale): ``gridcore learn`` (or the scheduled learning in ``serve``) builds the index over the
stored cases and publishes it; each process opens the current one with ``numpy.load(mmap_mode=
"r")``, so the ~1 GiB of postings at 1 M cases sits once in the page cache instead of once per
process. Cases stored after the build are added by each process to a small tail.

Layout, one folder per database (tests and cities sharing a data directory do not mix):
``<root>/<database>/v<UTC stamp>/{<array>.npy, meta.json}`` and a ``current`` symlink that is
replaced atomically. Older versions are removed at the next publication: a process still
mapping one keeps its pages (an unlinked file lives while it is mapped).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

from gridcore.intelligence.similar import SimilarIndex, StoredCase

TEXTS = """
SELECT id, description, category_key, coalesce(grid_code, community_code) AS place, created_at
FROM case_record WHERE id > :after AND coalesce(description, '') <> '' ORDER BY id
"""


@dataclass(frozen=True)
class Published:
    folder: Path
    cases: int
    last_id: int
    size_bytes: int
    seconds: float


def folder_of(root: Path, engine: Engine) -> Path:
    return root / (engine.url.database or "gridcore")


def stored_cases(engine: Engine, after: int = 0) -> list[StoredCase]:
    with engine.connect() as conn:
        rows = conn.execute(text(TEXTS), {"after": after}).all()
    return [StoredCase(int(r.id), str(r.description), r.category_key, r.place, r.created_at)
            for r in rows]


def publish(engine: Engine, root: Path) -> Published | None:
    """Build the index over every described case and make it the current one (None when no
    case has a description yet)."""
    started = datetime.now(UTC)
    cases = stored_cases(engine)
    if not cases:
        return None
    arrays, meta = SimilarIndex().build(cases).arrays()
    folder = write_version(folder_of(root, engine), arrays, meta, started)
    size = sum(p.stat().st_size for p in folder.iterdir())
    return Published(folder, int(meta["n"]), int(meta["last_id"]), size,
                     (datetime.now(UTC) - started).total_seconds())


def write_version(base: Path, arrays: dict[str, Any], meta: dict[str, Any],
                  built_at: datetime) -> Path:
    """Write one version of the index under ``base`` and make it ``current`` (atomically);
    older versions go."""
    base.mkdir(parents=True, exist_ok=True)
    name = f"v{built_at:%Y%m%dT%H%M%S%f}"
    work = base / f"{name}.tmp"
    work.mkdir()
    for key, value in arrays.items():
        np.save(work / f"{key}.npy", np.ascontiguousarray(value))
    meta = {**meta, "built_at": built_at.isoformat()}
    (work / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    work.rename(base / name)
    link = base / "current.tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(name)
    os.replace(link, base / "current")  # atomic: a reader sees the old or the new one
    for old in base.iterdir():
        if old.name not in (name, "current") and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return base / name


def open_folder(folder: Path, mmap: bool = True) -> tuple[SimilarIndex, dict[str, Any]]:
    """One version's index: memory-mapped read-only (``mmap=False``: read into this process's
    own memory, as an index built in the process would be — the benchmark's comparison)."""
    meta = json.loads((folder / "meta.json").read_text("utf-8"))
    arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="r" if mmap else None)
              for k in SimilarIndex.ARRAYS}
    return SimilarIndex.from_arrays(arrays, meta), meta


def current(root: Path, engine: Engine) -> str | None:
    """The name of the current published version (a cheap check: one readlink)."""
    try:
        return os.readlink(folder_of(root, engine) / "current")
    except OSError:
        return None


def open_version(root: Path, engine: Engine, version: str
                 ) -> tuple[SimilarIndex, dict[str, Any]] | None:
    """The published index ``version``, memory-mapped read-only (None if it is gone)."""
    try:
        return open_folder(folder_of(root, engine) / version)
    except OSError:
        return None
