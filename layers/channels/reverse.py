"""Reverse geocoding (逆地理编码): the nearest address of the address layer to each point, within
a distance — what an Open311 request reported by a point alone shows as its address_string
(flagged as derived: the reporter gave no address)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text

# a few nearest by the index (degrees), then the nearest in metres among them: a degree of
# longitude is shorter than one of latitude away from the equator
_NEAREST = """
SELECT p.id, a.label, a.d
FROM unnest(CAST(:ids AS bigint[]), CAST(:lons AS float8[]), CAST(:lats AS float8[]))
    AS p(id, lon, lat)
CROSS JOIN LATERAL (
    SELECT n.label, ST_Distance(n.geom::geography,
                                ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography) AS d
    FROM (SELECT label, geom FROM address
          ORDER BY geom <-> ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326) LIMIT 5) n
    ORDER BY d, n.label LIMIT 1) a
WHERE a.d <= :within
"""


def nearest_addresses(conn: Connection, points: Sequence[tuple[int, float, float]],
                      within_m: float) -> dict[int, tuple[str, float]]:
    """key → (address label, distance in metres) for each (key, lon, lat) with an address
    within ``within_m`` metres."""
    if not points or within_m <= 0:
        return {}
    rows = conn.execute(text(_NEAREST), {
        "ids": [p[0] for p in points], "lons": [p[1] for p in points],
        "lats": [p[2] for p in points], "within": within_m})
    return {int(r[0]): (str(r[1]), float(r[2])) for r in rows}
