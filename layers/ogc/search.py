"""The one map's search (搜索): one box for case numbers, grid, area and city-part codes, class
names in Chinese and English, street and community names, and the words of case descriptions —
ranked, best first.

Descriptions are searched by substring, which needs no Chinese word segmentation: ``pg_trgm``'s
GIN index (the desk migration) finds any substring of three characters or more; a
two-character query (most Chinese words: 路灯, 井盖, 占道) has no trigram to look up, so those
go through the index of each description's Chinese character pairs
(``gridcore_cjk_bigrams``). Either way the rows are checked against the substring itself.

Scores (0–1) order hits of different kinds: an exact code or number 1.0, a code prefix 0.9,
class names 0.8–0.95, area names 0.75–0.9, descriptions 0.4–0.7 (open cases and closer textual
similarity higher). Cases outside the caller's scope are never read.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, text

from gridcore.security.access import Scope
from gridcore.taxonomy import default_taxonomy
from layers.db.partitions import report_time
from layers.schema.cases import TERMINAL_SQL
from layers.security.scoping import case_scope_sql

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CASE_NO = re.compile(r"[Cc]?0*(\d{1,12})")
_LEVEL = {6: "district", 9: "street", 12: "community"}


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _scoped(scope: Scope | None, params: dict[str, Any]) -> str:
    return f" AND {case_scope_sql(scope, params)}" if scope is not None else ""


def search(conn: Connection, q: str, scope: Scope | None = None, limit: int = 20
           ) -> list[dict[str, Any]]:
    q = " ".join(q.split())
    if not q:
        return []
    hits = [*_codes(conn, q, scope), *_classes(conn, q, scope), *_areas(conn, q),
            *_descriptions(conn, q, scope)]
    seen: set[tuple[str, str]] = set()
    out = []
    for hit in sorted(hits, key=lambda h: -h["score"]):
        key = (hit["kind"], str(hit["id"]))
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out[:limit]


def _codes(conn: Connection, q: str, scope: Scope | None) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = []
    number = _CASE_NO.fullmatch(q)
    if number and len(q) < 15:
        params: dict[str, Any] = {"i": int(number[1])}
        params["at"] = report_time(conn, params["i"])  # planned on the case's own year
        for r in conn.execute(text(
                "SELECT c.id, c.public_no, c.state, c.category_key, c.description, "
                "ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat FROM case_record c "
                "WHERE c.id = :i AND c.created_at = :at"
                + _scoped(scope, params)), params).mappings():
            hits.append(_case_hit(r, 1.0))
    if re.fullmatch(r"\d{16}", q):
        for r in conn.execute(text(
                "SELECT code, class_code, name, ST_X(geom) AS lon, ST_Y(geom) AS lat "
                "FROM city_part WHERE code = :c"), {"c": q}).mappings():
            hits.append({"kind": "part", "id": r["code"], "label": r["code"],
                         "sub": r["name"], "category": "P" + r["class_code"],
                         "lon": r["lon"], "lat": r["lat"], "score": 1.0})
    if re.fullmatch(r"\d{6,15}", q):
        for r in conn.execute(text(
                "SELECT code, name, ST_X(ST_PointOnSurface(geom)) AS lon, "
                "ST_Y(ST_PointOnSurface(geom)) AS lat FROM unit_grid "
                "WHERE gen_to IS NULL AND code LIKE :p ORDER BY code LIMIT 8"),
                {"p": q + "%"}).mappings():
            hits.append({"kind": "grid", "id": r["code"], "label": r["code"],
                         "sub": r["name"], "lon": r["lon"], "lat": r["lat"],
                         "score": 1.0 if r["code"] == q else 0.9})
        if len(q) in _LEVEL:
            hits += [{**h, "score": 1.0} for h in _area_rows(conn, "code = :q", {"q": q})]
    return hits


def _case_hit(r: Any, score: float) -> dict[str, Any]:
    return {"kind": "case", "id": r["id"], "label": r["public_no"], "state": r["state"],
            "category": r["category_key"], "sub": (r["description"] or "")[:60],
            "lon": r["lon"], "lat": r["lat"], "score": round(score, 3)}


def _classes(conn: Connection, q: str, scope: Scope | None) -> list[dict[str, Any]]:
    """Classes whose key or Chinese / English name holds the query, with their open cases."""
    low = q.lower()
    found = []
    for cls in default_taxonomy():
        names = (cls.name_zh, cls.name_en.lower(), cls.key.lower())
        best = max((len(low) / len(n) for n in names if n and low in n), default=0.0)
        if best:
            found.append((cls, 0.8 + 0.15 * best))
    if not found:
        return []
    found = sorted(found, key=lambda f: -f[1])[:8]
    params: dict[str, Any] = {"k": [c.key for c, _ in found]}
    counts: dict[str, int] = dict(conn.execute(text(
        f"SELECT c.category_key, count(*) FROM case_record c WHERE c.category_key = ANY(:k) "
        f"AND c.state NOT IN {TERMINAL_SQL}" + _scoped(scope, params)
        + " GROUP BY c.category_key"), params).all())
    return [{"kind": "category", "id": c.key, "label": c.name_zh, "label_en": c.name_en,
             "open_cases": int(counts.get(c.key, 0)), "score": round(score, 3)}
            for c, score in found]


def _area_rows(conn: Connection, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows = conn.execute(text(
        "SELECT code, level, name, ST_XMin(geom) AS x0, ST_YMin(geom) AS y0, "
        "ST_XMax(geom) AS x1, ST_YMax(geom) AS y1, "
        "ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat, "
        f"similarity(name, :q) AS sim FROM admin_area WHERE {where} "
        "ORDER BY sim DESC, code LIMIT 8"), params).mappings()
    return [{"kind": "area", "id": r["code"], "label": r["name"], "level": r["level"],
             "bbox": [r["x0"], r["y0"], r["x1"], r["y1"]], "lon": r["lon"], "lat": r["lat"],
             "score": round(0.75 + 0.15 * float(r["sim"]), 3)} for r in rows]


def _areas(conn: Connection, q: str) -> list[dict[str, Any]]:
    """Streets, communities and districts by name (a few thousand rows: no index needed)."""
    return _area_rows(conn, "name ILIKE :p", {"p": _like(q), "q": q})


# The newest cases are searched first by their primary key (a cheap substring test on each):
# a dispatcher looks for recent cases, and a word in use is found there at once. Fewer matches
# than wanted there, and the older cases are searched through the index, whose cost follows
# the number of matches rather than the table (a plan sorting every match by id, or scanning
# the table newest first, took seconds on 1 M cases for a rare word: benchmarks/README.md).
RECENT = 10_000


def _descriptions(conn: Connection, q: str, scope: Scope | None,
                  limit: int = 10) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"q": q, "p": _like(q), "n": limit, "recent": RECENT}
    if len(q) >= 3:
        cheap = indexed = "c.description ILIKE :p"
    elif len(_CJK.findall(q)) >= 2:
        cheap = "strpos(c.description, :q) > 0"
        indexed = ("gridcore_cjk_bigrams(c.description) @> gridcore_cjk_bigrams(:q) "
                   f"AND {cheap}")
    else:
        return []  # one character, or two Latin ones: too short to mean anything
    scoped = _scoped(scope, params)
    columns = (f"c.id, c.public_no, c.state, c.category_key, c.description, "
               f"ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, "
               f"c.state NOT IN {TERMINAL_SQL} AS open, similarity(c.description, :q) AS sim")
    edge = conn.execute(text("SELECT coalesce(max(id), 0) - :recent FROM case_record"),
                        params).scalar_one()
    params["edge"] = edge
    rows = list(conn.execute(text(
        f"SELECT {columns} FROM case_record c WHERE c.id > :edge AND {cheap}{scoped} "
        "ORDER BY c.id DESC LIMIT :n"), params).mappings())
    if len(rows) < limit:
        params["more"] = limit - len(rows)
        rows += conn.execute(text(
            f"WITH m AS MATERIALIZED (SELECT c.id FROM case_record c WHERE c.id <= :edge "
            f"AND {indexed}{scoped}) "
            f"SELECT {columns} FROM case_record c JOIN m ON m.id = c.id "
            "ORDER BY c.id DESC LIMIT :more"), params).mappings().all()
    return [_case_hit(r, 0.4 + 0.2 * float(r["sim"]) + (0.1 if r["open"] else 0.0))
            for r in rows]
