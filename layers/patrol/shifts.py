"""Storing a worker's shifts and positions, and the track of each shift.

A batch of positions is stored in one transaction with the shift locked: its points (a
resent batch adds nothing: the key is the shift and the time), then the shift's track rebuilt
from all its points as a LineString whose M is each vertex's time in epoch seconds, its length
in metres and its point count.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridcore import patrol as rules
from gridcore.errors import Conflict, NotFound, ValidationError
from gridcore.security.access import Principal

_SHIFT = """
SELECT s.id::text AS id, u.username, s.started_at, s.ended_at, s.points, s.length_m,
       s.created_at, s.updated_at,
       (SELECT max(at) FROM patrol_point p WHERE p.shift_id = s.id) AS last_point_at
FROM patrol_shift s JOIN app_user u ON u.id = s.user_id
"""
_REBUILD = text("""
UPDATE patrol_shift s SET
    track = t.line, points = t.n,
    length_m = coalesce(ST_Length(ST_Force2D(t.line)::geography), 0),
    updated_at = now()
FROM (
    SELECT count(*) AS n,
           CASE WHEN count(*) >= 2 THEN ST_SetSRID(ST_MakeLine(
               ST_MakePointM(ST_X(geom), ST_Y(geom), extract(epoch FROM at)) ORDER BY at),
               4326) END AS line
    FROM patrol_point WHERE shift_id = CAST(:id AS uuid)
) t
WHERE s.id = CAST(:id AS uuid)
""")


def _user_id(conn: Connection, username: str) -> int:
    found = conn.execute(text("SELECT id FROM app_user WHERE username = :u"),
                         {"u": username}).scalar()
    if found is None:
        raise ValidationError(f"patrols are recorded for signed-in users; {username!r} is "
                              "not one", field="user")
    return int(found)


def _shift_row(conn: Connection, shift_id: str, lock: bool = False) -> Any:
    sql = _SHIFT + " WHERE s.id = CAST(:id AS uuid)"  # a uuid: checked by the route
    if lock:
        sql += " FOR UPDATE OF s"
    return conn.execute(text(sql), {"id": shift_id}).mappings().first()


def _public(row: Any, now: datetime, longest: timedelta) -> dict[str, Any]:
    end = rules.effective_end(row["started_at"], row["ended_at"], row["last_point_at"], now,
                              longest)
    return {"id": row["id"], "user": row["username"],
            "started_at": row["started_at"].astimezone(UTC).isoformat(),
            "ended_at": end.astimezone(UTC).isoformat() if end else None,
            "on_duty": end is None, "ended_by": None if end is None else (
                "worker" if row["ended_at"] is not None else "timeout"),
            "points": row["points"], "length_m": round(float(row["length_m"]), 1),
            "last_point_at": row["last_point_at"].astimezone(UTC).isoformat()
            if row["last_point_at"] else None}


def _own(row: Any, principal: Principal, shift_id: str) -> None:
    if row is None or row["username"] != principal.name:
        raise NotFound(f"no shift {shift_id!r} of yours", shift_id=shift_id)


def start(engine: Engine, principal: Principal, shift_id: str, started_at: datetime,
          longest: timedelta) -> tuple[dict[str, Any], bool]:
    """Go on duty; (the shift, created). Starting the same shift again (a resend) returns it;
    a shift still open is ended at its last position first (one duty at a time)."""
    now = datetime.now(UTC)
    rules.check_start(started_at, now, longest)
    with engine.begin() as conn:
        existing = _shift_row(conn, shift_id, lock=True)
        if existing is not None:
            _own(existing, principal, shift_id)
            return _public(existing, now, longest), False
        user_id = _user_id(conn, principal.name)
        conn.execute(text(
            "UPDATE patrol_shift s SET ended_at = greatest(s.started_at, least(:at, coalesce("
            "(SELECT max(at) FROM patrol_point p WHERE p.shift_id = s.id), :at))), "
            "updated_at = now() WHERE s.user_id = :u AND s.ended_at IS NULL"),
            {"u": user_id, "at": started_at})
        conn.execute(text("INSERT INTO patrol_shift (id, user_id, started_at) "
                          "VALUES (CAST(:id AS uuid), :u, :at)"),
                     {"id": shift_id, "u": user_id, "at": started_at})
        return _public(_shift_row(conn, shift_id), now, longest), True


def add_points(engine: Engine, principal: Principal, shift_id: str,
               raw: list[dict[str, Any]], longest: timedelta) -> dict[str, Any]:
    """Store a batch of positions; what was stored, what was already there, what was refused
    (off duty, in the future, not a place) with the reason."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = _shift_row(conn, shift_id, lock=True)
        _own(row, principal, shift_id)
        # an open shift takes positions up to the longest shift (a phone offline all day)
        kept, refused = rules.sort_positions(raw, row["started_at"], row["ended_at"] or (
            row["started_at"] + longest), now)
        stored = 0
        if kept:
            stored = conn.execute(text(
                "INSERT INTO patrol_point (shift_id, at, geom, accuracy_m) "
                "SELECT CAST(:id AS uuid), p.at, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), "
                "p.acc FROM jsonb_to_recordset(CAST(:points AS jsonb)) AS p "
                "(at timestamptz, lon float8, lat float8, acc float8) "
                "ON CONFLICT (shift_id, at) DO NOTHING"),
                {"id": shift_id, "points": _json([
                    {"at": p.at.isoformat(), "lon": p.lon, "lat": p.lat, "acc": p.accuracy_m}
                    for p in kept])}).rowcount
            conn.execute(_REBUILD, {"id": shift_id})
        shift = _public(_shift_row(conn, shift_id), now, longest)
    return {"shift": shift, "received": len(raw), "stored": stored,
            "duplicates": len(kept) - stored,
            "refused": [r.as_dict() for r in refused]}


