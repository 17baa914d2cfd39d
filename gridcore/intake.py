"""What a report is and what intake (信息收集) asks of it — pure rules, no I/O.

A report arrives from a grid worker's phone, the hotline, a citizen app, Open311 or a machine
source; :class:`Report` holds it as received and :meth:`Report.validate` refuses it with a clear
error (a missing idempotency key, an unknown class or source, a coordinate that is not a
number). :class:`Filing` is a report with the identity that files it, resolved by the route
before the report enters intake. Photos are checked by their bytes (:func:`check_photo`).
Storage (``layers.cases.intake``) places the report, asks :func:`require_inside` and
:func:`duplicate_candidates`, and writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gridcore.duplicates import CaseSketch, rank
from gridcore.errors import OutsideManagedArea, PayloadTooLarge, ValidationError
from gridcore.resolution import Resolution
from gridcore.taxonomy import default_taxonomy

# iot / video: machine discovery (机器发现) by sensors and video analytics; "machine" is the
# older spelling of either, kept for reports filed before the two were told apart.
SOURCES = ("grid_worker", "hotline", "citizen", "machine", "iot", "video", "open311", "other")
# One set of limits for every channel (POST /cases, Open311, the command line, the demo).
MAX_KEY, MAX_DESCRIPTION, MAX_REPORTER, MAX_CRS, MAX_ADDRESS = 128, 4000, 200, 32, 300
# Characters no text field may hold: control characters but tab, LF and CR, lone surrogates,
# U+FFFE / U+FFFF — what XML 1.0 cannot carry (Open311's XML answers) and PostgreSQL's NUL.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_MAGIC = [(b"\xff\xd8\xff", "image/jpeg", "JPEG", ".jpg"),
          (b"\x89PNG\r\n\x1a\n", "image/png", "PNG", ".png")]


@dataclass(frozen=True, slots=True)
class Photo:
    """A checked photo: its bytes, the type its content proves, and its SHA-256 (it is stored
    under that name: a resend writes the same file, identical photos are stored once)."""

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


DEFAULT_MAX_PIXELS = 50_000_000


def check_photo(name: str, data: bytes, max_bytes: int,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """A validated photo, or PayloadTooLarge / ValidationError naming the file and why. The
    type is decided by the bytes, never by the file name or the client's content type: the
    magic number must be JPEG, PNG or WebP *and* Pillow must verify the image. An image
    whose header declares more than ``max_pixels`` pixels is refused before anything is
    decoded (a decompression bomb: a few kilobytes that would take gigabytes to decode)."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"photo {name!r} is {len(data)} bytes; the limit is {max_bytes}",
                              field="photos", file=name, size=len(data), limit=max_bytes,
                              msg_key="photo_too_large")
    if not data:
        raise ValidationError(f"photo {name!r} is empty", field="photos", file=name,
                              msg_key="photo_empty")
    sniffed = _sniff(data)
    if sniffed is None:
        raise ValidationError(f"photo {name!r} is not a JPEG, PNG or WebP image (checked by "
                              "content, not by name)", field="photos", file=name,
                              msg_key="photo_not_image")
    ctype, fmt, suffix = sniffed
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            if img.format != fmt:
                raise ValidationError(f"photo {name!r}: content is {img.format}, not {fmt}",
                                      field="photos", file=name, msg_key="photo_invalid")
            width, height = img.size
            if width * height > max_pixels:
                raise PayloadTooLarge(
                    f"photo {name!r} is {width} × {height} pixels "
                    f"({width * height / 1e6:.1f} MP); the limit is {max_pixels / 1e6:g} MP",
                    field="photos", file=name, width=width, height=height,
                    limit_pixels=max_pixels, msg_key="photo_too_many_pixels")
            img.verify()
    except Image.DecompressionBombError as exc:  # beyond even Pillow's own ceiling
        raise PayloadTooLarge(f"photo {name!r}: {exc}", field="photos", file=name,
                              limit_pixels=max_pixels, msg_key="photo_too_many_pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(f"photo {name!r} is not a valid {fmt} image: {exc}",
                              field="photos", file=name, msg_key="photo_invalid") from exc
    return Photo(name, data, ctype, hashlib.sha256(data).hexdigest(), suffix)


@dataclass(frozen=True, slots=True)
class DeviceFix:
    """Where the phone's GPS put the reporter when the report was made, and how sure it was:
    kept beside the report's location when the worker dragged the pin to correct it (or tapped
    a city part), so that the correction stays visible. ``at``: ISO 8601 as the phone sent it."""

    lon: float
    lat: float
    accuracy_m: float | None = None
    at: str | None = None

    def validate(self) -> None:
        for name, v in (("fix_lon", self.lon), ("fix_lat", self.lat)):
            if not math.isfinite(v):
                raise ValidationError(f"{name} must be a finite number", field=name)
        if not (-180 <= self.lon <= 180 and -90 <= self.lat <= 90):
            raise ValidationError("fix_lon / fix_lat must be WGS 84 degrees (the phone's GPS)",
                                  field="fix_lon")
        if self.accuracy_m is not None and not (math.isfinite(self.accuracy_m)
                                                and self.accuracy_m >= 0):
            raise ValidationError("fix_accuracy_m must be a distance in metres (≥ 0)",
                                  field="fix_accuracy_m", value=self.accuracy_m)

    def as_dict(self) -> dict[str, Any]:
        return {"lon": self.lon, "lat": self.lat, "accuracy_m": self.accuracy_m,
                "at": self.at}


