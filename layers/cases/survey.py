"""What case intake reads before it writes, for a group of reports in ONE statement: the layer
versions the in-memory grid snapshot must match, and per report the city part it links to, the
open cases nearby that may be the same problem (重复事件 candidates) and the id its case will
have (reserved from the table's sequence, so that reports filed meanwhile can name it before it
is written: ``layers.cases.unwritten``).

One statement for the group rather than one per report: each statement has fixed costs on both
sides (a round trip, the executor's start-up, a snapshot) that a group shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection

from gridcore.resolution import LinkedPart
from gridcore.taxonomy import default_taxonomy
from layers.cases.resolving import Resolves
from layers.db.prepared import Prepared
from layers.grids.index import LAYERS as INDEX_LAYERS
from layers.grids.resolver import PART_LINK_LATERAL
from layers.schema.cases import OPEN_SQL
from spatial.measure import degree_box

# The nearest part of the report's class (the resolver's part link) and the open cases around
# the point within the class's duplicate radius (the linked part counts as a match whatever the
# distance class), for every report of the group.
_SURVEY = Prepared("gridcore_case_survey_many", f"""
WITH q AS MATERIALIZED (
    SELECT q.*, ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326) AS pt
    FROM jsonb_to_recordset(CAST(:queries AS jsonb)) AS q (
        i int, lon float8, lat float8, part_class text, part_m float8, part_deg float8,
        since timestamptz, dx float8, dy float8, radius float8, major text)
)
SELECT q.i, nextval('case_record_id_seq') AS id, row_to_json(lp)::text AS part,
       nb.nearby::text AS nearby
FROM q
LEFT JOIN LATERAL ({PART_LINK_LATERAL}) lp ON true
LEFT JOIN LATERAL (
    SELECT json_agg(n) AS nearby FROM (
        SELECT * FROM (
            SELECT id, category_key, description, part_code,
                   extract(epoch FROM created_at) AS at,
                   ST_Distance(geom::geography, q.pt::geography) AS d
            FROM case_record
            WHERE {OPEN_SQL} AND created_at >= q.since
              AND geom && ST_Expand(q.pt, q.dx, q.dy)
              AND (left(category_key, 3) = q.major OR part_code = lp.code)
            OFFSET 0  -- not flattened: the distance is worked out once, not again in the WHERE
        ) around
        WHERE d <= q.radius  -- the box's corners lie outside the circle
        ORDER BY d
        LIMIT 200
    ) n
) nb ON true
UNION ALL  -- one more row (i = -1): the versions of the layers the grid snapshot is built from
SELECT -1, NULL, NULL, (SELECT json_object_agg(layer, version) FROM layer_version
                  WHERE layer = ANY(:layers))::text
""")


@dataclass(frozen=True)
class Surroundings:
    """One report's part link, nearby open cases (raw rows for the duplicate ranking) and the
    id reserved for its case."""

    part: LinkedPart | None
    nearby: list[dict[str, Any]]
    case_id: int


def survey_many(conn: Connection, resolver: Resolves,
                points: Sequence[tuple[float, float, str]], now: datetime, window: timedelta
                ) -> tuple[dict[str, int], list[Surroundings]]:
    """(layer versions, the surroundings of each (WGS 84 lon, lat, report class)) for reports
    that passed validation."""
    if not points:
        return {}, []
    queries = []
    for i, (lon, lat, category) in enumerate(points):
        radius = default_taxonomy().get(category).dedup_radius_m
        queries.append({
            **resolver.part_link_params(lon, lat, category), "i": i,
            "since": now - window, "radius": radius, "major": category[:3],
            **degree_box(lat, radius)})
    rows = _SURVEY.rows(conn, {"queries": orjson.dumps(queries, default=str).decode(),
                               "layers": list(INDEX_LAYERS)})
    found: dict[int, Surroundings] = {}
    versions: dict[str, int] = {}
    for row in rows:  # JSON as text, read by orjson (psycopg2 would use the stdlib's json)
        if row["i"] < 0:
            versions = orjson.loads(row["nearby"] or "{}")
            continue
        p = row["part"] and orjson.loads(row["part"])
        part = p and LinkedPart(p["code"], p["class_code"], round(float(p["d"]), 2),
                                p["maintenance_dept"], p["owner_dept"])
        found[row["i"]] = Surroundings(part, orjson.loads(row["nearby"] or "[]"), row["id"])
    return versions, [found[i] for i in range(len(points))]
