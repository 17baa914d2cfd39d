"""Which resolver case intake uses, and a plain-SQL stand-in.

The system's resolver is ``layers.resolver.Resolver`` (in-memory locator + dispatch rules
engine, owned by the resolve work). Intake only needs something that turns (lon, lat, crs,
category) into a :class:`gridcore.resolution.Resolution`; :func:`make_resolver` returns the real
one when it is installed and otherwise :class:`SqlResolver`, a deliberately small PostGIS-only
stand-in (point in current grid, areas by code prefix, the most specific dispatch rule, the
nearest city part of the class within 30 m overriding with its maintenance unit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import h3
from sqlalchemy import Engine, text

from gridcore.errors import ValidationError
from gridcore.resolution import AreaRef, GridHit, LinkedPart, Resolution, ResponsibleParty

PART_LINK_RADIUS_M = 30.0
_LEVELS = ("grid", "community", "street", "district", "city")


class Resolves(Protocol):
    def resolve(self, lon: float, lat: float, crs: str = "EPSG:4326",
                category: str | None = None) -> Resolution: ...


def make_resolver(engine: Engine, settings: Any = None) -> Resolves:
    try:
        from layers.resolver import Resolver  # type: ignore[import-not-found]
    except ImportError:
        return SqlResolver(engine)
    return Resolver(engine, settings) if settings is not None else Resolver(engine)


_GRID_SQL = text("""
SELECT g.id, g.code, g.worker_codes, c.code AS c_code, c.name AS c_name,
       s.code AS s_code, s.name AS s_name, d.code AS d_code, d.name AS d_name
FROM unit_grid g
LEFT JOIN admin_area c ON c.code = g.community_code
LEFT JOIN admin_area s ON s.code = left(g.community_code, 9)
LEFT JOIN admin_area d ON d.code = left(g.community_code, 6)
WHERE g.gen_to IS NULL AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
ORDER BY g.id LIMIT 1
""")

_PART_SQL = text("""
SELECT code, class_code, maintenance_dept, owner_dept,
       ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS d
FROM city_part
WHERE class_code = :cls AND ST_DWithin(geom::geography,
      ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :r)
ORDER BY d LIMIT 1
""")

_RULES_SQL = text("""
SELECT r.id, r.area_level, r.area_code, r.department_code, dep.name
FROM dispatch_rule r JOIN department dep ON dep.code = r.department_code
WHERE r.category_key = :cat AND NOT (r.department_code = ANY(:exclude))
""")


def propose(conn: Any, category: str, codes: dict[str, str | None],
            exclude: Sequence[str] = ()) -> ResponsibleParty:
    """The most specific dispatch rule (grid > community > street > district > city) for the
    category at these area codes, skipping departments in ``exclude`` (those that sent the
    case back)."""
    rows = conn.execute(_RULES_SQL, {"cat": category, "exclude": list(exclude)}).all()
    for level in _LEVELS:
        for r in rows:
            if r.area_level == level and (level == "city" or r.area_code == codes.get(level)):
                where = "the whole city" if level == "city" else f"{level} {r.area_code}"
                return ResponsibleParty(r.department_code, r.name,
                                        f"dispatch rule #{r.id}: {category} in {where} → "
                                        f"{r.department_code}")
    skipped = f" (excluding {', '.join(exclude)})" if exclude else ""
    return ResponsibleParty(None, None, f"no dispatch rule for {category} here{skipped}")


class SqlResolver:
    """PostGIS-only resolution; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def resolve(self, lon: float, lat: float, crs: str = "EPSG:4326",
                category: str | None = None) -> Resolution:
        if crs.upper() not in ("EPSG:4326", "EPSG:4490", "WGS84", "CGCS2000"):
            raise ValidationError(f"coordinate system {crs!r} is not supported here; "
                                  "send WGS 84 (EPSG:4326) or CGCS2000", field="crs", value=crs)
        cell = h3.latlng_to_cell(lat, lon, 10)
        with self.engine.connect() as conn:
            g = conn.execute(_GRID_SQL, {"lon": lon, "lat": lat}).first()
            if g is None:
                return Resolution(lon, lat, False, None, None, None, None, cell, None, None,
                                  "the point lies in no current unit grid")
            part = None
            if category and category.startswith("P"):
                p = conn.execute(_PART_SQL, {"lon": lon, "lat": lat, "cls": category[1:],
                                             "r": PART_LINK_RADIUS_M}).first()
                if p is not None:
                    part = LinkedPart(p.code, p.class_code, float(p.d), p.maintenance_dept,
                                      p.owner_dept)
            responsible = None
            if category:
                codes = {"grid": g.code, "community": g.c_code, "street": g.s_code,
                         "district": g.d_code}
                responsible = propose(conn, category, codes)
                owner = part and (part.maintenance_dept or part.owner_dept)
                if owner:
                    name = conn.execute(text("SELECT name FROM department WHERE code = :c"),
                                        {"c": owner}).scalar()
                    responsible = ResponsibleParty(
                        owner, name, f"city part {part.code} is maintained by {owner} "
                        f"(owner override of: {responsible.rule})")
            return Resolution(
                lon, lat, True, GridHit(int(g.id), g.code),
                AreaRef(g.c_code, g.c_name) if g.c_code else None,
                AreaRef(g.s_code, g.s_name) if g.s_code else None,
                AreaRef(g.d_code, g.d_name) if g.d_code else None,
                cell, responsible, part, f"inside grid {g.code}")
