"""How a stored case reads: the row (:func:`fetch_case`), its clock on the working calendar and
its public dictionary (:func:`case_dict`), its history and photos."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from gridcore.calendar import Clock, Interval, WorkingCalendar, city_iso
from gridcore.lifecycle import TERMINAL_STATES
from gridcore.taxonomy import TimeLimit

CASE_COLUMNS = "c.*, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat"


def fetch_case(conn: Connection, case_id: int | None = None, key: str | None = None,
               lock: bool = False) -> Any:
    """A case row by id or idempotency key (``lock``: FOR UPDATE), or None."""
    found = conn.execute(text(
        "SELECT id, created_at FROM case_key WHERE "
        + ("id = :v" if case_id is not None else "idempotency_key = :v")),
        {"v": case_id if case_id is not None else key}).first()
    if found is None:
        return None
    # Two statements, not one with ``created_at = (SELECT … FROM case_key)``: with the report
    # time as a value PostgreSQL prunes to the case's own year while it plans, and plans that
    # partition's indexes only; with a subquery it plans every year's ~30 indexes and prunes
    # only when it runs. The planning was most of a lookup's cost.
    sql = f"SELECT {CASE_COLUMNS} FROM case_record c WHERE c.id = :id AND c.created_at = :at"
    return conn.execute(text(sql + (" FOR UPDATE" if lock else "")),
                        {"id": found.id, "at": found.created_at}).mappings().first()


def history_of(conn: Connection, case_id: int) -> list[Any]:
    return list(conn.execute(text("SELECT * FROM case_history WHERE case_id = :c ORDER BY id"),
                             {"c": case_id}).mappings())


def photos_of(conn: Connection, case_id: int) -> list[Any]:
    """The case's photos in the order they came (the report's first, then each step's), each
    with the step it belongs to; the n-th of them is ``GET /cases/{id}/photos/{n}``."""
    return list(conn.execute(text(
        "SELECT p.*, coalesce(h.action, 'report') AS step FROM case_photo p "
        "LEFT JOIN case_history h ON h.id = p.history_id WHERE p.case_id = :c ORDER BY p.id"),
        {"c": case_id}).mappings())


def photo_links(case_id: int, n: int) -> dict[str, str]:
    """Where the n-th photo of a case (1-based) and its thumbnail are served."""
    url = f"/cases/{case_id}/photos/{n}"
    return {"url": url, "thumb_url": f"{url}?size=thumb"}


def pauses_of(intervals: list[list[str]] | None) -> tuple[Interval, ...]:
    """The stored parked intervals (``parked_intervals``) as pairs of instants."""
    return tuple((datetime.fromisoformat(a), datetime.fromisoformat(b))
                 for a, b in intervals or [])


def case_clock(row: Mapping[str, Any], calendar: WorkingCalendar, now: datetime) -> Clock | None:
    if not row["stage"] or not row["stage_limit"] or row["state"] in TERMINAL_STATES:
        return None
    return calendar.clock(row["stage_started_at"], TimeLimit.parse(row["stage_limit"]), now,
                          pauses_of(row["parked_intervals"]), row["parked_since"])


def case_dict(row: Mapping[str, Any], calendar: WorkingCalendar, now: datetime,
              history: list[Mapping[str, Any]] | None = None,
              photos: list[Mapping[str, Any]] | None = None,
              clock: Clock | None = None) -> dict[str, Any]:
    """``clock``: the case's clock when the caller already knows it (a new case)."""
    clock = clock or case_clock(row, calendar, now)
    intake = row.get("intake") or {}
    tz = calendar.tz

    def _iso(value: datetime | None) -> str | None:
        # In the city's offset whatever the session's TimeZone: a new case's answer (built from
        # the values intake wrote) and every later read of it say the same, and the same as
        # the clock's deadline.
        return city_iso(value, tz)

    out: dict[str, Any] = {
        "id": row["id"], "public_no": row["public_no"], "state": row["state"],
        "category": row["category_key"], "description": row["description"],
        "location": {"lon": row["lon"], "lat": row["lat"], "input_crs": row["input_crs"],
                     "input_x": row["input_x"], "input_y": row["input_y"]},
        "grid_id": row["grid_id"], "grid_code": row["grid_code"],
        "community_code": row["community_code"], "street_code": row["street_code"],
        "district_code": row["district_code"], "h3": row["h3"], "part_code": row["part_code"],
        "source": row["source"], "reporter": row["reporter"],
        "filed_by": row.get("filed_by"),
        "department": row["department_code"],
        "assignee": row.get("assignee"),  # the handler a team leader assigned (指派)
        "proposal": {"department": row["proposed_department"], "rule": row["proposal_rule"],
                     "refused_departments": list(row["refused_departments"] or [])},
        "stage": row["stage"], "stage_limit": row["stage_limit"],
        "stage_started_at": _iso(row["stage_started_at"]),
        "clock": clock.as_dict() if clock else None,
        "parked": row["parked_since"] is not None, "supervised": row["supervised"],
        "check_result": row["check_result"], "primary_case_id": row["primary_case_id"],
        "created_at": _iso(row["created_at"]), "updated_at": _iso(row["updated_at"]),
        "closed_at": _iso(row["closed_at"]), "version": row["version"],
        "resolution": intake.get("resolution"), "duplicates": intake.get("duplicates", []),
        # where the phone's GPS was when the worker moved the pin (None: not sent)
        "fix": intake.get("fix"),
        "close_proposal": row.get("close_proposal"),
        "location_source": row.get("location_source", "point"), "address": row.get("address"),
        "self_handled": row.get("self_handled", False), "callback": row.get("callback"),
        # a report placed from its address says what the geocoder found (接诉即办)
        "geocoding": intake.get("geocoding"),
        # reported by a person, predicted by the classifier at intake, or imported
        "category_source": row.get("category_source") or "reported",
    }
    if intake.get("classification"):
        out["classification"] = intake["classification"]
    if intake.get("handled_before"):
        out["handled_before"] = intake["handled_before"]
    if row.get("source_system"):
        out["imported"] = {"system": row["source_system"], "id": row["source_id"],
                           "original": row.get("origin") or {}}
    if history is not None:
        out["history"] = [{
            "id": h["id"], "at": _iso(h["at"]), "actor": h["actor"], "role": h["role"],
            "action": h["action"], "from": h["from_state"], "to": h["to_state"],
            "reason": h["reason"], "attachments": h["attachments"], "details": h["details"],
        } for h in history]
    if photos is not None:
        out["photos"] = [{"n": n, "id": p["id"], "path": p["path"],
                          "sha256": p["sha256"].strip(), "content_type": p["content_type"],
                          "size": p["size_bytes"], "step": p.get("step", "report"),
                          "history_id": p.get("history_id"),
                          **photo_links(row["id"], n)}
                         for n, p in enumerate(photos, start=1)]
    return out

