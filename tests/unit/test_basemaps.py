"""Basemap providers as data: blank offline default, keys and URLs from settings, datums."""

from __future__ import annotations

from basemaps.providers import basemap_config, providers, raw_providers
from gridcore.settings import MapSettings, Settings


def test_blank_offline_basemap_is_the_default_and_needs_nothing() -> None:
    config = basemap_config(MapSettings())
    assert config["default"] == "blank"
    ids = [p["id"] for p in config["providers"]]
    assert ids[0] == "blank" and "tianditu" not in ids and "xyz" not in ids  # unmet needs
    blank = config["providers"][0]
    assert blank["kind"] == "blank" and blank["tiles"] == []


def test_every_provider_has_attribution_and_a_known_datum() -> None:
    for raw in raw_providers():
        assert raw["attribution"].strip(), raw["id"]
        assert raw["datum"] in ("wgs84", "cgcs2000", "gcj02")
    assert {r["id"] for r in raw_providers()} >= {"blank", "osm", "tianditu", "amap", "xyz"}


def test_settings_fill_keys_urls_and_choose_the_default() -> None:
    settings = MapSettings(tianditu_key="tk123", basemap_xyz_url="http://tiles.local/{z}/{x}/{y}.png",
                               basemap_xyz_attribution="City survey", basemap_default="amap")
    found = {p.id: p for p in providers(settings)}
    assert all("tk=tk123" in t for t in found["tianditu"].tiles)
    assert found["xyz"].tiles == ("http://tiles.local/{z}/{x}/{y}.png",)  # {z} kept
    assert found["xyz"].attribution == "City survey"
    assert basemap_config(settings)["default"] == "amap"
    # AMap is GCJ-02: the overlay must be drawn shifted; CGCS2000 is taken as WGS 84.
    assert found["amap"].overlay_datum == "gcj02"
    assert found["tianditu"].overlay_datum == "wgs84" and found["osm"].overlay_datum == "wgs84"


def test_enabled_list_and_unknown_default_fall_back_to_blank(monkeypatch) -> None:
    monkeypatch.setenv("GRIDCORE_BASEMAP_ENABLED", "osm")
    monkeypatch.setenv("GRIDCORE_BASEMAP_DEFAULT", "nonexistent")
    config = basemap_config(Settings().map)
    assert [p["id"] for p in config["providers"]] == ["blank", "osm"]
    assert config["default"] == "blank"


