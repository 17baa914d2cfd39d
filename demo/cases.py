"""A few months of case history for the demo city, generated THROUGH case intake and the
lifecycle (``layers.cases.intake.Intake``, ``layers.cases.transitions.transition``) — never inserted
into tables — so every case has its resolution, proposal, clock and history as in real use.

Synthetic demo data, no real person: the reports are invented, the places and city parts are
real (street lamps out and manhole covers missing at real parts, cityscape problems beside real
litter bins, benches and bus stops). The mix: full closed loops, late handling (overdue), rework
after a failed on-site check, send-backs (退单) and re-dispatch, voided reports, duplicates merged
into their first report (并案), resends of the same report (same idempotency key), supervision
of stalled cases, and the most recent cases still open.

Events of all cases run in one global time order, as they would have happened. Idempotency keys
are stable (``demo-<version>-<n>``): a rerun recognises every stored report and skips its
steps, so nothing is duplicated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
from sqlalchemy import Engine, text

from demo.org import SYNTHETIC, dept, worker_code
from demo.report_words import describe
from gridcore.intake import Report
from gridcore.settings import Settings
from gridcore.taxonomy import Stage, Taxonomy, TimeLimit
from layers.cases.intake import Intake
from layers.cases.transitions import transition
from layers.grids.resolver import Resolver

DAYS = 120
RECENT_DAYS = 12  # cases of the last days are partly still open
CASES = 260
DISPATCHER = "演示派遣员 demo dispatcher"
MANAGER = "演示指挥长 demo manager"
# A step's payload, or a function of the case and every case so far that makes it; a report
Payload = (dict[str, Any] | Report
           | Callable[[dict[str, Any], dict[int, dict[str, Any]]], dict[str, Any] | None])


@dataclass(order=True)
class Event:
    at: datetime
    script: int
    seq: int
    action: str = field(compare=False)
    role: str = field(compare=False, default="system")
    actor: str = field(compare=False, default="")
    payload: Any = field(compare=False, default=None)


PART_PROBLEMS = {  # part class → (description, weight)
    "0120": ("路灯不亮 street lamp out", 0.22),
    "0101": ("上水井盖丢失 water cover missing", 0.04),
    "0102": ("污水井盖破损 sewage cover broken", 0.02),
    "0103": ("雨水井盖移位 drain cover displaced", 0.03),
    "0110": ("热力井盖破损 heating cover broken", 0.02),
    "0111": ("燃气井盖丢失 gas cover missing", 0.02),
    "0304": ("果皮箱满溢 litter bin overflowing", 0.05),
    "0313": ("座椅破损 bench broken", 0.03),
    "0402": ("行道树倒伏 street tree leaning", 0.02),
    "0204": ("信号灯不亮 traffic signal out", 0.02),
}
EVENTS = {  # event class → (description, weight, kind of real place it happens beside)
    "E0102": ("暴露垃圾 exposed garbage", 0.12, "0304"),
    "E0103": ("道路不洁 dirty road", 0.09, "0206"),
    "E0105": ("乱堆物堆料 goods piled on the pavement", 0.05, "0313"),
    "E0106": ("涂鸦 graffiti", 0.06, "0601"),
    "E0201": ("违章张贴小广告 illegal flyers", 0.05, "0201"),
    "E0503": ("机动车乱停放 illegal parking", 0.07, "0206"),
    "E0504": ("非机动车乱停放 bicycles blocking the way", 0.04, "0215"),
    "E0502": ("占道经营 shop occupying the street", 0.03, "0313"),
}


def _limit_delta(limit: TimeLimit) -> timedelta:
    """Rough calendar time a working-time limit spans (nights and weekends included)."""
    factor = {"m": 1 / 60, "h": 1.0, "wh": 2.6, "wd": 33.6}[limit.unit.value]
    return timedelta(hours=limit.amount * factor)


def parts_by_class(engine: Engine) -> dict[str, np.ndarray]:
    """The located city parts of each class: (code, lon, lat) rows."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT code, class_code, ST_X(geom), ST_Y(geom) FROM city_part "
            "WHERE grid_code IS NOT NULL ORDER BY code")).all()
    out: dict[str, list] = {}  # type: ignore[type-arg]
    for code, cls, x, y in rows:
        out.setdefault(cls, []).append((code, x, y))
    return {k: np.array(v, dtype=object) for k, v in out.items()}


