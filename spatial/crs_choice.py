"""Which coordinate system a file's coordinates are in (坐标系判定), and whether they fit it.

Imports and ``gridcore resolve FILE`` follow one rule, said here once:

- the file's declared CRS is used (a GeoJSON always declares one, a GeoPackage nearly always);
- a CRS given by the caller (``--crs``) is used when the file declares none;
- a given CRS that contradicts the declared one is an error, unless the caller says the
  declaration is wrong (``--override-crs``): GCJ-02 data is routinely labelled WGS 84;
- neither: an error, or a default the caller names (a CSV's lon/lat columns are WGS 84) —
  and what was assumed is said in words (:attr:`CrsChoice.note`) for the summary.

The coordinates are then checked against the CRS's area of use before anything is converted:
metres or feet under a geographic CRS ("these coordinates look like metres/feet, not
degrees"), degrees or far-away coordinates under a projected one. Conversion itself is
:mod:`spatial.crs`'s (datums GCJ-02 / BD-09 included), applied to every vertex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from gridcore.errors import ValidationError
from spatial import crs as crs_mod

_WGS84_LIKE = {"EPSG:4326"}  # what "declared WGS 84" means (CRS84 and EPSG:4326 alike)
# Beyond the CRS's published area of use by this much (degrees, or this share of its span)
# coordinates are taken as a wrong CRS rather than data near the edge of a zone.
_MARGIN_DEG = 2.0
_MARGIN_SHARE = 0.5


@dataclass(frozen=True)
class CrsChoice:
    """The CRS the coordinates are read in: a name of :mod:`spatial.crs` (``EPSG:n``,
    ``GCJ-02``, ``BD-09``) or, for a declared CRS without an EPSG code, the pyproj CRS."""

    source: str | CRS
    note: str

    @property
    def name(self) -> str:
        return self.source if isinstance(self.source, str) else self.source.to_string()

    @property
    def is_wgs84(self) -> bool:
        return self.source in ("EPSG:4326", "EPSG:4490")


def declared_name(declared: Any) -> str | CRS | None:
    """A file's declared CRS as a :mod:`spatial.crs` name when it has an EPSG code."""
    if declared is None:
        return None
    found = CRS.from_user_input(declared)
    if found.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return "EPSG:4326"
    epsg = found.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else found


def choose_crs(declared: Any, given: str | None, override: bool = False,
               default: str | None = None, option: str = "--crs") -> CrsChoice:
    """Apply the rule above. ``declared``: the file's CRS (anything pyproj reads) or None;
    ``given``: the caller's (a :func:`spatial.crs.normalise_crs` name); ``default``: what a
    file that cannot declare one is read in (a CSV: WGS 84). Raises ValidationError."""
    have = declared_name(declared)
    have_text = have if isinstance(have, str) or have is None else have.to_string()
    if given is None or given == "":
        if have is not None:
            return CrsChoice(have, f"CRS {have_text}, as the file declares")
        if default is not None:
            return CrsChoice(crs_mod.normalise_crs(default),
                             f"CRS {crs_mod.normalise_crs(default)} assumed: the file declares "
                             f"none (give {option} if it is another)")
        raise ValidationError(
            f"the file declares no coordinate reference system (a Shapefile without .prj?); "
            f"give it with {option}, e.g. {option} EPSG:4326, {option} EPSG:4549 or "
            f"{option} GCJ-02", field="crs")
    wanted = crs_mod.normalise_crs(given)
    if have is None:
        return CrsChoice(wanted, f"CRS {wanted}, given with {option} (the file declares none)")
    if have == wanted:
        return CrsChoice(wanted, f"CRS {wanted}, as the file declares and {option} says")
    if not override:
        hint = (" (GCJ-02 data is often labelled WGS 84: if so, add --override-crs)"
                if wanted in (crs_mod.GCJ02, crs_mod.BD09) and have in _WGS84_LIKE else "")
        raise ValidationError(
            f"the file declares {have_text} but {option} {given} was given{hint}; drop "
            f"{option} to use the file's CRS, or add --override-crs if the file's "
            "declaration is wrong", field="crs", declared=have_text, given=wanted)
    return CrsChoice(wanted, f"CRS {wanted}, given with {option} --override-crs instead of "
                             f"the {have_text} the file declares")


def parse_given(given: str | None) -> str | None:
    """A caller's CRS as a :mod:`spatial.crs` name (ValidationError when unknown); also
    reads what pyproj reads (``+proj=…``, WKT, ``OGC:CRS84``) when it has an EPSG code."""
    if given is None or given == "":
        return None
    try:
        return crs_mod.normalise_crs(given)
    except ValidationError:
        try:
            epsg = CRS.from_user_input(given).to_epsg()
        except CRSError:
            epsg = None
        if epsg is None:
            raise
        return f"EPSG:{epsg}"


