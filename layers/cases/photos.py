"""Case photos on disk: stored content-addressed under ``GRIDCORE_MEDIA_DIR`` (their checks,
by content, size and pixel count, are the domain's: ``gridcore.intake.check_photo``), read back
by their place in the case, and their thumbnails."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

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


def photo_at(conn: Connection, case_id: int, n: int) -> Any:
    """The n-th photo of a case (1-based, in the order they came), or None."""
    if n < 1:
        return None
    return conn.execute(text(
        "SELECT path, sha256, content_type, size_bytes FROM case_photo WHERE case_id = :c "
        "ORDER BY id OFFSET :skip LIMIT 1"), {"c": case_id, "skip": n - 1}).mappings().first()


def thumbnail(media_dir: Path, relative_path: str, sha256: str, size: int) -> Path:
    """A JPEG of at most ``size`` pixels on its longest side, made once and kept beside the
    photos (``thumbs/``); upright (EXIF orientation applied), transparency on white."""
    target = media_dir / "thumbs" / sha256[:2] / f"{sha256}-{size}.jpg"
    if target.exists():
        return target
    from PIL import Image, ImageOps

    with Image.open(media_dir / relative_path) as source:
        if source.format == "JPEG":
            source.draft("RGB", (size * 2, size * 2))  # decode at a fraction of full size
        img: Image.Image = ImageOps.exif_transpose(source)
        img.thumbnail((size, size))
        if img.mode in ("RGBA", "LA", "P"):
            rgba = img.convert("RGBA")
            img = Image.new("RGB", rgba.size, (255, 255, 255))
            img.paste(rgba, mask=rgba.getchannel("A"))
        elif img.mode != "RGB":
            img = img.convert("RGB")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        img.save(tmp, format="JPEG", quality=80, optimize=True)
        os.replace(tmp, target)
    return target