class _Planner:
    def __init__(self, parts: dict[str, np.ndarray], end: datetime, version: str) -> None:
        self.rng = np.random.default_rng(20261122)
        # the wording has its own stream, so places, times and steps stay as they were
        self.words = np.random.default_rng(20261206)
        self.parts = parts
        self.end = end
        self.version = version
        self.taxonomy = Taxonomy.default()
        self.events: list[Event] = []

    def _at(self, start: datetime, minutes: tuple[float, float]) -> datetime:
        return start + timedelta(minutes=float(self.rng.uniform(*minutes)))

    def _place(self, cls: str, jitter_m: float) -> tuple[str, float, float]:
        pool = self.parts.get(cls)
        if pool is None or len(pool) == 0:
            pool = self.parts["0120"]
        code, x, y = pool[self.rng.integers(len(pool))]
        dx, dy = self.rng.normal(0, jitter_m, 2)
        return code, x + dx / (111_320 * math.cos(math.radians(y))), y + dy / 110_574

    def _intake_time(self, day: int) -> datetime:
        start = self.end - timedelta(days=DAYS - day)
        return start.replace(hour=8, minute=0) + timedelta(minutes=float(self.rng.uniform(
            0, 10 * 60)))

    def add(self, script: int, at: datetime, action: str, role: str, actor: str,
            payload: Payload) -> datetime:
        self.events.append(Event(at, script, len(self.events), action, role, actor, payload))
        return at

    def plan(self) -> list[Event]:
        weights = [w for _, w in PART_PROBLEMS.values()] + [w for _, w, _ in EVENTS.values()]
        keys = list(PART_PROBLEMS) + list(EVENTS)
        probabilities = np.array(weights) / sum(weights)
        recent: set[int] = set()
        for n in range(1, CASES + 1):
            key = keys[self.rng.choice(len(keys), p=probabilities)]
            day = int(self.rng.integers(0, DAYS))
            self.script(n, key, day)
            if day >= DAYS - RECENT_DAYS and self.rng.random() < 0.6:
                recent.add(n)
        return sorted(self._in_progress(recent))

    def _in_progress(self, scripts: set[int]) -> list[Event]:
        """Recent cases still under way: each stops after a random number of its steps."""
        steps: dict[int, list[Event]] = {}
        for ev in self.events:
            steps.setdefault(ev.script, []).append(ev)
        keep = []
        for script, evs in steps.items():
            if script in scripts and len(evs) > 1:
                evs = sorted(evs)[: int(self.rng.integers(1, len(evs)))]
            keep.extend(evs)
        return keep

    def script(self, n: int, key: str, day: int) -> None:
        if key in PART_PROBLEMS:
            category, (what, _) = f"P{key}", PART_PROBLEMS[key]
            part, lon, lat = self._place(key, 2.0)
            description = describe(self.words, category, part)
        else:
            category, (what, _, beside) = key, EVENTS[key]
            _, lon, lat = self._place(beside, 12.0)
            description = describe(self.words, category)
        hotline = self.rng.random() < 0.25
        source, reporter = ("hotline", "12345") if hotline else ("grid_worker", "")
        report = Report(f"demo-{self.version}-{n:04d}", category, float(lon), float(lat),
                        description=f"{description} — {SYNTHETIC}", source=source,
                        reporter=reporter)
        t = self.add(n, self._intake_time(day), "intake", "grid_worker", reporter, report)
        roll = self.rng.random()
        if roll < 0.05:  # resend from a flaky phone: the same report, the same key
            self.add(n, self._at(t, (0.5, 5)), "resend", "grid_worker", reporter, report)
        if roll > 0.94:  # a second report of the same problem, merged into this one
            self.duplicate(n, category, lon, lat, what, t)
        if 0.05 <= roll < 0.10:  # not a real case
            v = self.add(n, self._at(t, (5, 40)), "verify", "grid_worker", "{worker}", {})
            self.add(n, self._at(v, (2, 30)), "void", "dispatcher", DISPATCHER,
                     {"reason": "现场核实无此问题 not found on site"})
            return
        self.loop(n, category, t)

    def duplicate(self, n: int, category: str, lon: float, lat: float, what: str,
                  t: datetime) -> None:
        m = 10_000 + n
        dup = Report(f"demo-{self.version}-{m:05d}", category, float(lon) + 0.00003,
                     float(lat) + 0.00002, description=f"{what} (市民来电 citizen call) — "
                     f"{SYNTHETIC}", source="hotline", reporter="12345")
        d = self.add(m, self._at(t, (10, 60)), "intake", "system", "12345", dup)
        self.add(m, self._at(d, (5, 20)), "merge", "dispatcher", DISPATCHER,
                 partial(_merge_into, n))

    def loop(self, n: int, category: str, t: datetime) -> None:
        cls = self.taxonomy.get(category)
        handle = _limit_delta(cls.limits[Stage.HANDLE])
        t = self.add(n, self._at(t, (5, 40)), "verify", "grid_worker", "{worker}", {})
        t = self.add(n, self._at(t, (2, 15)), "register", "dispatcher", DISPATCHER, {})
        t = self.add(n, self._at(t, (2, 20)), "dispatch", "dispatcher", DISPATCHER, _proposed)
        roll = self.rng.random()
        if roll < 0.07:  # the department says it is not theirs; dispatched again
            t = self.add(n, self._at(t, (20, 180)), "send_back", "department_handler",
                         "{department}", {"reason": "不属于本单位职责 not our responsibility"})
            t = self.add(n, self._at(t, (10, 60)), "dispatch", "dispatcher", DISPATCHER,
                         _proposed)
        t = self.add(n, self._at(t, (10, 120)), "accept", "department_handler",
                     "{department}", {})
        if roll > 0.95:  # stalled: left in the department's hands, then supervised
            self.add(n, t + handle * 1.5, "supervise", "manager", MANAGER,
                     {"reason": "超期督办 overdue, supervised"})
            return
        late = self.rng.random() < 0.15
        span = handle * float(self.rng.uniform(1.3, 3.0) if late else
                              self.rng.uniform(0.1, 0.7))
        rework = 0.07 <= roll < 0.15
        for attempt in range(2 if rework else 1):
            t = self.add(n, t + span / (attempt + 1), "handle", "department_handler",
                         "{department}", {})
            t = self.add(n, self._at(t, (5, 60)), "feed_back", "department_handler",
                         "{department}", {})
            result = "fail" if rework and attempt == 0 else "pass"
            t = self.add(n, self._at(t, (10, 50)), "check", "grid_worker", "{worker}",
                         {"check_result": result} if result == "pass" else
                         {"check_result": result, "reason": "现场仍未处理好 still not fixed"})
            if result == "fail":
                t = self.add(n, self._at(t, (5, 30)), "rework", "dispatcher", DISPATCHER,
                             {"reason": "现场核查未通过 on-site check failed"})
        self.add(n, self._at(t, (5, 30)), "close", "dispatcher", DISPATCHER,
                 {"check_result": "pass"})


