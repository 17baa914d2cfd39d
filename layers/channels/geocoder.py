"""Geocoding (地址解析) in PostGIS: a query → ranked places with a confidence.

The query is read by the domain (``gridcore.geocoding.parse``: an intersection, a street with
a house number, free text); each reading is looked up here and every candidate is scored by
``gridcore.geocoding.rank``:

* **streets** — ``street`` rows whose key is trigram-similar to the asked name (``%``), holds it
  as a word (``%>``: partial input) or is held in it, or shares Chinese character bigrams;
* **addresses** on those streets — the asked house number, the same number with another letter,
  a range holding it, else the nearest number (one stand-in per street);
* **named places** — ``address`` rows found by name or alias (trigrams), by every word of the
  query in any order (full text, ``simple`` configuration: recall for long names whose
  trigram similarity stays under the threshold), or by Chinese bigrams; scored by trigrams;
* **a street alone** — a point on the street's line nearest its middle (or the address of the
  street nearest the middle of its addresses);
* **intersections** — where the lines of the two best-matching streets meet (or come within
  :data:`CROSSING_GAP_M` of each other).

No external service: ``pg_trgm`` and full-text search only. Each candidate carries the grid the
resolver finds for its point now (the grids may have been redrawn since the import).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridcore.errors import GridcoreError
from gridcore.geocoding import (
    AddressQuery,
    Candidate,
    Street,
    TextMatch,
    cjk_grams,
    number_agreement,
    parse,
    rank,
)
from gridcore.geocoding.scoring import number_base
from layers.cases.resolving import Resolves

STREETS_PER_NAME = 6
PLACES = 30
CROSSING_GAP_M = 15.0
SIMILARITY_THRESHOLD = 0.3
WORD_THRESHOLD = 0.5

_THRESHOLDS = text("SELECT set_config('pg_trgm.similarity_threshold', :s, true), "
                   "set_config('pg_trgm.word_similarity_threshold', :w, true)")
_STREETS = text("""
SELECT s.name, s.street_key, s.canonical_key, s.geom IS NOT NULL AS has_line,
       similarity(s.street_key, :k) AS sim, word_similarity(:k, s.street_key) AS q_in,
       word_similarity(s.street_key, :k) AS n_in
FROM street s
WHERE s.street_key % :k OR s.street_key %> :k OR s.street_key <% :k
   OR (cardinality(CAST(:g AS text[])) > 0 AND s.cjk && CAST(:g AS text[]))
ORDER BY greatest(similarity(s.street_key, :k), word_similarity(:k, s.street_key),
                  word_similarity(s.street_key, :k)) DESC, s.name
LIMIT 40
""")
# Per street: the asked number first, then the nearest numbers.
_NUMBERS = text("""
SELECT k.key AS asked_street, a.id, a.label, a.street, a.housenumber, a.number_key, a.name,
       ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat
FROM unnest(CAST(:keys AS text[])) AS k (key)
CROSS JOIN LATERAL (
    SELECT * FROM address a
    WHERE a.kind = 'address' AND a.street_key = k.key
    ORDER BY a.number_key = :n DESC,
             abs(coalesce(CAST(substring(a.number_key FROM '^[0-9]{1,9}') AS bigint), 1e12)
                 - :base), a.number_key, a.id
    LIMIT 4
) a
""")
_PLACES = text("""
SELECT a.id, a.kind, a.label, a.name, a.name_key, a.street, a.housenumber,
       ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat,
       similarity(a.name_key, :k) AS sim, word_similarity(:k, a.name_key) AS q_in,
       word_similarity(a.name_key, :k) AS n_in, al.*

FROM address a
LEFT JOIN LATERAL (  -- the alias that matches best, measured the same way
    SELECT x AS alias_key, similarity(x, :k) AS a_sim, word_similarity(:k, x) AS a_q_in,
           word_similarity(x, :k) AS a_n_in, a.aliases[i] AS alias
    FROM unnest(a.alias_keys) WITH ORDINALITY AS u (x, i)
    ORDER BY greatest(similarity(x, :k), word_similarity(:k, x)) DESC LIMIT 1
) al ON true
WHERE a.name_key <> ''
  AND (a.name_key % :k OR a.name_key %> :k OR a.alias_key %> :k
       OR a.tsv @@ plainto_tsquery('simple', :k)
       OR (cardinality(CAST(:g AS text[])) > 0 AND a.cjk && CAST(:g AS text[])))
ORDER BY greatest(similarity(a.name_key, :k), word_similarity(:k, a.name_key),
                  word_similarity(:k, a.alias_key)) DESC, a.id
