"""Case photos on disk: stored content-addressed under ``GRIDCORE_MEDIA_DIR`` (their checks,
by content and size, are the domain's: ``gridcore.intake.check_photo``)."""

from __future__ import annotations

import os
from pathlib import Path

from gridcore.intake import Photo


def store_photo(photo: Photo, media_dir: Path) -> str:
    """Write the file (atomically: temp file + rename) and return its relative path."""
    target = media_dir / photo.relative_path
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + f".{os.getpid()}.tmp")
        tmp.write_bytes(photo.data)
        os.replace(tmp, target)
    return photo.relative_path
