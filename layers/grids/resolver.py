"""Resolve a location to its grid and responsible party (定位与责任主体).

``Resolver.resolve(lon, lat, crs, category)`` → :class:`gridcore.resolution.Resolution`:
datum conversion (``spatial.crs``) → the in-memory locator (exact, = ``ST_Covers``) → the
community / street / district from the grid's code → the grid workers → the nearest city part
of the report's class within ``part_link_m`` (one KNN query on the part layer's GiST index) →
the department from the dispatch rules (the part's unit overrides) with the reason.

Grid, hierarchy and rules are answered from memory (:class:`layers.grids.index.GridIndex`,
refreshed when ``layer_version`` changes); only the part link touches the database.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Collection, Mapping, Sequence
from typing import cast

import numpy as np
from sqlalchemy import Connection, Engine, text

from gridcore.dispatch import AreaPath, PartUnits, Proposal
from gridcore.errors import OutsideManagedArea, ValidationError
from gridcore.resolution import AreaRef, GridHit, LinkedPart, Resolution, ResponsibleParty
from gridcore.settings import ResolveSettings
from layers.db.prepared import Prepared
from layers.grids.index import GridIndex, IndexSnapshot, shared_index
from spatial import crs as crs_mod
from spatial import h3cells
from spatial.measure import degree_box

# The nearest city part of a class within a distance of a point: a lateral subquery over a row
# ``q`` (columns ``pt`` the point, ``part_class``, ``part_m`` the distance, ``part_deg`` the
# same in degrees for the index), shared by the single and batch part links and by case
# intake's survey (``layers.cases.survey``). The bounding-box candidates are fenced off
# (OFFSET 0) so that only the GiST index is used: with the class as a parameter of a prepared
# statement, the generic plan ANDed in the class index's bitmap (a quarter of all parts for a
# common class), several times slower (benchmarks/README.md, "Design figures").
PART_LINK_LATERAL = """
    SELECT code, class_code, maintenance_dept, owner_dept,
           ST_Distance(geom::geography, q.pt::geography) AS d
    FROM (SELECT code, class_code, maintenance_dept, owner_dept, geom FROM city_part
          WHERE q.part_class <> '' AND geom && ST_Expand(q.pt, q.part_deg) OFFSET 0) near
    WHERE class_code = q.part_class AND ST_DWithin(geom::geography, q.pt::geography, q.part_m)
    ORDER BY d, code
    LIMIT 1"""
_PART_SQL = Prepared("gridcore_part_link", f"""
SELECT lp.* FROM (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS pt,
                         CAST(:part_class AS text) AS part_class,
                         CAST(:part_m AS float8) AS part_m,
                         CAST(:part_deg AS float8) AS part_deg) q
CROSS JOIN LATERAL ({PART_LINK_LATERAL}) lp
""")
_PARTS_SQL = text(f"""
SELECT q.i, lp.* FROM (
    SELECT i, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS pt, cls AS part_class,
           CAST(:r AS float8) AS part_m,
           :r / (111000.0 * greatest(cos(radians(lat)), 0.01)) AS part_deg
    FROM unnest(CAST(:i AS int[]), CAST(:lon AS float8[]), CAST(:lat AS float8[]),
                CAST(:cls AS text[])) AS u (i, lon, lat, cls)) q
