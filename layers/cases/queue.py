"""The dispatcher's queue (待办队列) in storage: per-bucket counts and one bucket's page, soonest
deadline first, under the same filters as ``GET /cases`` (class, department, area, colour…) and
the caller's scope.

The buckets are the domain's (:mod:`gridcore.queues`). Counts come from one grouped scan of the
open cases; a page walks ``case_record_queue_idx`` (state, deadline, id) — one ordered index
scan per state of the bucket, merged — so the first page costs the same with 100 open cases
or 100,000.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from gridcore import queues
from gridcore.errors import ValidationError
from gridcore.queues import Bucket
from gridcore.settings import CaseSettings
from layers.cases.details import class_names
from layers.cases.queries import (
    COLOUR_SQL,
    CaseFilter,
    after_deadline,
    deadline_cursor,
    where_sql,
)
from layers.cases.view import case_clock
from layers.schema.cases import OPEN_SQL

MAX_PAGE = 200
# What a queue row needs: no intake document, no history.
_ROW = ("c.id, c.public_no, c.state, c.category_key, c.description, c.grid_code, "
        "c.community_code, c.street_code, c.department_code, c.proposed_department, "
        "c.reporter, c.source, c.created_at, c.stage, c.stage_started_at, c.stage_limit, "
        "c.warn_at, c.deadline_at, c.parked_since, c.parked_intervals, c.supervised, "
        "c.assignee, c.primary_case_id, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat, "
        "jsonb_array_length(coalesce(c.intake -> 'duplicates', '[]')) AS duplicate_count")


# Every open page of the desk reloads its queue after every event: counts of the same filter
# and scope at the same cases-layer version are worked out once per process. A clock turns red
# with time, not with a write, so a count is kept at most COUNTS_TTL_S seconds.
COUNTS_TTL_S = 5.0
_counts_cache: OrderedDict[tuple[Any, ...], tuple[int, float, dict[str, int]]] = OrderedDict()
_counts_lock = threading.Lock()
_VERSION = "SELECT coalesce(sum(version), 0) FROM layer_version_shard WHERE layer = 'cases'"


def counts(engine: Engine, f: CaseFilter, now: datetime | None = None,
           cache: bool = True) -> dict[str, int]:
    """Open cases per bucket under the filter (督办: those past their deadline)."""
    params: dict[str, Any] = {"now": now or datetime.now(UTC)}
    clauses = [OPEN_SQL.replace("state", "c.state"), *where_sql(f, params)]
    sql = (f"SELECT c.state, count(*) AS n, count(*) FILTER (WHERE {COLOUR_SQL['red']}) AS red "
           f"FROM case_record c WHERE {' AND '.join(clauses)} GROUP BY c.state")
    key = (str(engine.url), sql, tuple(sorted((k, str(v)) for k, v in params.items()
                                             if k != "now")))
    with engine.connect() as conn:
        version = int(conn.execute(text(_VERSION)).scalar_one()) if cache and now is None \
            else -1
        with _counts_lock:
            hit = _counts_cache.get(key)
        if hit and hit[0] == version >= 0 and time.monotonic() - hit[1] < COUNTS_TTL_S:
            return dict(hit[2])
        rows = conn.execute(text(sql), params).all()
    found = queues.counts({r.state: int(r.n) for r in rows}, sum(int(r.red) for r in rows))
    if version >= 0:
        with _counts_lock:
            _counts_cache[key] = (version, time.monotonic(), found)
            while len(_counts_cache) > 512:
                _counts_cache.popitem(last=False)
    return dict(found)


def _clock_branches(colour: str | None) -> list[str]:
    """A clock colour as conditions the queue index can range over: a running clock's colour
    is a range of deadlines (red before now, yellow and green from now on); a parked clock
    (挂账, few) stands still at the moment it was parked and is judged on its own."""
    if colour is None:
        return ["TRUE"]
    if colour not in COLOUR_SQL:
        raise ValidationError(f"colour {colour!r} must be green, yellow or red",
                              field="colour", value=colour)
    running = {"red": "c.deadline_at < :now",
               "yellow": "c.deadline_at >= :now AND c.warn_at < :now",
               "green": "c.deadline_at >= :now AND (c.warn_at IS NULL OR c.warn_at >= :now)"}
    return [f"c.parked_since IS NULL AND {running[colour]}",
            f"c.parked_since IS NOT NULL AND {OPEN_SQL.replace('state', 'c.state')} "
            f"AND {COLOUR_SQL[colour]}"]


def page(engine: Engine, settings: CaseSettings, f: CaseFilter, bucket: Bucket,
         after: str | None = None, limit: int = 50, now: datetime | None = None
         ) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a bucket, soonest deadline first, and the cursor of the next page."""
    now = now or datetime.now(UTC)
    limit = max(1, min(limit, MAX_PAGE))
    params: dict[str, Any] = {"now": now, "limit": limit + 1}
    clauses = where_sql(replace(f, colour=None), params)  # the colour: _clock_branches
    if after:
        clauses.append(after_deadline(after, params))
    # One ordered index scan per state (and per clock branch), merged: each stops after a
    # page. 督办 holds every open state: one scan of the open cases' deadlines instead.
    parts = []
    colour: str | None
    if bucket is Bucket.OVERDUE:
        colour, by_state = "red", [OPEN_SQL.replace("state", "c.state")]
    else:
        colour, by_state = f.colour, []
        for i, state in enumerate(queues.BUCKET_STATES[bucket]):
            params[f"s{i}"] = state.value
            by_state.append(f"c.state = :s{i}")
    for state_clause in by_state:
        for branch in _clock_branches(colour):
            where = " AND ".join([state_clause, *clauses, branch])
            parts.append(f"(SELECT {_ROW} FROM case_record c WHERE {where} "
                         "ORDER BY c.deadline_at, c.id LIMIT :limit)")
    sql = " UNION ALL ".join(parts)
    if len(parts) > 1:
        sql = f"SELECT * FROM ({sql}) q ORDER BY deadline_at, id LIMIT :limit"
    with engine.connect() as conn:
        rows: list[Any] = list(conn.execute(text(sql), params).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    calendar = settings.working_calendar
    out = []
    for r in rows:
        clock = case_clock(r, calendar, now)
        out.append({
            "id": r["id"], "public_no": r["public_no"], "state": r["state"],
            "bucket": (queues.bucket_of(r["state"]) or bucket).value,
            "category": r["category_key"], "category_names": class_names(r["category_key"]),
            "description": (r["description"] or "")[:140], "grid_code": r["grid_code"],
            "community_code": r["community_code"], "street_code": r["street_code"],
            "department": r["department_code"], "proposed": r["proposed_department"],
            "reporter": r["reporter"], "source": r["source"],
            "created_at": r["created_at"].astimezone(calendar.tz).isoformat(),
            "clock": clock.as_dict() if clock else None, "supervised": r["supervised"],
            "parked": r["parked_since"] is not None, "assignee": r["assignee"],
            "duplicate_count": int(r["duplicate_count"] or 0),
            "lon": r["lon"], "lat": r["lat"]})
    cursor = deadline_cursor(rows[-1]["deadline_at"], rows[-1]["id"]) if more else None
    return out, cursor
