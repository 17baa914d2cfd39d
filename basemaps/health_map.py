"""A CJK font for the printed maps and briefings (matplotlib). The health choropleth's PNG is
drawn by ``basemaps/cartography.py``; the interactive health map is a page
(``api/templates/health_map.html`` and ``api/static/health/``) that draws the GeoJSON of
``/health/choropleth``.
"""

from __future__ import annotations

from functools import cache

# scripts/install.sh installs WenQuanYi Zen Hei; matplotlib's font cache may predate it, so
# known files are added by path when the cache does not list a CJK family.
_CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Zen Hei", "SimHei")
_CJK_FILES = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
              "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


@cache
def _cjk_font() -> str | None:
    from pathlib import Path

    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for family in _CJK_FAMILIES:
        if family in names:
            return family
    for path in _CJK_FILES:
        if Path(path).exists():
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
    return None