LIMIT :limit
""")
# A point of each street near its middle: on its line, else the address nearest its addresses'
# centre.
_STREET_POINTS = text("""
SELECT s.canonical_key AS key, ST_X(p) AS lon, ST_Y(p) AS lat
FROM street s
CROSS JOIN LATERAL (
    SELECT coalesce(
        ST_ClosestPoint(s.geom, ST_Centroid(s.geom)),
        (SELECT a.geom FROM address a WHERE a.street_key = s.canonical_key
         ORDER BY a.geom <-> (SELECT ST_Centroid(ST_Collect(b.geom)) FROM address b
                              WHERE b.street_key = s.canonical_key) LIMIT 1)) AS p
) pt
WHERE s.street_key = ANY(CAST(:keys AS text[])) AND pt.p IS NOT NULL
""")
_CROSSINGS = text("""
SELECT a.street_key AS a_key, b.street_key AS b_key,
       ST_Intersects(a.geom, b.geom) AS touching,
       ST_AsBinary(CASE WHEN ST_Intersects(a.geom, b.geom)
                        THEN ST_Intersection(a.geom, b.geom)
                        ELSE ST_LineInterpolatePoint(ST_ShortestLine(a.geom, b.geom), 0.5)
                   END) AS wkb
FROM street a, street b
WHERE a.street_key = ANY(CAST(:a AS text[])) AND b.street_key = ANY(CAST(:b AS text[]))
  AND a.geom IS NOT NULL AND b.geom IS NOT NULL AND a.canonical_key <> b.canonical_key
  AND ST_DWithin(a.geom::geography, b.geom::geography, :gap)