def _pyproj(source: str | CRS) -> CRS | None:
    if isinstance(source, CRS):
        return source
    if source.startswith("EPSG:"):
        return CRS.from_epsg(int(source.split(":")[1]))
    return None  # GCJ-02, BD-09: the China box of spatial.crs


def check_area_of_use(x: NDArray[np.float64], y: NDArray[np.float64],
                      source: str | CRS) -> None:
    """Refuse coordinates that cannot be in ``source``: non-finite ones, metres or feet
    under a geographic CRS, and points far outside a projected CRS's area of use. The
    ValidationError names the first such coordinate (``index``) and how many there are."""
    finite = np.isfinite(x) & np.isfinite(y)  # the loaders report the others by row
    if not finite.all():
        keep = np.flatnonzero(finite)
        x, y = x[keep], y[keep]
    else:
        keep = None
    if not len(x):
        return
    try:
        _check(x, y, source)
    except ValidationError as exc:
        if keep is not None and "index" in exc.details:
            exc.details["index"] = int(keep[exc.details["index"]])
        raise


def _check(x: NDArray[np.float64], y: NDArray[np.float64], source: str | CRS) -> None:
    proj = _pyproj(source)
    name = source if isinstance(source, str) else source.to_string()
    if proj is None or proj.is_geographic:
        bad = (np.abs(x) > 180.0) | (np.abs(y) > 90.0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValidationError(
                f"these coordinates look like metres/feet, not degrees; is the CRS right? "
                f"{int(bad.sum())} coordinate(s) are beyond ±180°/±90° under {name} "
                f"(first: {x[i]:.10g}, {y[i]:.10g})", field="crs", index=i,
                count=int(bad.sum()), crs=name,
                hint="give the file's projected CRS, e.g. --crs EPSG:2227 or EPSG:4549")
        return
    area = proj.area_of_use
    lon, lat = Transformer.from_crs(proj, "EPSG:4326", always_xy=True).transform(x, y)
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    degrees = (np.abs(x) <= 180.0) & (np.abs(y) <= 90.0)
    failed = ~(np.isfinite(lon) & np.isfinite(lat))
    if area is not None:
        mx = max(_MARGIN_DEG, _MARGIN_SHARE * ((area.east - area.west) % 360 or 360))
        my = max(_MARGIN_DEG, _MARGIN_SHARE * (area.north - area.south))
        wrapped = area.west > area.east  # an area across the antimeridian: latitudes only
        out = (lat < area.south - my) | (lat > area.north + my)
        if not wrapped:
            out |= (lon < area.west - mx) | (lon > area.east + mx)
        failed |= out
    if not failed.any():
        return
    i = int(np.flatnonzero(failed)[0])
    where = (f"{proj.name}: {_short(area.name)} ({area.west:g}, {area.south:g}, {area.east:g}, "
             f"{area.north:g})" if area is not None else proj.name)
    if degrees[failed].all():
        reason = "these coordinates look like degrees, not metres/feet; is the CRS right?"
    else:
        reason = "these coordinates lie outside the area of use of the CRS; is the CRS right?"
    raise ValidationError(
        f"{reason} {int(failed.sum())} coordinate(s) fall outside {name} ({where}); first: "
        f"{x[i]:.10g}, {y[i]:.10g}", field="crs", index=i, count=int(failed.sum()), crs=name)


def vertex_rows(geoms: NDArray[np.object_]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Every vertex (x, y) of the geometries and the index of the geometry it belongs to."""
    coords, rows = shapely.get_coordinates(geoms, return_index=True)
    return np.asarray(coords, dtype=np.float64), np.asarray(rows, dtype=np.int64)


def geometries_to_wgs84(geoms: NDArray[np.object_], source: str | CRS
                        ) -> NDArray[np.object_]:
    """The geometries with every vertex converted from ``source`` to WGS 84 (2D)."""
    if isinstance(source, str) and source in ("EPSG:4326", "EPSG:4490"):
        return geoms
    if isinstance(source, CRS):
        move = Transformer.from_crs(source, "EPSG:4326", always_xy=True)

        def convert(xy: NDArray[np.float64]) -> NDArray[np.float64]:
            lon, lat = move.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([lon, lat])
    else:
        def convert(xy: NDArray[np.float64]) -> NDArray[np.float64]:
            lon, lat = crs_mod.to_wgs84_many(xy[:, 0], xy[:, 1], source, validate=False)
            return np.column_stack([lon, lat])
    moved: NDArray[np.object_] = shapely.transform(geoms, convert)
    return moved


def _short(text: str, most: int = 90) -> str:
    return text if len(text) <= most else text[:most - 1].rstrip() + "…"
