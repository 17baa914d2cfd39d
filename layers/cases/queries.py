"""Reading cases: one case with its history, lists (filters, clock-colour filter, keyset
pagination) and the overdue list (督办).

Pages are ordered newest report first (``created_at``, then ``id``) and continue *after* the
last position seen (keyset: ``<µs since 1970>.<id>``), so a ``next`` link stays valid and never
skips or repeats rows while new cases arrive. The report time is the cases' partition key: a
page reads the newest partitions' index tops (``(created_at, id)``), and a continuation prunes
every partition newer than its position; an imported old case sorts by when it was reported,
not by when it was imported. A bare case id as ``after`` (the links of before) still works.

The clock colour is decided from the stored ``warn_at`` / ``deadline_at`` marks against the case's
effective clock instant (now, or the moment it was parked — a parked clock stands still).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from gridcore.calendar import city_iso
from gridcore.errors import NotFound, ValidationError
from gridcore.security.access import Scope
from gridcore.settings import CaseSettings
from layers.cases.coordination import parties
from layers.cases.details import enrich
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
    area: str | None = None  # any area code: district 6, street 9, community 12, grid 15 digits
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


# An area code's length names its level, and the case row keeps each level's code.
AREA_COLUMNS = {6: "district_code", 9: "street_code", 12: "community_code", 15: "grid_code"}


def _where(f: CaseFilter, params: dict[str, Any]) -> list[str]:
    clauses = []
    if f.area:
        column = AREA_COLUMNS.get(len(f.area)) if f.area.isdigit() else None
        if column is None:
            raise ValidationError(f"area {f.area!r} must be a district (6 digits), street (9), "
                                  "community (12) or grid (15) code", field="area",
                                  value=f.area, msg_key="bad_area")
        clauses.append(f"c.{column} = :area")
        params["area"] = f.area
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


def where_sql(f: CaseFilter, params: dict[str, Any]) -> list[str]:
    """The filter as SQL clauses on ``case_record c`` (``:now`` must be in ``params``)."""
    return _where(f, params)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def deadline_cursor(deadline: datetime | None, case_id: int) -> str:
    """A keyset position in deadline order: ``<µs since 1970>.<id>`` (``-`` for no deadline)."""
    micros = "-" if deadline is None else str((deadline - _EPOCH) // timedelta(microseconds=1))
    return f"{micros}.{case_id}"


def after_deadline(cursor: str, params: dict[str, Any]) -> str:
    """The clause continuing a deadline-ordered page after ``cursor`` (deadlines NULLS LAST)."""
    try:
        micros, case_id = cursor.rsplit(".", 1)
        params["after_id"] = int(case_id)
        if micros == "-":
            return "(c.deadline_at IS NULL AND c.id > :after_id)"
        params["after_deadline"] = _EPOCH + timedelta(microseconds=int(micros))
    except ValueError:
        raise ValidationError(f"after {cursor!r} is not a position this list gave",
                              field="after", value=cursor) from None
    return ("(c.deadline_at > :after_deadline OR c.deadline_at IS NULL OR "
            "(c.deadline_at = :after_deadline AND c.id > :after_id))")


def report_cursor(created_at: datetime, case_id: int) -> str:
    """A keyset position in report-time order: ``<µs since 1970>.<id>``."""
    return f"{(created_at - _EPOCH) // timedelta(microseconds=1)}.{case_id}"


def after_report(cursor: str, params: dict[str, Any]) -> str:
    """The clause continuing a report-time page after ``cursor`` (newest first). The plain
    ``created_at <=`` beside the row comparison lets the planner prune newer partitions."""
    try:
        if "." in cursor:
            micros, case_id = cursor.split(".", 1)
            params["after_at"] = _EPOCH + timedelta(microseconds=int(micros))
            params["after_id"] = int(case_id)
        else:  # a bare id (links made before report-time order): its case's report time
            params["after_id"] = int(cursor)
            return ("(c.created_at, c.id) < (SELECT k.created_at, k.id FROM case_key k "
                    "WHERE k.id = :after_id)")
    except (ValueError, OverflowError):
        raise ValidationError(f"after {cursor!r} is not a position this list gave",
                              field="after", value=cursor) from None
    return "(c.created_at <= :after_at AND (c.created_at, c.id) < (:after_at, :after_id))"


def list_cases(engine: Engine, settings: CaseSettings, f: CaseFilter,
               after: int | str | None = None, limit: int = 100,
               now: datetime | None = None) -> tuple[list[dict], int | str | None]:
    """One page of cases and the position to continue after, or None at the end: newest
    report first, or — for the overdue list — most overdue first (a deadline cursor)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be 1…{MAX_LIMIT}", field="limit", value=limit)
    now = now or datetime.now(UTC)
    params: dict[str, Any] = {"now": now, "limit": limit + 1}
    clauses = _where(f, params)
    if after is not None and f.overdue:
        clauses.append(after_deadline(str(after), params))
    elif after is not None:
        clauses.append(after_report(str(after), params))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    order = "c.deadline_at, c.id" if f.overdue else "c.created_at DESC, c.id DESC"
    sql = f"SELECT {CASE_COLUMNS} FROM case_record c {where} ORDER BY {order} LIMIT :limit"
    with engine.connect() as conn:
        rows: list[Any] = list(conn.execute(text(sql), params).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    cases = [case_dict(r, settings.working_calendar, now) for r in rows]
    if not more:
        return cases, None
    last = rows[-1]
    return cases, (deadline_cursor(last["deadline_at"], last["id"]) if f.overdue
                   else report_cursor(last["created_at"], last["id"]))


def overdue(engine: Engine, settings: CaseSettings, limit: int = 1000,
            now: datetime | None = None, scope: Scope | None = None) -> list[dict]:
    """Open cases past their deadline (red), most overdue first — the supervision list."""
    cases, _ = list_cases(engine, settings, CaseFilter(overdue=True, scope=scope),
                          limit=limit, now=now)
    return cases


def get_case(engine: Engine, settings: CaseSettings, case_id: int,
             now: datetime | None = None) -> dict[str, Any]:
    """One case with its full history, names, the proposal's basis, duplicate candidates and
the reports merged into it; a merged case also shows its primary's outcome."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        row = fetch_case(conn, case_id)
        if row is None:
            raise NotFound(f"case {case_id} does not exist", case_id=case_id)
        history = history_of(conn, case_id)
        calendar = settings.working_calendar
        out = case_dict(row, calendar, now, history, photos_of(conn, case_id))
        out.update(parties(conn, case_id))
        enrich(conn, out, row, history, calendar.tz, timedelta(hours=settings.dedup_window_h))
        if row["primary_case_id"]:
            primary = fetch_case(conn, row["primary_case_id"])
            out["outcome"] = {"primary_case_id": primary["id"],
                              "primary_public_no": primary["public_no"],
                              "state": primary["state"],
                              "closed_at": city_iso(primary["closed_at"], calendar.tz)}
        return out


def assigned_counts(engine: Engine, usernames: list[str]) -> dict[str, int]:
    """Open cases assigned to each of ``usernames`` (a team's load)."""
    if not usernames:
        return {}
    with engine.connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(text(
            f"SELECT assignee, count(*) FROM case_record WHERE assignee = ANY(:u) "
            f"AND {OPEN_SQL} GROUP BY assignee"), {"u": usernames})}