def _merge_into(primary: int, case: dict[str, Any], cases: dict[int, dict[str, Any]]
                ) -> dict[str, Any] | None:
    if primary not in cases:
        return None
    return {"primary_case_id": cases[primary]["id"], "reason": "重复上报 duplicate report"}


def _proposed(case: dict[str, Any], _cases: dict[int, dict[str, Any]]) -> dict[str, Any]:
    # with every rule refused the operations centre takes it (a dispatcher's choice)
    return {"department": case["proposal"]["department"] or dept("CY")}


def _reporting_worker(resolver: Resolver, report: Report) -> str | None:
    """A grid worker's report is filed by the worker of the community it lies in (the
    evaluation of workers counts their reports by the filing actor)."""
    if report.source != "grid_worker" or report.lon is None or report.lat is None:
        return None
    try:
        community = resolver.resolve(report.lon, report.lat).community
    except Exception:  # noqa: BLE001 - outside the city: intake says so when it files
        return None
    return worker_code(community.code) if community is not None else None


def generate_history(engine: Engine, settings: Settings, grids: gpd.GeoDataFrame,
                     step: Callable[[str], None], version: str = "helsinki-1") -> int:
    """Run the planned reports and steps through intake and the lifecycle; returns the number
    of cases that exist afterwards for this history."""
    tz = ZoneInfo(settings.cases.city_timezone)
    end = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    events = [e for e in _Planner(parts_by_class(engine), end, version).plan()
              if e.at <= datetime.now(tz)]
    resolver = Resolver(engine, settings.resolve, settings.h3_resolution)
    intake = Intake(engine, resolver, settings.cases)
    cases: dict[int, dict[str, Any]] = {}
    fresh: dict[int, bool] = {}
    resends = steps = 0
    for ev in events:
        if ev.action in ("intake", "resend"):
            actor = ev.actor or _reporting_worker(resolver, ev.payload) or "demo"
            result = intake.file_report(ev.payload, actor=actor, role=ev.role, now=ev.at)
            if ev.action == "resend":
                resends += not result.created
                continue
            cases[ev.script], fresh[ev.script] = result.case, result.created
            continue
        case = cases.get(ev.script)
        if case is None or not fresh.get(ev.script):
            continue  # stored by an earlier run: its steps are stored too
        payload = ev.payload(case, cases) if callable(ev.payload) else ev.payload
        if payload is None:
            continue
        actor = ev.actor.format(worker=worker_code(case["community_code"] or ""),
                                department=case["department"] or "")
        cases[ev.script] = transition(engine, settings.cases, resolver, case["id"], ev.action,
                                      actor, ev.role, payload, now=ev.at)
        steps += 1
    states: dict[str, int] = {}
    for case in cases.values():
        states[case["state"]] = states.get(case["state"], 0) + 1
    step(f"case history: {len(cases)} cases over {DAYS} days through intake and the "
         f"lifecycle ({steps} steps, {resends} resends recognised); states "
         + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    return len(cases)