CROSS JOIN LATERAL ({PART_LINK_LATERAL}) lp
""")
_UNSET: object = object()


def part_class_of(category: str | None) -> str | None:
    """'P0101' → '0101' (a city-part class); events and None link no part."""
    if category and len(category) == 5 and category[0] == "P":
        return category[1:]
    return None


class Resolver:
    """``settings``: the tree's ``resolve`` section (its defaults when not given);
    ``h3_resolution``: the tree's one H3 resolution (``GRIDCORE_H3_RESOLUTION``)."""

    def __init__(self, engine: Engine, settings: ResolveSettings | None = None,
                 h3_resolution: int = h3cells.DEFAULT_RESOLUTION) -> None:
        self.engine = engine
        self.settings = settings if settings is not None else ResolveSettings()
        self.h3_resolution = h3_resolution
        self.index: GridIndex = shared_index(engine, snap_m=self.settings.snap_m,
                                             check_interval_s=self.settings.check_interval_s)

    def close(self) -> None:
        """Release the index's version-polling connection (the engine stays the caller's)."""
        self.index.close()

    def warm(self) -> None:
        """Build the grid snapshot now, not on the first point: a server calls this as it
        starts, so that no report pays the build (a noticeable pause on a big city)."""
        with self.engine.connect() as conn:
            self.index.current(conn)

    # -- single ----------------------------------------------------------------------------------
    def resolve(self, lon: float, lat: float, crs: str = "EPSG:4326",
                category: str | None = None, exclude: Collection[str] = (),
                conn: Connection | None = None, *, versions: Mapping[str, int] | None = None,
                part: LinkedPart | None | object = _UNSET) -> Resolution:
        """One point. Raises ValidationError (bad coordinates / CRS / category) and
        OutsideManagedArea (farther than ``far_m`` from every grid).

        ``versions`` (layer → version) and ``part`` (the linked part, or None) are what a
        caller already read in its own statement (case intake reads them together with the
        nearby cases, :data:`PART_LINK_LATERAL`); then resolve asks the database nothing."""
        self._check_category(category)
        wlon, wlat = crs_mod.to_wgs84(lon, lat, crs)
        snap = self.index.current(conn, versions=versions)
        self._check_known(category, snap)
        idx, snapped, dist = snap.locator.locate(wlon, wlat)
        near = idx
        if idx < 0:
            near, dist = snap.locator.nearest(wlon, wlat)
            self._check_far(near, dist, snap, wlon, wlat, crs)
        linked = (self._link_parts([(0, wlon, wlat, category)], conn).get(0)
                  if part is _UNSET else cast(LinkedPart | None, part))
        return self._assemble(snap, wlon, wlat, idx, near, snapped, dist, category,
                              linked, exclude, h3cells.cell(wlon, wlat,
                                                            self.h3_resolution))

    def part_link_params(self, lon: float, lat: float, category: str | None
                         ) -> dict[str, object]:
        """Parameters of :data:`PART_LINK_LATERAL` for one WGS 84 point and report class
        (an event class, or linking switched off, links no part)."""
        cls = (part_class_of(category) or "") if self.settings.part_link_m > 0 else ""
        radius = self.settings.part_link_m if cls else 0.0
        box = degree_box(lat, radius)  # PART_LINK_LATERAL's box is square: the wider side
        return {"lon": float(lon), "lat": float(lat), "part_class": cls, "part_m": radius,
                "part_deg": max(box["dx"], box["dy"])}

    # -- batch -----------------------------------------------------------------------------------
    def resolve_many(self, lon: Sequence[float] | np.ndarray, lat: Sequence[float] | np.ndarray,
                     crs: str = "EPSG:4326",
                     category: str | Sequence[str | None] | None = None) -> list[Resolution]:
        """Many points at once; a point far outside the managed area does not fail the batch:
        its result has ``inside=False`` and says why (``extras['far']``)."""
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
        cats = ([category] * len(x) if category is None or isinstance(category, str)
                else list(category))
        if len(cats) != len(x):
            raise ValidationError("one category per point, or one for all", field="category")
        for c in set(cats):
            self._check_category(c)
        wlon, wlat = crs_mod.to_wgs84_many(x, y, crs)
        snap = self.index.current()
        for c in set(cats):
            self._check_known(c, snap)
        found = snap.locator.locate_many(wlon, wlat)
        cells = h3cells.cells(wlon, wlat, self.h3_resolution)
        links = self._link_parts([(i, wlon[i], wlat[i], cats[i]) for i in range(len(x))])
        out = []
        for i in range(len(x)):
            out.append(self._assemble(
                snap, float(wlon[i]), float(wlat[i]), int(found.index[i]),
                int(found.nearest[i]), bool(found.snapped[i]), float(found.distance_m[i]),
                cats[i], links.get(i), (), str(cells[i])))
        return out

    def propose(self, resolution: Resolution, category: str | None,
                exclude: Collection[str] = ()) -> ResponsibleParty:
        """Re-propose a department (e.g. after a send-back 退单) without those in
        ``exclude``, from an earlier resolution."""
        snap = self.index.current()
        where = (AreaPath.of_grid(resolution.grid.grid_code) if resolution.grid
                 else AreaPath())
        part = resolution.linked_part
        units = PartUnits(part.code, part.maintenance_dept, part.owner_dept) if part else None
        workers = resolution.responsible.worker_codes if resolution.responsible else ()
        return _party(snap.rules.propose(category, where, units, exclude), workers)

    # -- helpers ---------------------------------------------------------------------------------
    def _check_category(self, category: str | None) -> None:
        if category is not None and (len(category) != 5 or category[0] not in "PE"
                                     or not category[1:].isdigit()):
            raise ValidationError(f"category {category!r} is not a class key like P0101 "
                                  "(city part) or E0103 (event)", field="category",
                                  value=category)

    @staticmethod
    def _check_known(category: str | None, snap: IndexSnapshot) -> None:
        if category is not None and snap.categories and category not in snap.categories:
            raise ValidationError(f"unknown class {category!r}: not in the taxonomy "
                                  "(see GET /open311/v2/services or gridcore/data/*.csv)",
                                  field="category", value=category)

    def _check_far(self, near: int, dist: float, snap: IndexSnapshot, lon: float, lat: float,
                   crs: str) -> None:
        if near < 0:
            raise OutsideManagedArea("there are no current unit grids to resolve against",
                                     lon=lon, lat=lat)
        if dist > self.settings.far_m:
            raise OutsideManagedArea(
                f"point ({lon:.6f}, {lat:.6f}) in {crs_mod.normalise_crs(crs)} lies "
                f"{dist / 1000:,.1f} km from the nearest grid {snap.codes[near]} — far outside "
                "the managed area: wrong datum or swapped axes?",
                lon=lon, lat=lat, crs=crs_mod.normalise_crs(crs),
                nearest_grid=str(snap.codes[near]), distance_m=round(dist, 1),
                hint="wrong datum or swapped axes?")

    def _link_parts(self, points: list[tuple[int, float, float, str | None]],
                    conn: Connection | None = None) -> dict[int, LinkedPart]:
        todo = [(i, x, y, c) for i, x, y, c in points if part_class_of(c)]
        if not todo or self.settings.part_link_m <= 0:
            return {}
        with contextlib.ExitStack() as stack:
            conn = conn or stack.enter_context(self.engine.connect())
            if len(todo) == 1:  # one point: the prepared statement, planned once
                i, x, y, category = todo[0]
                one = _PART_SQL.execute(conn, self.part_link_params(x, y, category)).first()
                return {} if one is None else {i: LinkedPart(
                    one.code, one.class_code, round(float(one.d), 2), one.maintenance_dept,
                    one.owner_dept)}
            rows = conn.execute(_PARTS_SQL, {
                "i": [t[0] for t in todo], "lon": [float(t[1]) for t in todo],
                "lat": [float(t[2]) for t in todo], "cls": [part_class_of(t[3]) for t in todo],
                "r": self.settings.part_link_m}).all()
        return {r.i: LinkedPart(r.code, r.class_code, round(float(r.d), 2), r.maintenance_dept,
                                r.owner_dept) for r in rows}

    def _assemble(self, snap: IndexSnapshot, lon: float, lat: float, idx: int, near: int,
                  snapped: bool, dist: float, category: str | None,
                  part: LinkedPart | None, exclude: Collection[str], cell: str) -> Resolution:
        units = PartUnits(part.code, part.maintenance_dept, part.owner_dept) if part else None
        extras: dict[str, object] = {}
        if idx >= 0:
            code = str(snap.codes[idx])
            hit = GridHit(int(snap.grid_ids[idx]), code, snapped, round(dist, 2))
            community = str(snap.community[idx])
            where = AreaPath.of_grid(code, community)
            workers = snap.workers[idx]
            reason = (f"{dist:.1f} m outside the grids, within the {snap.locator.snap_m:g} m "
                      f"snap tolerance: snapped to the nearest grid {code}" if snapped
                      else f"inside unit grid {code}")
            nearest = None
        else:
            hit, where, workers, community = None, AreaPath(), (), None
            nearest = None
            if near >= 0 and math.isfinite(dist):
                nearest = GridHit(int(snap.grid_ids[near]), str(snap.codes[near]), False,
                                  round(dist, 2))
            far = dist > self.settings.far_m
            extras["far"] = far
            reason = (f"outside the managed area: {dist:,.1f} m from the nearest grid "
                      f"{nearest.grid_code if nearest else '-'} (snap tolerance "
                      f"{snap.locator.snap_m:g} m)"
                      + (" — wrong datum or swapped axes?" if far else ""))
        proposal = snap.rules.propose(category, where, units, exclude)
        if part is not None:
            reason += f"; linked city part {part.code} at {part.distance_m:.1f} m"
        if proposal.rule is not None:
            extras["rule_id"] = proposal.rule.id
        extras["dispatch_source"] = proposal.source
        return Resolution(
            lon=lon, lat=lat, inside=idx >= 0 and not snapped, grid=hit,
            community=self._area(snap, where.community), street=self._area(snap, where.street),
            district=self._area(snap, where.district), h3=cell,
            responsible=_party(proposal, workers), linked_part=part, reason=reason,
            nearest_grid=nearest, grid_version=snap.grid_version, extras=extras)

    @staticmethod
    def _area(snap: IndexSnapshot, code: str | None) -> AreaRef | None:
        if code is None:
            return None
        level_name = snap.areas.get(code)
        return AreaRef(code, level_name[1] if level_name else "")


def _party(proposal: Proposal, workers: Sequence[str]) -> ResponsibleParty:
    return ResponsibleParty(proposal.department_code, proposal.department_name, proposal.reason,
                            tuple(workers), proposal.source,
                            proposal.rule.id if proposal.rule is not None else None)
