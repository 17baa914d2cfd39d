"""Case photos: checked by content, size-limited, stored content-addressed on disk.

The type is decided by the bytes, never by the file name or the client's content type: the
magic number must be JPEG, PNG or WebP *and* Pillow must verify the image. Files are named by
their SHA-256, so a resend writes the same file again (idempotent) and identical photos are
stored once.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from gridcore.errors import PayloadTooLarge, ValidationError

_MAGIC = [(b"\xff\xd8\xff", "image/jpeg", "JPEG", ".jpg"),
          (b"\x89PNG\r\n\x1a\n", "image/png", "PNG", ".png")]


@dataclass(frozen=True, slots=True)
class Photo:
    name: str
    data: bytes
    content_type: str
    sha256: str
    suffix: str

    @property
    def relative_path(self) -> str:
        return f"{self.sha256[:2]}/{self.sha256}{self.suffix}"


def _sniff(data: bytes) -> tuple[str, str, str] | None:
    for magic, ctype, fmt, suffix in _MAGIC:
        if data.startswith(magic):
            return ctype, fmt, suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "WEBP", ".webp"
    return None


def check_photo(name: str, data: bytes, max_bytes: int) -> Photo:
    """A validated photo, or PayloadTooLarge / ValidationError naming the file and why."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"photo {name!r} is {len(data)} bytes; the limit is {max_bytes}",
                              field="photos", file=name, size=len(data), limit=max_bytes)
    if not data:
        raise ValidationError(f"photo {name!r} is empty", field="photos", file=name)
    sniffed = _sniff(data)
    if sniffed is None:
        raise ValidationError(f"photo {name!r} is not a JPEG, PNG or WebP image (checked by "
                              "content, not by name)", field="photos", file=name)
    ctype, fmt, suffix = sniffed
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != fmt:
                raise ValidationError(f"photo {name!r}: content is {img.format}, not {fmt}",
                                      field="photos", file=name)
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(f"photo {name!r} is not a valid {fmt} image: {exc}",
                              field="photos", file=name) from exc
    return Photo(name, data, ctype, hashlib.sha256(data).hexdigest(), suffix)


def store_photo(photo: Photo, media_dir: Path) -> str:
    """Write the file (atomically: temp file + rename) and return its relative path."""
    target = media_dir / photo.relative_path
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + f".{os.getpid()}.tmp")
        tmp.write_bytes(photo.data)
        os.replace(tmp, target)
    return photo.relative_path
