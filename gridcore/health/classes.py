"""Choropleth classes with mapclassify: quantiles, natural breaks or fixed breaks, plus the
legend (bounds, label, colour) that the GeoJSON, the HTML map and the PNG all share.

``natural_breaks`` uses mapclassify's ``FisherJenks`` — the exact Jenks optimisation — rather
than ``NaturalBreaks``, whose k-means start is random: the same data must give the same map.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from gridcore.errors import ValidationError

SCHEMES = ("quantiles", "natural_breaks", "fixed")
# Red (worst) → green (best), ColorBrewer RdYlGn; k colours picked evenly.
_PALETTE = ["#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#d9ef8b", "#a6d96a",
            "#66bd63", "#1a9850"]
NO_DATA_COLOUR = "#bdbdbd"


@dataclass(frozen=True)
class Classes:
    scheme: str
    bins: list[float]  # upper bounds, one per class
    classes: list[int | None]  # class per value (None: no data)
    legend: list[dict[str, object]]
    requested: int = 0  # classes asked for (k, or the fixed breaks)
    merged: int = 0  # classes merged away: tied breaks or classes no value fell in


def palette(k: int, reverse: bool = False) -> list[str]:
    idx = np.linspace(0, len(_PALETTE) - 1, k).round().astype(int) if k > 1 else [0]
    colours = [_PALETTE[i] for i in idx]
    return colours[::-1] if reverse else colours


def classifier(values: np.ndarray, scheme: str, k: int, breaks: list[float] | None
               ) -> Any:  # a mapclassify classifier (the package has no type hints)
    import mapclassify

    if scheme == "quantiles":
        return mapclassify.Quantiles(values, k=k)
    if scheme == "natural_breaks":
        return mapclassify.FisherJenks(values, k=k)
    return mapclassify.UserDefined(values, bins=breaks)


def merge_classes(bins: list[float], data: np.ndarray) -> tuple[list[float], np.ndarray]:
    """Bins without zero-width or empty classes, and each value's class under them.

    Tied values make quantile breaks repeat (64 grids at 58.6 gave the breaks 58.6, 58.6, …:
    a class "58.6 – 58.6" that nothing can fall in); a class no value falls in says nothing
    either. A repeated break is dropped; an empty class is merged into the class above it
    (the top class into the one below). A class that holds only tied values stays: it is
    labelled with its one value."""
    cuts = sorted(set(bins))
    while True:
        yb = np.searchsorted(np.asarray(cuts), data, side="left")
        yb = np.minimum(yb, len(cuts) - 1)  # fixed breaks below the maximum: the top class
        counts = np.bincount(yb, minlength=len(cuts))
        empty = [i for i, c in enumerate(counts) if c == 0]
        if not empty or len(cuts) == 1:
            return cuts, yb
        i = empty[0]
        del cuts[i if i < len(cuts) - 1 else i - 1]


def classify(values: np.ndarray, scheme: str = "quantiles", k: int = 5,
             breaks: list[float] | None = None, higher_is_better: bool = True,
             no_data_label: str = "no data", integer: bool = False) -> Classes:
    """Classes of ``values``. ``integer``: the values are counts, so every break is a whole
    number (a quantile break of 1.667 between counts means "≤ 1") and the classes read
    "0 – 1", "2 – 4": never a class "1 – 1.667" that no count can fall in."""
    if scheme not in SCHEMES:
        raise ValidationError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}",
                              field="scheme", value=scheme, allowed=list(SCHEMES))
    if scheme == "fixed":
        if not breaks or any(b >= a for a, b in zip(breaks[1:], breaks, strict=False)):
            raise ValidationError("fixed classes need increasing breaks, e.g. breaks=40,60,80,100",
                                  field="breaks", value=breaks)
    elif not 2 <= k <= 9:
        raise ValidationError("k must be between 2 and 9", field="k", value=k)
    values = np.asarray(values, dtype=float)
    defined = ~np.isnan(values)
    out: list[int | None] = [None] * len(values)
    bins: list[float] = []
    requested = len(breaks or []) if scheme == "fixed" else k
    if defined.any():
        data = values[defined]
        with warnings.catch_warnings():  # fewer distinct values than classes: mapclassify copes
            warnings.simplefilter("ignore")
            if scheme != "fixed":
                k = min(k, len(np.unique(data)))
            if k >= 2 or scheme == "fixed":
                fitted = classifier(data, scheme, k, breaks)
                bins = [float(b) for b in fitted.bins]
            else:
                bins = [float(data.max())]
        if integer:
            # floor, not round: a count ≤ 1.667 is a count ≤ 1 (the classes stay the same)
            bins = [float(np.floor(b + 1e-9)) for b in bins]
        bins, yb = merge_classes(bins, data)
        for pos, cls in zip(np.flatnonzero(defined), yb, strict=True):
            out[pos] = int(cls)
    colours = palette(len(bins), reverse=not higher_is_better)
    lower = float(np.nanmin(values)) if defined.any() else None
    legend: list[dict[str, object]] = []
    for i, upper in enumerate(bins):
        lo = lower if i == 0 else bins[i - 1] + 1 if integer else bins[i - 1]
        # a bottom class of tied values only (its lowest value is its upper bound): one value
        label = _fmt(upper) if lo == upper else f"{_fmt(lo)} – {_fmt(upper)}"
        legend.append({"class": i, "lower": lo, "upper": upper, "colour": colours[i],
                       "label": label, "count": sum(1 for c in out if c == i)})
    legend.append({"class": None, "label": no_data_label, "colour": NO_DATA_COLOUR,
                   "count": sum(1 for c in out if c is None)})
    return Classes(scheme, bins, out, legend, requested, max(0, requested - len(bins)))


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"
