"""The similar-case index as files that every server process maps read-only (相似案例推荐 at
scale): ``gridcore learn`` (or the scheduled learning in ``serve``) builds the index over the
stored cases and publishes it; each process opens the current one with ``numpy.load(mmap_mode=
"r")``, so the ~1 GiB of postings at 1 M cases sits once in the page cache instead of once per
process. Cases stored after the build are added by each process to a small tail.

Layout, one folder per database (tests and cities sharing a data directory do not mix):
``<root>/<database>/v<UTC stamp>/{<array>.npy, meta.json}`` and a ``current`` symlink that is
replaced atomically. Older versions are removed at the next publication: a process still
mapping one keeps its pages (an unlinked file lives while it is mapped).

A publication is incremental when a current version exists with the same vocabulary: the cases
stored since its last case are weighed with its vectoriser and merged in (``SimilarIndex.merged``,
the same answers as a full build with that vectoriser), instead of reading and weighing every
case again. It refits from scratch when asked (``full``), when there is no usable current
version, or when the cases added since the last fit exceed ``REFIT_SHARE`` of the cases fitted
then (the document frequencies would be stale). Cases are appended by id: an edited description
of an indexed case, or a case removed, is seen at the next refit.
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


REFIT_SHARE = 0.25


@dataclass(frozen=True)
class Published:
    folder: Path
    cases: int
    last_id: int
    size_bytes: int
    seconds: float
    mode: str = "full"  # full (refitted) | incremental (merged) | unchanged (nothing new)
    added: int = 0  # cases weighed by this publication
    why: str = ""  # why this mode

    def summary(self) -> str:
        return (f"{self.mode}: {self.cases:,} cases indexed ({self.added:,} weighed) in "
                f"{self.seconds:.1f} s — {self.why}")


def folder_of(root: Path, engine: Engine) -> Path:
    return root / (engine.url.database or "gridcore")


def stored_cases(engine: Engine, after: int = 0) -> list[StoredCase]:
    with engine.connect() as conn:
        rows = conn.execute(text(TEXTS), {"after": after}).all()
    return [StoredCase(int(r.id), str(r.description), r.category_key, r.place, r.created_at)
            for r in rows]


def _incremental_base(root: Path, engine: Engine
                      ) -> tuple[tuple[SimilarIndex, dict[str, Any]] | None, str]:
    """The current published version to merge into, or None and why a refit is due."""
    name = current(root, engine)
    if name is None:
        return None, "no published version yet"
    opened = open_version(root, engine, name)
    if opened is None:
        return None, f"the current version {name} could not be read"
    index, meta = opened
    fresh = SimilarIndex(index.language).vocabulary()
    if index.vocabulary() != fresh or "fitted_n" not in meta:
        return None, f"the current version {name} has another vocabulary"
    return opened, f"merged into {name}"


def publish(engine: Engine, root: Path, *, full: bool = False,
            refit_share: float = REFIT_SHARE) -> Published | None:
    """Make the index over every described case the current one: merged into the current
    version when it has the same vocabulary and the cases added since its fit are at most
    ``refit_share`` of those fitted, else refitted over every case (``full``: always). None
    when no case has a description yet."""
    started = datetime.now(UTC)
    base, why = (None, "a full refit was asked for") if full else _incremental_base(root,
                                                                                     engine)
    if base is not None:
        index, meta = base
        fitted, last = int(meta["fitted_n"]), int(meta["last_id"])
        new = stored_cases(engine, last)
        grown = int(meta["n"]) + len(new) - fitted
        if not new:
            folder = folder_of(root, engine) / str(current(root, engine))
            return Published(folder, int(meta["n"]), last, _size(folder), _since(started),
                             "unchanged", 0, "no case stored since the current version")
        if grown <= refit_share * fitted:
            arrays, out = index.merged(new).arrays()
            out = {**out, "fitted_n": fitted, "fitted_at": meta.get("fitted_at")}
            return _written(engine, root, arrays, out, started, "incremental", len(new),
                            f"{why}; {grown:,} cases added since the fit of {fitted:,}")
        why = (f"{grown:,} cases added since the fit of {fitted:,} are more than "
               f"{refit_share:.0%} of it: refitted")
    cases = stored_cases(engine)
    if not cases:
        return None
    arrays, meta = SimilarIndex().build(cases).arrays()
    meta = {**meta, "fitted_n": meta["n"], "fitted_at": started.isoformat()}
    return _written(engine, root, arrays, meta, started, "full", len(cases), why)


def _since(started: datetime) -> float:
    return (datetime.now(UTC) - started).total_seconds()


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


def _written(engine: Engine, root: Path, arrays: dict[str, Any], meta: dict[str, Any],
             started: datetime, mode: str, added: int, why: str) -> Published:
    folder = write_version(folder_of(root, engine), arrays, meta, started)
    return Published(folder, int(meta["n"]), int(meta["last_id"]), _size(folder),
                     _since(started), mode, added, why)


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
