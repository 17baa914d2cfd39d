"""Maps for reports (制图): a choropleth with the elements a printed map needs — area names,
a scale bar, a north arrow, the legend beside (not over) the map, and the data source and
date under it. Used by ``GET /health/choropleth.png`` and the briefings (数据简报).

The map is drawn in the UTM zone of its centre (``GeoDataFrame.estimate_utm_crs``): distances
on it are metres, so the scale bar is true across the whole map, and the projection is named
in the source line. Chinese text needs a CJK font: the one the install brings (WenQuanYi Zen
Hei) is found by :func:`basemaps.health_map._cjk_font`.
"""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass, field
from typing import Any

from basemaps.health_map import _cjk_font


@dataclass
class MapText:
    """The words on a map, already in the reader's language."""

    title: str
    legend_title: str
    source: str  # data source and date, printed under the map
    north: str = "N"
    legend_note: str | None = None  # e.g. "5 classes requested; 2 merged (tied values)"
    projection: str = "projection {crs}"


@dataclass
class Labels:
    """Names to print on the map: (geometry, name) pairs, drawn at a point inside each."""

    shapes: Any  # a GeoDataFrame with geometry and "name"
    outline: bool = True  # draw their boundaries over the classes (e.g. streets over grids)
    extra: dict[str, Any] = field(default_factory=dict)


def _nice_length(span_m: float) -> float:
    """A round scale-bar length about a fifth of the map's width: 1, 2 or 5 × 10ⁿ metres."""
    raw = max(span_m / 5, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (5, 2, 1) if m * power <= raw)


def _scale_bar(ax: Any, xmin: float, xmax: float, ymin: float, ymax: float,
               font: dict[str, Any]) -> None:
    from matplotlib.patches import Rectangle

    length = _nice_length(xmax - xmin)
    x0 = xmin + (xmax - xmin) * 0.04
    y0 = ymin + (ymax - ymin) * 0.04
    h = (ymax - ymin) * 0.012
    half = length / 2
    for i, colour in enumerate(("black", "white")):
        ax.add_patch(Rectangle((x0 + i * half, y0), half, h, facecolor=colour,
                               edgecolor="black", linewidth=0.8, zorder=5))
    unit, scale = ("km", 1000.0) if length >= 1000 else ("m", 1.0)
    for x, value in ((x0, 0), (x0 + half, half), (x0 + length, length)):
        ax.text(x, y0 + h * 1.6, f"{value / scale:g}", ha="center", va="bottom",
                fontsize=7, zorder=5, **font)
    ax.text(x0 + length + (xmax - xmin) * 0.01, y0 + h / 2, unit, ha="left", va="center",
            fontsize=7, zorder=5, **font)


def _north_arrow(ax: Any, text: str, font: dict[str, Any]) -> None:
    """An arrow pointing up with its letter above it: in a UTM projection grid north is
    within a degree or two of true north at a city's scale."""
    ax.annotate("", xy=(0.95, 0.91), xytext=(0.95, 0.8), xycoords="axes fraction",
                arrowprops={"facecolor": "black", "width": 4, "headwidth": 11,
                            "headlength": 10}, zorder=6)
    ax.text(0.95, 0.92, text, transform=ax.transAxes, ha="center", va="bottom", fontsize=10,
            fontweight="bold", zorder=6, **font)


def choropleth_figure(frame: Any, legend: list[dict[str, Any]], words: MapText,
                      labels: Labels | None = None, size: tuple[float, float] = (9.0, 7.0),
                      dpi: int = 120) -> Any:
    """A matplotlib Figure: ``frame`` (a GeoDataFrame in EPSG:4326 with ``geometry`` and
    ``colour``), its ``legend`` (the classes of :mod:`gridcore.health.classes`), the words."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patheffects as effects
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    family = _cjk_font()
    font: dict[str, Any] = {"fontfamily": [family, "sans-serif"]} if family else {}
    projected, crs_name = None, ""
    if len(frame):
        utm = frame.estimate_utm_crs()
        crs_name = utm.name
        projected = frame.to_crs(utm)
        x0, y0, x1, y1 = projected.total_bounds
        # as tall as the area needs: the map's column is 68 % of the width, 80 % of the height
        aspect = (y1 - y0) / max(x1 - x0, 1e-9)
        size = (size[0], min(11.0, max(4.5, size[0] * 0.68 * aspect * 1.2 / 0.8)))
    fig = plt.figure(figsize=size, dpi=dpi)
    # the map on the left, the legend in its own column: it never covers an area
    ax = fig.add_axes((0.02, 0.1, 0.68, 0.8))
    if projected is not None:
        projected.plot(ax=ax, color=projected["colour"], edgecolor="#666", linewidth=0.25)
        if labels is not None and len(labels.shapes):
            named = labels.shapes.to_crs(utm)
            if labels.outline:
                named.boundary.plot(ax=ax, color="#222", linewidth=0.9)
            halo = [effects.withStroke(linewidth=2.5, foreground="white")]
            for geom, name in zip(named.geometry, named["name"], strict=True):
                if geom is None or geom.is_empty or not name:
                    continue
                point = geom.representative_point()
                ax.text(point.x, point.y, str(name), ha="center", va="center", fontsize=7,
                        path_effects=halo, zorder=4, **font)
        xmin, ymin, xmax, ymax = projected.total_bounds
        pad_x, pad_y = (xmax - xmin) * 0.05, (ymax - ymin) * 0.08
        xmin, xmax, ymin, ymax = xmin - pad_x, xmax + pad_x, ymin - pad_y * 1.6, ymax + pad_y
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(ymin, ymax)
        ax.set_aspect("equal")
        _scale_bar(ax, xmin, xmax, ymin, ymax, font)
    _north_arrow(ax, words.north, font)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    for spine in ax.spines.values():
        spine.set_edgecolor("#999")
    fig.suptitle(words.title, fontsize=12, x=0.36, y=0.96, **font)
    handles = [Patch(facecolor=i["colour"], edgecolor="#777",
                     label=f'{i["label"]} ({i["count"]})') for i in legend
               if i["count"] or i["class"] is not None]  # no "no data (0)" line
    legend_box = fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.72, 0.9),
                            frameon=False, fontsize=8, title=words.legend_title,
                            title_fontsize=9, prop={"family": [family, "sans-serif"]}
                            if family else None)
    if family:
        legend_box.get_title().set_fontfamily([family, "sans-serif"])
    if words.legend_note:  # under the legend, wrapped to its column
        fig.canvas.draw()
        box = legend_box.get_window_extent().transformed(fig.transFigure.inverted())
        wrapped = "\n".join(textwrap.wrap(words.legend_note, 24 if family else 40))
        fig.text(0.725, box.y0 - 0.01, wrapped, fontsize=7, color="#444", va="top", **font)
    source = words.source
    if crs_name:
        source += " · " + words.projection.format(crs=crs_name)
    fig.text(0.02, 0.03, source, fontsize=7, color="#333", wrap=True, **font)
    return fig


def figure_png(fig: Any, dpi: int | None = None) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi)
    plt.close(fig)
    return buf.getvalue()
