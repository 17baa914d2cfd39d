"""Basemap providers as data (``basemaps/data/providers.json``) resolved against settings.

Each provider says its datum: ``wgs84`` and ``cgcs2000`` (within centimetres of WGS 84 at map
scale) take the overlays as stored; ``gcj02`` (AMap) asks the tiles for ``datum=gcj02`` so
our WGS 84 data lands on the right street of the shifted basemap.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from gridcore.errors import ValidationError
from gridcore.settings import MapSettings

DATUMS = ("wgs84", "cgcs2000", "gcj02")


@dataclass(frozen=True)
class Provider:
    id: str
    title: str
    title_zh: str
    kind: str  # blank | xyz
    datum: str
    attribution: str
    tiles: tuple[str, ...] = ()  # raster layers drawn one above the other, bottom first
    tile_size: int = 256
    max_zoom: int = 19
    background: str = "#f3f1ec"

    @property
    def overlay_datum(self) -> str:
        """What the overlay tiles must be drawn in to sit on this basemap."""
        return "gcj02" if self.datum == "gcj02" else "wgs84"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "title_zh": self.title_zh,
                "kind": self.kind, "datum": self.datum, "overlay_datum": self.overlay_datum,
                "attribution": self.attribution, "tiles": list(self.tiles),
                "tile_size": self.tile_size, "max_zoom": self.max_zoom,
                "background": self.background}


def raw_providers() -> list[dict[str, Any]]:
    text = resources.files("basemaps").joinpath("data/providers.json").read_text("utf-8")
    return json.loads(text)


def _fill(value: Any, settings: MapSettings) -> Any:
    """Replace ``{setting_name}`` placeholders; tile placeholders ({z}, {x}, {y}) stay."""
    if not isinstance(value, str):
        return value
    known = settings.model_dump()
    return re.sub(r"\{(\w+)\}",
                  lambda m: str(known[m[1]]) if m[1] in known else m[0], value)


def providers(settings: MapSettings) -> list[Provider]:
    """The providers this installation offers, in file order, placeholders filled in."""
    enabled = {p.strip() for p in settings.basemap_enabled.split(",") if p.strip()}
    out = []
    for raw in raw_providers():
        if raw["datum"] not in DATUMS:
            raise ValidationError(f"basemap {raw['id']}: unknown datum {raw['datum']!r}",
                                  field="datum")
        need = raw.get("needs")
        if need and not getattr(settings, need):
            continue
        if enabled and raw["id"] not in enabled and raw["id"] != "blank":
            continue
        out.append(Provider(
            id=raw["id"], title=raw["title"], title_zh=raw["title_zh"], kind=raw["kind"],
            datum=raw["datum"], attribution=_fill(raw["attribution"], settings),
            tiles=tuple(_fill(t, settings) for t in raw.get("tiles", [])),
            tile_size=int(raw.get("tile_size", 256)),
            max_zoom=int(_fill(raw.get("max_zoom", 19), settings)),
            background=raw.get("background", "#f3f1ec")))
    return out


def basemap_config(settings: MapSettings) -> dict[str, Any]:
    """What the map page needs: the providers and the one it opens on (blank by default)."""
    offered = providers(settings)
    ids = [p.id for p in offered]
    default = settings.basemap_default if settings.basemap_default in ids else "blank"
    return {"default": default, "providers": [p.as_dict() for p in offered]}


def tile_origins(settings: MapSettings) -> list[str]:
    """The origins (``scheme://host``) the offered basemaps load tiles from: what a page's
    Content-Security-Policy must allow in ``img-src`` / ``connect-src``. A host label holding a
    placeholder (``t{s}.example.com``) becomes a wildcard label (``*.example.com``)."""
    from urllib.parse import urlsplit

    origins: set[str] = set()
    for provider in providers(settings):
        for url in provider.tiles:
            parts = urlsplit(re.sub(r"\{[^}]*\}", "PLACEHOLDER", url))
            if parts.scheme not in ("http", "https") or not parts.hostname:
                continue
            labels = ["*" if "placeholder" in label else label
                      for label in parts.hostname.split(".")]
            port = f":{parts.port}" if parts.port else ""
            origins.add(f"{parts.scheme}://{'.'.join(labels)}{port}")
    return sorted(origins)