LOCATION_SOURCES = ("point", "geocoded", "map", "unlocated")
MAX_ADDRESS = 200


@dataclass(frozen=True)
class Report:
    """One report as received (any source). A hotline report may come with an ``address``
    instead of a point (lon / lat None): intake geocodes it (接诉即办)."""

    idempotency_key: str
    category: str
    lon: float | None
    lat: float | None
    crs: str = "EPSG:4326"
    description: str = ""
    source: str = "other"
    reporter: str = ""
    photos: list[Photo] = field(default_factory=list)
    fix: DeviceFix | None = None
    address: str = ""
    # "predicted": the reporter gave no class and the classifier filed it (智能分类)
    category_source: str = "reported"

    @property
    def placed(self) -> bool:
        """Does the report come with a point (else only with an address)?"""
        return self.lon is not None and self.lat is not None

    def validate(self) -> None:
        if not self.idempotency_key or len(self.idempotency_key) > MAX_KEY:
            raise ValidationError(f"idempotency_key is required (1–{MAX_KEY} characters, "
                                  "generated by the client once per report)",
                                  field="idempotency_key")
        for name, value, limit in (("idempotency_key", self.idempotency_key, MAX_KEY),
                                   ("description", self.description, MAX_DESCRIPTION),
                                   ("reporter", self.reporter, MAX_REPORTER),
                                   ("crs", self.crs, MAX_CRS),
                                   ("address", self.address, MAX_ADDRESS)):
            check_text(name, value, limit)
        default_taxonomy().get(self.category)
        if self.source not in SOURCES:
            raise ValidationError(f"source {self.source!r} must be one of {', '.join(SOURCES)}",
                                  field="source", value=self.source)
        if self.fix is not None:
            self.fix.validate()
        if not self.placed:
            if (self.lon is None) != (self.lat is None):
                missing = "lat" if self.lat is None else "lon"
                raise ValidationError(f"{missing} is missing: lon and lat go together",
                                      field=missing)
            if not self.address.strip():
                raise ValidationError("a report needs a place: lon and lat, or an address to "
                                      "geocode", field="location")
            return
        for name, v in (("lon", self.lon), ("lat", self.lat)):
            if v is None or not math.isfinite(v):
                raise ValidationError(f"{name} must be a finite number", field=name)

    def payload_hash(self) -> str:
        """What makes two reports with one key the same report (a resend) or not (a 409)."""
        body: dict[str, Any] = {
            "category": self.category if self.category_source == "reported" else "",
            "lon": round(self.lon, 9) if self.lon is not None else None,
            "lat": round(self.lat, 9) if self.lat is not None else None,
            "crs": self.crs.upper(), "description": self.description, "source": self.source,
            "reporter": self.reporter, "photos": [p.sha256 for p in self.photos]}
        if self.fix is not None:  # absent: the hash of every report filed before it existed
            body["fix"] = self.fix.as_dict()
        if self.address:  # absent: the hash of every report filed before addresses existed
            body["address"] = self.address
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def check_text(name: str, value: str, limit: int) -> None:
    """A text field within its length and free of characters no field may hold."""
    if len(value) > limit:
        raise ValidationError(f"{name} has {len(value)} characters; at most {limit}",
                              field=name, limit=limit)
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        raise ValidationError(f"{name} holds the control character U+{ord(bad[0]):04X} at "
                              f"position {bad.start() + 1}; remove it", field=name,
                              position=bad.start() + 1)


@dataclass(frozen=True)
class Filing:
    """One report and who files it: the signed-in user, the API key's source or, for the
    development stand-in and anonymous machine sources, ``system``. ``user``: the signed-in
    user's name, only when a bearer token proved it (such a user may always read the case).
    ``caller`` names the identity that sent it (``user:wang``, ``key:<prefix>:<owner>``;
    '' for the command line and the product itself): an idempotency key is that caller's
    alone."""

    report: Report
    actor: str = ""
    role: str = "system"
    user: str | None = None
    caller: str = ""

    @property
    def filed_by(self) -> str:
        """The actor recorded in the case's history and the audit log."""
        return self.actor or self.report.reporter or self.report.source


def require_inside(res: Resolution, report: Report) -> Resolution:
    """The resolution of a point that has a unit grid (covered by it, or snapped to it within
    the snap distance); OutsideManagedArea otherwise."""
    if res.grid is None:
        near = res.nearest_grid
        raise OutsideManagedArea(
            f"point ({report.lon}, {report.lat}) in {report.crs} lies outside every unit grid"
            + (f"; the nearest grid {near.grid_code} is {near.distance_m:.0f} m away"
               if near else ""),
            field="location", lon=report.lon, lat=report.lat,
            nearest_grid=near.grid_code if near else None)
    return res


def duplicate_candidates(report: Report, part: str | None,
                         nearby: Iterable[Mapping[str, Any]], now: datetime,
                         window: timedelta) -> list[dict[str, object]]:
    """The open cases nearby that may report the same problem (重复事件), best first, each
    with its score and signals. ``nearby``: rows with ``id``, ``category_key``,
    ``description``, ``part_code``, ``at`` (epoch seconds) and ``d`` (metres)."""
    radius = default_taxonomy().get(report.category).dedup_radius_m
    new = CaseSketch(report.category, now, report.description, part)
    others = [(CaseSketch(r["category_key"], datetime.fromtimestamp(float(r["at"]), UTC),
                          r["description"], r["part_code"], r["id"]), float(r["d"]))
              for r in nearby]
    return [c.as_dict() for c in rank(new, others, radius, window)]