def end(engine: Engine, principal: Principal, shift_id: str, ended_at: datetime,
        longest: timedelta) -> dict[str, Any]:
    """Go off duty. Ending an ended shift again at the same time is a resend (no error)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = _shift_row(conn, shift_id, lock=True)
        _own(row, principal, shift_id)
        rules.check_end(row["started_at"], ended_at, now)
        if row["ended_at"] is not None and row["ended_at"] != ended_at:
            raise Conflict(f"shift {shift_id} already ended at "
                           f"{row['ended_at'].isoformat()}", shift_id=shift_id)
        if row["last_point_at"] is not None and row["last_point_at"] > ended_at:
            raise ValidationError("the shift has positions after that end time",
                                  field="ended_at", value=ended_at.isoformat())
        conn.execute(text("UPDATE patrol_shift SET ended_at = :e, updated_at = now() "
                          "WHERE id = CAST(:id AS uuid)"), {"e": ended_at, "id": shift_id})
        return _public(_shift_row(conn, shift_id), now, longest)


def shifts(engine: Engine, username: str | None, since: datetime | None,
           until: datetime | None, limit: int, longest: timedelta) -> list[dict[str, Any]]:
    clauses: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    if username is not None:
        clauses.append("u.username = :user")
        params["user"] = username
    if since is not None:
        clauses.append("coalesce(s.ended_at, now()) >= :since")
        params["since"] = since
    if until is not None:
        clauses.append("s.started_at < :until")
        params["until"] = until
    now = datetime.now(UTC)
    with engine.connect() as conn:
        rows = conn.execute(text(_SHIFT + " WHERE " + " AND ".join(clauses)
                                 + " ORDER BY s.started_at DESC LIMIT :limit"),
                            params).mappings().all()
    return [_public(r, now, longest) for r in rows]


def track(engine: Engine, shift_id: str, longest: timedelta) -> tuple[str, dict[str, Any]]:
    """(owner, the shift as a GeoJSON Feature): its track as a LineString, each vertex's time
    in ``properties.times`` (GeoJSON has no M)."""
    with engine.connect() as conn:
        row = _shift_row(conn, shift_id)
        if row is None:
            raise NotFound(f"no shift {shift_id!r}", shift_id=shift_id)
        points = conn.execute(text(
            "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat, at, accuracy_m FROM patrol_point "
            "WHERE shift_id = CAST(:id AS uuid) ORDER BY at"), {"id": shift_id}).all()
    coords = [[round(p.lon, 7), round(p.lat, 7)] for p in points]
    geometry = ({"type": "LineString", "coordinates": coords} if len(coords) >= 2 else
                {"type": "Point", "coordinates": coords[0]} if coords else None)
    props = _public(row, datetime.now(UTC), longest)
    props["times"] = [p.at.astimezone(UTC).isoformat() for p in points]
    props["accuracy_m"] = [p.accuracy_m for p in points]
    return row["username"], {"type": "Feature", "id": shift_id, "geometry": geometry,
                             "properties": props}


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()
