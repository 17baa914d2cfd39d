"""What a dispatcher needs beside a case to decide its next step: the names of its class,
areas and departments, the basis of the dispatch proposal (the rule or the city part that made
it), its duplicate candidates with what tells them apart (distance, time, photos), the later
reports that named it as a candidate, and the reports merged into it (并案)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from gridcore.calendar import city_iso
from gridcore.errors import ValidationError
from gridcore.taxonomy import default_taxonomy
from layers.schema.cases import TERMINAL_SQL

_COLUMNS = (f"SELECT c.id, c.public_no, c.state, c.category_key, c.created_at, c.closed_at, "
            f"c.description, c.reporter, c.grid_code, c.state NOT IN {TERMINAL_SQL} AS open, "
            "ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, "
            "(SELECT count(*) FROM case_photo p WHERE p.case_id = c.id) AS photo_count")
_BRIEF = f"{_COLUMNS} FROM case_record c"


def class_names(key: str | None) -> dict[str, str] | None:
    if not key:
        return None
    try:
        cls = default_taxonomy().get(key)
    except ValidationError:
        return None
    return {"zh": cls.name_zh, "en": cls.name_en}


def part_names(conn: Connection, code: str | None) -> dict[str, Any] | None:
    """The city part a case is linked to, by name: its class's names from the taxonomy (the
    part code's digits 7-10), its own name from the inventory when it has one (a bus stop's
    "Postitalo"), and its state. None without a part; the class alone when the part is no
    longer in the inventory."""
    if not code:
        return None
    row = conn.execute(text("SELECT name, state FROM city_part WHERE code = :c"),
                       {"c": code}).first()
    return {"code": code, "class_names": class_names("P" + code[6:10]),
            "name": (row.name or None) if row else None, "state": row.state if row else None}


def _brief(row: Mapping[str, Any] | Any, tz: ZoneInfo) -> dict[str, Any]:
    return {"id": row["id"], "public_no": row["public_no"], "state": row["state"],
            "category": row["category_key"], "created_at": city_iso(row["created_at"], tz),
            "closed_at": city_iso(row["closed_at"], tz), "description": row["description"],
            "reporter": row["reporter"], "grid_code": row["grid_code"], "open": row["open"],
            "lon": row["lon"], "lat": row["lat"], "photo_count": int(row["photo_count"])}


def proposal_basis(conn: Connection, row: Mapping[str, Any] | Any,
                   history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What decided the standing proposal: a send-back's re-proposal, else intake's."""
    basis: dict[str, Any] = {"source": "none", "rule_id": None, "reproposed": False}
    for h in reversed(history):
        if h["action"] == "send_back":
            basis.update((h["details"] or {}).get("basis") or {}, reproposed=True)
            break
    else:
        resolution = (row.get("intake") or {}).get("resolution") or {}
        responsible = resolution.get("responsible") or {}
        extras = resolution.get("extras") or {}
        basis["source"] = responsible.get("source") or extras.get("dispatch_source") or "none"
        basis["rule_id"] = responsible.get("rule_id") or extras.get("rule_id")
        part = resolution.get("linked_part")
        if part:
            basis["part"] = {"code": part.get("code"), "distance_m": part.get("distance_m")}
    if basis["rule_id"] is not None:
        rule = conn.execute(text(
            "SELECT id, category_key, area_level, area_code, department_code, note "
            "FROM dispatch_rule WHERE id = :i"), {"i": basis["rule_id"]}).mappings().first()
        basis["rule"] = dict(rule) if rule else None
    return basis


def enrich(conn: Connection, out: dict[str, Any], row: Mapping[str, Any] | Any,
           history: Sequence[Mapping[str, Any]], tz: ZoneInfo, window: timedelta) -> None:
    """Add ``context`` to a case's dict: names, the proposal's basis, duplicate candidates
    (both ways) and the reports merged into it. The stored case's own fields stay as intake
    answered them."""
    departments = {d for d in (row["department_code"], row["proposed_department"]) if d}
    names: dict[str, str] = dict(conn.execute(text(
        "SELECT code, name FROM department WHERE code = ANY(:d)"),
        {"d": sorted(departments)}).all()) if departments else {}
    codes = [c for c in (row["district_code"], row["street_code"], row["community_code"]) if c]
    out["context"] = {
        "department_name": names.get(row["department_code"]),
        "category_names": class_names(row["category_key"]),
        "part": part_names(conn, row["part_code"]),
        "proposal": {"department_name": names.get(row["proposed_department"]),
                     "basis": proposal_basis(conn, row, history)},
        "areas": [dict(r) for r in conn.execute(text(
            "SELECT code, level, name FROM admin_area WHERE code = ANY(:c) "
            "ORDER BY length(code)"), {"c": codes}).mappings()] if codes else [],
        "duplicates": _candidates(conn, out.get("duplicates") or [], row["created_at"], tz),
        "later_duplicates": _later(conn, row, tz, window),
        "merged": [_brief(r, tz) for r in conn.execute(text(
            f"{_BRIEF} WHERE c.primary_case_id = :i ORDER BY c.id"),
            {"i": row["id"]}).mappings()],
    }


def _candidates(conn: Connection, candidates: list[dict[str, Any]], created: datetime,
                tz: ZoneInfo) -> list[dict[str, Any]]:
    """Intake's candidates (score, distance, signals) with the case each one names now."""
    ids = [c["case_id"] for c in candidates if c.get("case_id") is not None]
    if not ids:
        return candidates
    found = {r["id"]: r for r in conn.execute(text(f"{_BRIEF} WHERE c.id = ANY(:i)"),
                                              {"i": ids}).mappings()}
    out = []
    for c in candidates:
        other = found.get(c.get("case_id"))
        if other is None:
            continue
        apart = abs((created - other["created_at"]).total_seconds())
        out.append({**c, "case": _brief(other, tz), "seconds_apart": round(apart)})
    return out


def _later(conn: Connection, row: Mapping[str, Any] | Any, tz: ZoneInfo,
           window: timedelta) -> list[dict[str, Any]]:
    """Reports filed after this one (within the duplicate window) that named it as a
    candidate: the primary's side of the same pair."""
    rows = conn.execute(text(
        f"{_COLUMNS}, c.intake -> 'duplicates' AS dups FROM case_record c "
        "WHERE c.created_at >= :t AND c.created_at <= :t2 AND c.id <> :i "
        "AND c.intake -> 'duplicates' @> CAST(:probe AS jsonb) ORDER BY c.id LIMIT 20"),
        {"t": row["created_at"], "t2": row["created_at"] + window, "i": row["id"],
         "probe": f'[{{"case_id": {int(row["id"])}}}]'}).mappings()
    out = []
    for r in rows:
        score: dict[str, Any] = next(
            (d for d in r["dups"] or [] if d.get("case_id") == row["id"]), {})
        out.append({"case_id": r["id"], "score": score.get("score"),
                    "distance_m": score.get("distance_m"), "signals": score.get("signals"),
                    "case": _brief(r, tz),
                    "seconds_apart": round((r["created_at"] - row["created_at"]).total_seconds())})
    return out
