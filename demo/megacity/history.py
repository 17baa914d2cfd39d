"""Years of megacity cases as arrays: when, where, what, how far each got, and every step.

Vectorised with numpy, chunk by chunk, deterministic from the seed. What it models:

- **when**: days over ``years`` years up to ``end`` with a yearly growth of 12 %, a summer
  peak (+25 %), quieter weekends (−20 %) and the Spring Festival fortnight (−50 %); hours of
  the day peaking in the working morning and afternoon (grid workers, the 12345 hotline),
  a quarter spread over the whole day (sensors, citizens);
- **where**: at a city part chosen with its grid's heat (``layout.Ground.heat``: denser centre,
  log-normal neighbours, hot spots ten times as busy) — a part-class case at the part itself
  (linked, ``part_code``), an event within 15 m of one, inside the same grid;
- **what**: 40 % part classes (the class of the part), 60 % events by the demo's event mix;
- **how far**: a path per case — 6 % voided, 3 % merged into an earlier case of the same grid,
  the rest the closed loop with 5 % sent back once, 4 % reworked after a failed check, 2 %
  parked for a while, 1 % stuck for weeks, 0.4 % never finished (the backlog) — each step
  after a log-normal wait; whatever lies after ``end`` has not happened yet, so recent cases
  are open in every state.

Deadlines are approximated, not worked out on the working calendar (that costs ~30 µs a case
in Python): a working day counts as 1.4 calendar days and a working hour as 3 calendar hours,
which matches the calendar's average over weeks. Everything else is as the lifecycle writes it
(states, stages, history rows with from/to states, roles, clocks, check results, parked
intervals, refused departments).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from gridcore.taxonomy import Stage, Taxonomy

US = 1_000_000
DAY_US = 86_400 * US
# step slots, in the order they can happen; a case's path masks out those it never takes
SLOTS = ["report", "verify", "void", "merge", "register", "dispatch", "send_back", "dispatch",
         "accept", "park", "unpark", "handle", "feed_back", "check", "rework", "handle",
         "feed_back", "check", "close"]
FROM = [None, "reported", "verified", "reported", "verified", "registered", "dispatched",
        "sent_back", "dispatched", None, None, "accepted", "handled", "fed_back", "checked",
        "rework", "handled", "fed_back", "checked"]
TO = ["reported", "verified", "voided", "merged", "registered", "dispatched", "sent_back",
      "dispatched", "accepted", None, None, "handled", "fed_back", "checked", "rework",
      "handled", "fed_back", "checked", "closed"]
# median wait before each step, in minutes (log-normal, sigma 0.8)
WAIT_MIN = [0, 20, 30, 15, 10, 5, 60, 10, 45, 60, 2880, 240, 15, 120, 20, 480, 15, 120, 20]
ROLE = ["", "grid_worker", "dispatcher", "dispatcher", "dispatcher", "dispatcher",
        "department_handler", "dispatcher", "department_handler", "manager", "manager",
        "department_handler", "department_handler", "grid_worker", "dispatcher",
        "department_handler", "department_handler", "grid_worker", "dispatcher"]
SOURCES = np.array(["grid_worker", "hotline", "citizen", "machine", "open311"])
SOURCE_P = np.array([0.45, 0.35, 0.10, 0.07, 0.03])
SOURCE_ROLE = {"grid_worker": "grid_worker", "hotline": "dispatcher", "citizen": "system",
               "machine": "system", "open311": "system"}
EVENT_WEIGHT = {"E0102": 12, "E0103": 9, "E0105": 5, "E0106": 6, "E0201": 5, "E0503": 7,
                "E0504": 4, "E0502": 3}  # the rest of the event classes: 2 each


@dataclass
class Places:
    """Where cases can happen: the city parts (or points standing in for them) with their
    grid (row index into the grid arrays), and per grid its code, id and hierarchy."""

    x: np.ndarray
    y: np.ndarray
    part_code: pa.Array  # string, null where the point is not a part
    part_class: pa.Array  # string (4 digits)
    grid: np.ndarray  # int32 index into the grid arrays
    weight_cdf: np.ndarray  # cumulative heat of the places
    grid_code: pa.Array
    grid_id: np.ndarray
    grid_geom: np.ndarray  # prepared polygons (shapely), for points jittered off a part
    department: dict[str, str]  # category key → department code (city-wide rule)
    street_first: set[str]  # categories whose street section is proposed first


def daily_weights(start: datetime, days: int) -> np.ndarray:
    d = np.arange(days)
    dates = np.datetime64(start.date()) + d.astype("timedelta64[D]")
    doy = (dates - dates.astype("datetime64[Y]")).astype(int)
    weekday = (dates.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 0 = Monday
    w = (1 + 0.12 * d / 365) * (1 + 0.25 * np.sin(2 * np.pi * (doy - 100) / 365))
    w *= np.where(weekday >= 5, 0.8, 1.0)
    w *= np.where((doy >= 25) & (doy < 40), 0.5, 1.0)  # around the Spring Festival
    return w / w.sum()


def instants(n: int, end: datetime, years: float, rng: np.random.Generator,
             utc_offset_h: float = 8.0) -> np.ndarray:
    """``n`` sorted report instants (µs since the epoch, UTC) over ``years`` before ``end``."""
    days = int(round(years * 365))
    start = end - timedelta(days=days)
    day = rng.choice(days, n, p=daily_weights(start, days))
    working = rng.random(n) < 0.75
    tod_h = np.where(working,
                     np.where(rng.random(n) < 0.5, rng.normal(10.0, 1.3, n),
                              rng.normal(15.0, 1.4, n)),
                     rng.uniform(0, 24, n)).clip(0, 23.999)
    start_us = int(start.timestamp() * US)
    local_midnight = start_us - int(utc_offset_h * 3600 * US)  # start is a local midnight
    t = local_midnight + day.astype(np.int64) * DAY_US + (tod_h * 3600 * US).astype(np.int64)
    t.sort()
    return t


def _limits_us(taxonomy: Taxonomy, stage: Stage) -> dict[str, int]:
    factor = {"m": 60, "h": 3600, "wh": 3 * 3600, "wd": int(1.4 * 86400)}
    out = {}
    for c in taxonomy:
        limit = c.limits.get(stage)
        if limit is not None:
            out[c.key] = int(limit.amount * factor[limit.unit.value] * US)
    return out


@dataclass
class Chunk:
    """One chunk of cases (columns of case_record) and their history rows."""

    cases: pa.Table
    history: pa.Table


def generate(places: Places, first_id: int, t: np.ndarray, end_us: int, seed: int,
             taxonomy: Taxonomy) -> Chunk:
    """Cases ``first_id…`` reported at the instants ``t`` (µs, sorted), as of ``end_us``."""
    n = len(t)
    rng = np.random.default_rng([seed, first_id])
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    where = np.searchsorted(places.weight_cdf, rng.random(n) * places.weight_cdf[-1])
    where = np.minimum(where, len(places.x) - 1)
    part_kind = (rng.random(n) < 0.4) & places.part_code.is_valid().to_numpy(
        zero_copy_only=False)[where]
    events = sorted(c.key for c in taxonomy.events())
    ew = np.array([EVENT_WEIGHT.get(k, 2) for k in events], dtype=float)
    event = np.array(events)[rng.choice(len(events), n, p=ew / ew.sum())]
    pclass = places.part_class.take(pa.array(where)).to_numpy(zero_copy_only=False)
    category = np.where(part_kind, np.char.add("P", pclass.astype(str)), event)
    jitter = np.where(part_kind, 0.0, 15.0)[:, None] * rng.uniform(-1, 1, (n, 2))
    lon = places.x[where] + jitter[:, 0] / (111_320 * np.cos(np.radians(places.y[where])))
    lat = places.y[where] + jitter[:, 1] / 111_320
    grid = places.grid[where]
    off = ~shapely.contains_xy(places.grid_geom[grid], lon, lat)  # jittered out of its grid
    lon[off], lat[off] = places.x[where][off], places.y[where][off]
    source = SOURCES[rng.choice(len(SOURCES), n, p=SOURCE_P)]
    # the path: voided, merged or the closed loop with its detours
    u = rng.random(n)
    void, merge = u < 0.06, (u >= 0.06) & (u < 0.09) & (ids > 1)  # the first has no primary
    loop = ~(void | merge)
    mask = np.zeros((n, len(SLOTS)), dtype=bool)
    mask[:, 0] = True
    mask[:, 1] = loop | (void & (rng.random(n) < 0.5))
    mask[:, 2], mask[:, 3] = void, merge
    for s in (4, 5, 8, 11, 12, 13, 18):
        mask[:, s] = loop
    sent_back = loop & (rng.random(n) < 0.05)
    rework = loop & (rng.random(n) < 0.04)
    parked = loop & (rng.random(n) < 0.02)
    mask[:, 6] = mask[:, 7] = sent_back
    mask[:, 9] = mask[:, 10] = parked
    for s in (14, 15, 16, 17):
        mask[:, s] = rework
    wait = rng.lognormal(0.0, 0.8, (n, len(SLOTS))) * np.array(WAIT_MIN) * 60 * US
    handle_scale = np.where(np.char.startswith(category, "P"), 1.0, 3.0)
    stuck = rng.random(n)
    handle_scale *= np.where(stuck < 0.01, 30.0, 1.0)  # stuck for weeks
    handle_scale *= np.where(stuck < 0.004, 3000.0, 1.0)  # the long-term backlog (years)
    wait[:, 11] *= handle_scale
    wait[:, 15] *= handle_scale
    at = t[:, None] + np.cumsum(np.where(mask, wait, 0), axis=1).astype(np.int64)
    happened = mask & (at <= end_us)
    last = len(SLOTS) - 1 - np.argmax(happened[:, ::-1], axis=1)
    to = np.array(TO, dtype=object)
    # state: the to-state of the last step that changed it (park / unpark keep the state)
    changing = happened & (to != None)[None, :]  # noqa: E711
    last_change = len(SLOTS) - 1 - np.argmax(changing[:, ::-1], axis=1)
    state = to[last_change].astype(str)
    cases = _case_columns(places, ids, t, end_us, category, lon, lat, grid, where, part_kind,
                          source, state, at, happened, last, sent_back, parked, rng, taxonomy)
    history = _history(ids, at, happened, rework, source, grid, places, cases)
    # merged cases point at the case before them in the same grid (if any, else voided)
    return Chunk(_merge_targets(cases, grid, merge & happened[:, 3]), history)


def _case_columns(places: Places, ids, t, end_us, category, lon, lat, grid, where, part_kind,  # noqa: ANN001
                  source, state, at, happened, last, sent_back, parked, rng,
                  taxonomy: Taxonomy) -> dict[str, Any]:
    n = len(ids)
    closed = state == "closed"
    # the clock: dispatch from the report, handle from the (last) dispatch or rework, check
    # from the (last) feed-back
    stage = np.full(n, "dispatch", dtype=object)
    started = t.copy()
    for slots, name in (((5, 7), "handle"), ((14,), "handle"), ((12, 16), "check")):
        for s in slots:
            hit = happened[:, s]
            stage[hit], started[hit] = name, at[hit, s]
    limit_us = np.zeros(n, dtype=np.int64)
    limit_txt = np.full(n, "", dtype=object)
    for st in (Stage.DISPATCH, Stage.HANDLE, Stage.CHECK):
        table = _limits_us(taxonomy, st)
        texts = {c.key: str(c.limits[st]) for c in taxonomy if st in c.limits}
        sel = stage == st.value
        limit_us[sel] = [table.get(k, DAY_US) for k in category[sel]]
        limit_txt[sel] = [texts.get(k, "1wd") for k in category[sel]]
    dept_of = np.array([places.department.get(k, "") for k in category], dtype=object)
    street = places.grid_code.take(pa.array(grid)).to_numpy(zero_copy_only=False)
    street = np.array([s[:9] for s in street], dtype=object)
    first = np.array([k in places.street_first for k in category])
    proposed = np.where(first, np.char.add(street.astype(str), "-CGK"), dept_of.astype(str))
    dispatched = happened[:, 5]
    refused = np.where(sent_back & happened[:, 6], np.char.add(np.char.add("{", proposed), "}"),
                       "{}")
    department = np.where(sent_back & happened[:, 7] & first, dept_of.astype(str), proposed)
    park_at, unpark_at = at[:, 9], at[:, 10]
    parked_now = parked & happened[:, 9] & ~happened[:, 10] & ~closed
    interval = parked & happened[:, 10]
    ps = pa.array(park_at, pa.timestamp("us", tz="UTC")).cast(pa.string())
    pe = pa.array(unpark_at, pa.timestamp("us", tz="UTC")).cast(pa.string())
    intervals = pc.if_else(pa.array(interval), pc.binary_join_element_wise(
        '[["', ps, '", "', pe, '"]]', ""), "[]")
    overdue = ~closed & (state != "voided") & (state != "merged") & (started + limit_us < end_us)
    code = places.grid_code.take(pa.array(grid))
    ts = pa.timestamp("us", tz="UTC")
    return {
        "id": ids, "idempotency_key": None, "category_key": category, "lon": lon, "lat": lat,
        "grid_id": places.grid_id[grid], "grid_code": code,
        "part_code": pc.if_else(pa.array(part_kind),
                                places.part_code.take(pa.array(where)), None),
        "source": source, "state": state,
        "department_code": pc.if_else(pa.array(dispatched), pa.array(department),
                                      pa.scalar(None, pa.string())),
        "proposed_department": proposed, "refused_departments": refused,
        "stage": stage,
        "stage_started_at": pa.array(started, ts), "stage_limit": limit_txt,
        "warn_at": pa.array(started + (limit_us * 0.8).astype(np.int64), ts),
        "deadline_at": pa.array(started + limit_us, ts),
        "parked_since": pa.array(np.where(parked_now, park_at, 0), ts,
                                 mask=~parked_now),
        "parked_intervals": intervals,
        "parked_seconds": np.where(interval, (unpark_at - park_at) / US, 0.0),
        "check_result": pa.array(np.where(closed, "pass", "fail"), pa.string(),
                                 mask=~(closed | (state == "rework"))),
        "supervised": overdue & (rng.random(n) < 0.3),
        "created_at": pa.array(t, ts),
        "updated_at": pa.array(at[np.arange(n), last], ts),
        "closed_at": pa.array(np.where(closed, at[:, 18], 0), ts, mask=~closed),
    }


def _history(ids, at, happened, rework, source, grid, places: Places,  # noqa: ANN001
             cases) -> pa.Table:  # noqa: ANN001
    rows, slots = np.nonzero(happened)
    role = np.array(ROLE, dtype=object)[slots]
    first = slots == 0
    role[first] = np.vectorize(SOURCE_ROLE.get, otypes=[object])(source[rows[first]])
    community = places.grid_code.take(pa.array(grid[rows])).to_numpy(zero_copy_only=False)
    dept = np.asarray(cases["proposed_department"], dtype=object)[rows]
    handler = np.char.add(dept.astype(str), " 处置员")
    actor = np.where(role == "grid_worker",
                     np.char.add("W", np.array([c[:12] for c in community], dtype=str)),
                     np.where(role == "department_handler", handler,
                              np.where(role == "dispatcher", "市城运中心派遣员",
                                       np.where(role == "manager", "市城运中心指挥长",
                                                np.char.add(source[rows].astype(str),
                                                            " channel")))))
    frm = np.array(FROM, dtype=object)[slots]
    to = np.array(TO, dtype=object)[slots]
    state_now = np.asarray(cases["state"], dtype=object)[rows]
    # park / unpark keep the state: their from/to is the state the case was in
    side = (slots == 9) | (slots == 10)
    frm[side] = "accepted"
    to[side] = "accepted"
    frm[slots == 2] = np.where(happened[rows[slots == 2], 1], "verified", "reported")
    del state_now
    return pa.table({
        "case_id": ids[rows],
        "at": pa.array(at[rows, slots], pa.timestamp("us", tz="UTC")),
        "actor": actor.astype(str), "role": role.astype(str),
        "action": np.array(SLOTS)[slots], "from_state": frm, "to_state": to.astype(str),
        "reason": np.where(np.isin(slots, (2, 3, 6, 9, 14)), "synthetic megacity step", ""),
        "details": _details(slots, dept, np.asarray(cases["department_code"].to_numpy(
            zero_copy_only=False), dtype=object)[rows], rework[rows]),
    })


def _details(slots: np.ndarray, proposed: np.ndarray, department: np.ndarray,
             failed: np.ndarray) -> np.ndarray:
    """The history rows' details as the lifecycle writes them: the department of a dispatch,
    the refusing department of a send-back, the result of a check."""
    out = np.full(len(slots), "{}", dtype=object)
    out[(slots == 13) | (slots == 17)] = '{"check_result": "pass"}'
    out[(slots == 13) & failed] = '{"check_result": "fail", "reason": "现场仍未处理好"}'
    first = slots == 5
    out[first] = np.char.add(np.char.add('{"department": "', proposed[first].astype(str)), '"}')
    again = slots == 7
    chosen = np.where(department[again] == None, proposed[again], department[again])  # noqa: E711
    out[again] = np.char.add(np.char.add('{"department": "', chosen.astype(str)), '"}')
    back = slots == 6
    out[back] = np.char.add(np.char.add('{"refused_by": "', proposed[back].astype(str)), '"}')
    return out


def _merge_targets(cases: dict[str, Any], grid: np.ndarray, merged: np.ndarray
                   ) -> dict[str, Any]:
    ids = cases["id"]
    order = np.lexsort((ids, grid))
    prev = np.full(len(ids), -1, dtype=np.int64)
    same = np.r_[False, grid[order][1:] == grid[order][:-1]]
    prev[order[1:]] = np.where(same[1:], ids[order][:-1], -1)
    # the first case of its grid in the chunk: merged into the case reported just before it
    primary = np.where(merged, np.where(prev > 0, prev, ids - 1), 0)
    cases["primary_case_id"] = pa.array(primary, pa.int64(), mask=primary == 0)
    return cases


def chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)
