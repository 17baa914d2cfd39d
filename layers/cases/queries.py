"""Reading cases: one case with its history, lists (filters, clock-colour filter, keyset
pagination) and the overdue list (督办).

Pages are ordered newest first by ``id`` and continue *after* the last id seen (keyset), so a
``next`` link stays valid and never skips or repeats rows while new cases arrive. The clock
colour is decided from the stored ``warn_at`` / ``deadline_at`` marks against the case's
effective clock instant (now, or the moment it was parked — a parked clock stands still).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from gridcore.errors import NotFound, ValidationError
from gridcore.security.access import Scope
from gridcore.settings import CaseSettings
from layers.cases.coordination import parties
from layers.cases.view import CASE_COLUMNS, case_dict, fetch_case, history_of, photos_of
from layers.schema.cases import OPEN_SQL
from layers.security.scoping import case_scope_sql

MAX_LIMIT = 1000
_EFFECTIVE = "least(:now, coalesce(c.parked_since, :now))"
COLOUR_SQL = {
    "red": f"({OPEN_SQL.replace('state', 'c.state')} AND c.deadline_at < {_EFFECTIVE})",
    "yellow": f"({OPEN_SQL.replace('state', 'c.state')} AND c.deadline_at >= {_EFFECTIVE} "
              f"AND c.warn_at < {_EFFECTIVE})",
    "green": f"({OPEN_SQL.replace('state', 'c.state')} AND (c.warn_at IS NULL "
             f"OR c.warn_at >= {_EFFECTIVE}))",
}


@dataclass
class CaseFilter:
    grid: str | None = None
    community: str | None = None
    street: str | None = None
    district: str | None = None
    department: str | None = None
    state: str | None = None  # comma list
    category: str | None = None  # comma list
    source: str | None = None
    colour: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    bbox: str | None = None  # minlon,minlat,maxlon,maxlat (WGS 84)
    overdue: bool = False
    scope: Scope | None = None  # who asks (gridcore.security.access): enforced in the query
    ids: list[int] | None = None  # these cases only
    caller: str | None = None  # the cases this caller filed (an API key's reads)
    exclude_categories: tuple[str, ...] = ()  # never these classes (the public feed)

    def query_params(self) -> dict[str, str]:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("scope", "ids", "caller", "exclude_categories"):
                continue
            if v not in (None, False):
                out[f.name] = v.isoformat() if isinstance(v, datetime) else str(v).lower() \
                    if isinstance(v, bool) else str(v)
        return out


def _where(f: CaseFilter, params: dict[str, Any]) -> list[str]:
    clauses = []
    for col, value in (("grid_code", f.grid), ("community_code", f.community),
                       ("street_code", f.street), ("district_code", f.district),
                       ("department_code", f.department), ("source", f.source)):
        if value:
            clauses.append(f"c.{col} = :{col}")
            params[col] = value
    for col, value in (("state", f.state), ("category_key", f.category)):
        if value:
            clauses.append(f"c.{col} = ANY(:{col})")
            params[col] = [v.strip() for v in value.split(",") if v.strip()]
    if f.colour:
        if f.colour not in COLOUR_SQL:
            raise ValidationError(f"colour {f.colour!r} must be green, yellow or red",
                                  field="colour", value=f.colour)
        clauses.append(COLOUR_SQL[f.colour])
    if f.overdue:
        clauses.append(COLOUR_SQL["red"])
    if f.since:
        clauses.append("c.created_at >= :since")
        params["since"] = f.since
    if f.until:
        clauses.append("c.created_at < :until")
        params["until"] = f.until
    if f.bbox:
        try:
            x1, y1, x2, y2 = (float(v) for v in f.bbox.split(","))
        except ValueError:
            raise ValidationError("bbox must be minlon,minlat,maxlon,maxlat",
                                  field="bbox", value=f.bbox) from None
        if not (-180 <= x1 <= x2 <= 180 and -90 <= y1 <= y2 <= 90):
            raise ValidationError("bbox must be minlon,minlat,maxlon,maxlat in WGS 84 with "
                                  "min ≤ max", field="bbox", value=f.bbox)
        clauses.append("c.geom && ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326)")
        params.update(x1=x1, y1=y1, x2=x2, y2=y2)
    if f.scope is not None:
        clauses.append(case_scope_sql(f.scope, params))
    if f.ids is not None:
        clauses.append("c.id = ANY(:ids)")
        params["ids"] = list(f.ids)
    if f.caller is not None:
        clauses.append("c.caller = :caller")
        params["caller"] = f.caller
    if f.exclude_categories:
        clauses.append("NOT (c.category_key = ANY(:excluded))")
        params["excluded"] = list(f.exclude_categories)
    return clauses


def list_cases(engine: Engine, settings: CaseSettings, f: CaseFilter, after: int | None = None,
               limit: int = 100, now: datetime | None = None) -> tuple[list[dict], int | None]:
    """One page of cases (newest first) and the id to continue after, or None at the end."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be 1…{MAX_LIMIT}", field="limit", value=limit)
    now = now or datetime.now(UTC)
    params: dict[str, Any] = {"now": now, "limit": limit + 1}
    clauses = _where(f, params)
    if after is not None:
        clauses.append("c.id < :after")
        params["after"] = after
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    order = "c.deadline_at, c.id" if f.overdue else "c.id DESC"
    sql = f"SELECT {CASE_COLUMNS} FROM case_record c {where} ORDER BY {order} LIMIT :limit"
    with engine.connect() as conn:
        rows: list[Any] = list(conn.execute(text(sql), params).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    cases = [case_dict(r, settings.working_calendar, now) for r in rows]
    return cases, (rows[-1]["id"] if more and not f.overdue else None)


def overdue(engine: Engine, settings: CaseSettings, limit: int = 1000,
            now: datetime | None = None, scope: Scope | None = None) -> list[dict]:
    """Open cases past their deadline (red), most overdue first — the supervision list."""
    cases, _ = list_cases(engine, settings, CaseFilter(overdue=True, scope=scope),
                          limit=limit, now=now)
    return cases


def get_case(engine: Engine, settings: CaseSettings, case_id: int,
             now: datetime | None = None) -> dict[str, Any]:
    """One case with its full history; a merged case also shows its primary's outcome."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        row = fetch_case(conn, case_id)
        if row is None:
            raise NotFound(f"case {case_id} does not exist", case_id=case_id)
        out = case_dict(row, settings.working_calendar, now, history_of(conn, case_id),
                        photos_of(conn, case_id))
        out.update(parties(conn, case_id))
        if row["primary_case_id"]:
            primary = fetch_case(conn, row["primary_case_id"])
            out["outcome"] = {"primary_case_id": primary["id"],
                              "primary_public_no": primary["public_no"],
                              "state": primary["state"], "closed_at":
                              primary["closed_at"].isoformat() if primary["closed_at"] else None}
        return out
