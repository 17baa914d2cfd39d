"""Basemap settings (env prefix ``GRIDCORE_``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class BasemapSettings(BaseSettings):
    """Which basemaps the map offers. With nothing configured the map opens on the blank
    offline basemap: government networks are often cut off from the internet.

    - ``GRIDCORE_BASEMAP_DEFAULT``: provider id the map opens on (``blank`` unless set).
    - ``GRIDCORE_BASEMAP_ENABLED``: comma-separated provider ids offered (empty = every
      provider whose needs are met: Tianditu needs a key, self-hosted needs a URL).
    - ``GRIDCORE_TIANDITU_KEY``: the Tianditu (天地图) browser key (tk).
    - ``GRIDCORE_BASEMAP_XYZ_URL`` / ``_ATTRIBUTION``: a self-hosted XYZ raster tile URL.
    """

    model_config = SettingsConfigDict(env_prefix="GRIDCORE_", env_file=None, extra="ignore")

    basemap_default: str = "blank"
    basemap_enabled: str = ""
    tianditu_key: str | None = None
    basemap_xyz_url: str | None = None
    basemap_xyz_attribution: str = "self-hosted tiles"
    basemap_xyz_max_zoom: int = 19
