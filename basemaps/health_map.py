"""Health choropleths as an offline HTML page (folium / branca) and a PNG (matplotlib).

Folium links Leaflet, jQuery and Bootstrap from CDNs by default; government networks are often
offline, so the page links only the Leaflet vendored under ``api/static/vendor/leaflet`` (served
at ``/health/vendor/leaflet``) and draws no tile layer — the grids are the map. Both outputs use
the same classes and legend as the GeoJSON (``gridcore.health.classes``).
"""

from __future__ import annotations

import html
import io
import re
from functools import cache
from typing import Any

LEAFLET_JS = "health/vendor/leaflet/leaflet.js"
LEAFLET_CSS = "health/vendor/leaflet/leaflet.css"


def _legend_html(title: str, legend: list[dict[str, Any]]) -> str:
    rows = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;'
        f'background:{item["colour"]};margin-right:6px;border:1px solid #777"></span>'
        f'{html.escape(str(item["label"]))} ({item["count"]})</div>' for item in legend)
    return (f'<div id="legend" style="position:fixed;bottom:24px;right:12px;z-index:9999;'
            f'background:white;padding:8px;font:12px sans-serif;border:1px solid #999">'
            f'<b>{html.escape(title)}</b>{rows}</div>')


def _selector_html(params: dict[str, str], windows: list[str], indices: list[str],
                   levels: list[str], action: str) -> str:
    def select(name: str, options: list[str]) -> str:
        opts = "".join(f'<option value="{html.escape(o)}"'
                       f'{" selected" if o == params.get(name) else ""}>{html.escape(o)}'
                       f"</option>" for o in options)
        return (f'<label>{name} <select name="{name}" onchange="this.form.submit()">'
                f"{opts}</select></label> ")

    hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
                     for k, v in params.items() if k not in ("window", "index", "level"))
    return (f'<form id="selector" method="get" action="{html.escape(action)}" '
            f'style="position:fixed;top:10px;left:60px;z-index:9999;background:white;padding:6px;'
            f'font:12px sans-serif;border:1px solid #999">{select("window", windows)}'
            f'{select("index", indices)}{select("level", levels)}{hidden}</form>')


def choropleth_html(collection: dict[str, Any], title: str, root: str,
                    params: dict[str, str], windows: list[str], indices: list[str],
                    levels: list[str], tooltip_fields: list[str]) -> str:
    import branca
    import folium

    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    # offline: only the vendored Leaflet, nothing from a CDN
    m.default_js = [("leaflet", root + LEAFLET_JS)]
    m.default_css = [("leaflet_css", root + LEAFLET_CSS)]
    features = collection["features"]
    if features:
        folium.GeoJson(
            collection, name=title,
            style_function=lambda f: {"fillColor": f["properties"]["colour"], "color": "#555",
                                      "weight": 0.5, "fillOpacity": 0.75},
            tooltip=folium.GeoJsonTooltip(fields=tooltip_fields, localize=True),
        ).add_to(m)
        bounds = collection.get("bbox")
        if bounds:
            m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    root_element: Any = m.get_root()  # a branca Figure (its stubs say Element)
    root_element.html.add_child(branca.element.Element(
        _legend_html(title, collection["legend"])
        + _selector_html(params, windows, indices, levels, root + "health/map")))
    return m.get_root().render()


def choropleth_png(collection: dict[str, Any], title: str, dpi: int = 120) -> bytes:
    import geopandas as gpd
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(8, 8), dpi=dpi)
    if collection["features"]:
        frame = gpd.GeoDataFrame.from_features(collection["features"], crs="EPSG:4326")
        frame.plot(ax=ax, color=frame["colour"], edgecolor="#555", linewidth=0.3)
    ax.set_axis_off()
    # The report machine may have no CJK font: keep the title's Latin part rather than boxes.
    font = _cjk_font()
    if font:
        ax.set_title(title, fontfamily=[font, "sans-serif"])
    else:
        ax.set_title(re.sub(r"\s+", " ", re.sub(r"[^\x00-\x7f]", "", title)))
    ax.legend(handles=[Patch(facecolor=i["colour"], edgecolor="#777",
                             label=f'{i["label"]} ({i["count"]})')
                       for i in collection["legend"]], loc="lower right", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


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