""")


@dataclass(frozen=True)
class StreetHit:
    name: str
    key: str
    canonical: str
    has_line: bool
    score: float


class Geocoder:
    """Geocodes against ``engine``'s address layer; ``resolver`` places each candidate in its
    grid (optional: without it candidates carry no grid)."""

    def __init__(self, engine: Engine, resolver: Resolves | None = None) -> None:
        self.engine = engine
        self.resolver = resolver

    def geocode(self, q: str, limit: int = 10, conn: Connection | None = None
                ) -> dict[str, Any]:
        """``{"query": how it was read, "candidates": [...]}`` best first."""
        query = parse(q)
        if conn is None:
            with self.engine.begin() as own:
                found = self._candidates(own, query)
        else:
            found = self._candidates(conn, query)
        ranked = rank(found, limit)
        return {"query": query.as_dict(),
                "candidates": [self._placed(c.as_dict()) for c in ranked]}

    def best(self, q: str, conn: Connection | None = None) -> dict[str, Any] | None:
        """The best candidate of ``q`` (with its grid), or None."""
        found = self.geocode(q, 1, conn)["candidates"]
        return found[0] if found else None

    # -- look-ups --------------------------------------------------------------------------
    def _candidates(self, conn: Connection, query: AddressQuery) -> list[Candidate]:
        conn.execute(_THRESHOLDS, {"s": str(SIMILARITY_THRESHOLD), "w": str(WORD_THRESHOLD)})
        out: list[Candidate] = []
        if query.street is not None:
            streets = self._streets(conn, query.street)
            out += self._numbers(conn, query, streets)
        out += self._places(conn, query.text)
        text_streets = self._streets(conn, query.text)
        out += self._street_points(conn, text_streets)
        if query.crossing is not None:
            a, b = (self._streets(conn, s) for s in query.crossing)
            out += self._crossings(conn, a, b)
        return out

    def _streets(self, conn: Connection, asked: Street) -> list[StreetHit]:
        """The streets whose name matches ``asked``, one per canonical street, best first."""
        if not asked.key:
            return []
        rows = conn.execute(_STREETS, {"k": asked.key, "g": list(asked.grams)}).mappings()
        best: dict[str, StreetHit] = {}
        for r in rows:
            match = TextMatch(r["sim"], r["q_in"], r["n_in"], tuple(cjk_grams(r["name"])),
                              r["street_key"])
            hit = StreetHit(r["name"], r["street_key"], r["canonical_key"], r["has_line"],
                            match.score(asked))
            if hit.canonical not in best or hit.score > best[hit.canonical].score:
                best[hit.canonical] = hit
        return sorted(best.values(), key=lambda h: -h.score)[:STREETS_PER_NAME]

    def _numbers(self, conn: Connection, query: AddressQuery,
                 streets: Sequence[StreetHit]) -> list[Candidate]:
        if not streets:
            return []
        by_key = {s.canonical: s for s in streets}
        rows = conn.execute(_NUMBERS, {"keys": list(by_key), "n": query.number,
                                       "base": number_base(query.number) or 0}).mappings()
        out: list[Candidate] = []
        per_street: dict[str, list[Any]] = {}
        for r in rows:
            per_street.setdefault(r["asked_street"], []).append(r)
        for key, found in per_street.items():
            hit = by_key[key]
            exact = [r for r in found
                     if number_agreement(query.number, r["number_key"]) != "other"]
            for r in exact or found[:1]:  # the asked number, else the nearest stand-in
                agreement = number_agreement(query.number, r["number_key"]) or "other"
                out.append(Candidate(
                    "address", f"{r['street']} {r['housenumber']}", r["lon"], r["lat"],
                    hit.score, agreement,
                    ref={"address_id": r["id"], "street": r["street"],
                         "housenumber": r["housenumber"], "name": r["name"] or None,
                         "street_matched": hit.name}))
        return out

    def _places(self, conn: Connection, asked: Street) -> list[Candidate]:
        rows = conn.execute(_PLACES, {"k": asked.key, "g": list(asked.grams),
                                      "limit": PLACES}).mappings()
        out = []
        for r in rows:
            score = TextMatch(r["sim"], r["q_in"], r["n_in"], tuple(cjk_grams(r["name"])),
                              r["name_key"]).score(asked, covering=True)
            if r["alias_key"]:
                score = max(score, TextMatch(r["a_sim"], r["a_q_in"], r["a_n_in"],
                                             tuple(cjk_grams(r["alias"] or "")),
                                             r["alias_key"]).score(asked, covering=True))
            out.append(Candidate(
                "place", r["label"], r["lon"], r["lat"], score,
                ref={"address_id": r["id"], "name": r["name"], "street": r["street"] or None,
                     "housenumber": r["housenumber"] or None}))
        return out

    def _street_points(self, conn: Connection, streets: Sequence[StreetHit]
                       ) -> list[Candidate]:
        if not streets:
            return []
        rows = conn.execute(_STREET_POINTS, {"keys": [s.key for s in streets]}).mappings()
        points = {r["key"]: r for r in rows}
        return [Candidate("street", s.name, points[s.canonical]["lon"],
                          points[s.canonical]["lat"], s.score,
                          ref={"street": s.name, "line": s.has_line})
                for s in streets if s.canonical in points]

    def _crossings(self, conn: Connection, a: Sequence[StreetHit], b: Sequence[StreetHit]
                   ) -> list[Candidate]:
        if not a or not b:
            return []
        import shapely

        score = {s.key: s for s in [*a, *b]}
        rows = conn.execute(_CROSSINGS, {"a": [s.key for s in a], "b": [s.key for s in b],
                                         "gap": CROSSING_GAP_M}).mappings()
        out = []
        for r in rows:
            sa, sb = score[r["a_key"]], score[r["b_key"]]
            geom = shapely.from_wkb(bytes(r["wkb"]))
            for point in _crossing_points(geom):
                out.append(Candidate(
                    "intersection", f"{sa.name} / {sb.name}", point[0], point[1],
                    min(sa.score, sb.score), touching=bool(r["touching"]),
                    ref={"streets": [sa.name, sb.name]}))
        return out

    # -- answers ---------------------------------------------------------------------------
    def _placed(self, candidate: dict[str, Any]) -> dict[str, Any]:
        """The candidate with the grid its point lies in now (None outside every grid)."""
        candidate.update(grid_code=None, grid_id=None, inside=False)
        if self.resolver is None:
            return candidate
        try:
            res = self.resolver.resolve(candidate["lon"], candidate["lat"])
        except GridcoreError:  # far outside the city (a wrong import): no grid
            return candidate
        if res.inside and res.grid is not None:
            candidate.update(grid_code=res.grid.grid_code, grid_id=res.grid.grid_id,
                             inside=True, snapped=res.grid.snapped,
                             street_code=res.street.code if res.street else None,
                             community_code=res.community.code if res.community else None)
        return candidate


def _crossing_points(geom: Any) -> list[tuple[float, float]]:
    """The points where two streets meet, one per crossing: points within 60 m of each other
    (a dual carriageway, a roundabout) are one crossing, at their centre."""
    import shapely

    parts = [p for p in shapely.get_parts(geom) if not p.is_empty]
    points = [p.centroid if p.geom_type != "Point" else p for p in parts]
    clusters: list[list[Any]] = []
    for p in points:
        for cluster in clusters:
            if _deg_metres(cluster[0], p) <= 60.0:
                cluster.append(p)
                break
        else:
            clusters.append([p])
    out = []
    for cluster in clusters:
        centre = shapely.MultiPoint(cluster).centroid
        out.append((centre.x, centre.y))
    return out


def _deg_metres(a: Any, b: Any) -> float:
    import math

    mid = math.radians((a.y + b.y) / 2)
    return math.hypot((b.x - a.x) * math.cos(mid), b.y - a.y) * 111_195.0
