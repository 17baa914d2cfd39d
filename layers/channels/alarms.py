"""Alarms into cases (告警转案卷): the one service both channels — MQTT
(``layers.channels.mqtt``) and the HTTP webhook (``POST /ingest/alarms``) — hand alarms to.

For each alarm, under a lock on its device's row (two copies of one alarm never both open a
case): the device and its open cases are read, the domain decides (:func:`gridcore.devices.
decide`), and the decision is carried out through the product's own paths — a new case through
the one intake service (``Intake``, source ``iot`` / ``video``, filed by ``device:<code>``,
idempotent on the alarm's message id), a repeat, a close proposal or a close through the
lifecycle (``alarm``, ``propose_close``, ``auto_close``; a trusted device's new case through
``verify``). Counters say what came in and what became of it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from gridcore.devices import Alarm, Decision, Device, Outcome, case_key, decide
from gridcore.errors import Forbidden, GridcoreError, ValidationError
from gridcore.intake import Report
from gridcore.settings import CaseSettings
from layers.cases.intake import Intake
from layers.cases.resolving import Resolves
from layers.cases.transitions import transition
from layers.channels.devices import count_repeat, get_device, link_case, open_cases, seen

log = logging.getLogger(__name__)


class AlarmService:
    """Turns alarms into cases in ``engine``'s database, through ``intake`` and the lifecycle."""

    def __init__(self, engine: Engine, intake: Intake, resolver: Resolves,
                 settings: CaseSettings) -> None:
        self.engine = engine
        self.intake = intake
        self.resolver = resolver
        self.settings = settings
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.stats[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.stats)

    def receive(self, alarm: Alarm, source: str | None = None,
                now: datetime | None = None) -> list[dict[str, Any]]:
        """Carry out one alarm; what became of it, per class it touched. ``source``: the
        sending key's purpose (HTTP), which must be the device's; None: the channel trusts the
        device's own (MQTT, whose broker authenticates the device)."""
        now = now or datetime.now(UTC)
        self.count("received")
        try:
            outcomes = self._receive(alarm, source, now)
        except GridcoreError as exc:
            self.count(f"rejected.{exc.kind}")
            raise
        for o in outcomes:
            self.count(o["outcome"])
        return outcomes

    def _receive(self, alarm: Alarm, source: str | None, now: datetime
                 ) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            device = get_device(conn, alarm.device, lock=True)
            if device is None:
                raise ValidationError(f"device {alarm.device!r} is not registered "
                                      "(gridcore devices add)", field="device",
                                      value=alarm.device)
            if source is not None and source != device.source:
                raise Forbidden(f"device {device.code} is a {device.source} device; this key "
                                f"files {source} alarms", device=device.code, source=source)
            decisions = decide(device, alarm, open_cases(conn, device.code))
            out = []
            for decision in decisions:
                out.append(self._carry_out(conn, device, alarm, decision, now))
            seen(conn, device.code, alarm.kind, alarm.state, now)
        return out

    def _carry_out(self, conn: Any, device: Device, alarm: Alarm, decision: Decision,
                   now: datetime) -> dict[str, Any]:
        actor = f"device:{device.code}"
        record = {"device": device.code, "alarm": alarm.kind, "state": alarm.state,
                  "value": alarm.value, "at": alarm.at.isoformat() if alarm.at else None,
                  "id": alarm.message_id, **alarm.extra}
        base = {"outcome": decision.outcome.value, "category": decision.category,
                "case_id": decision.case_id}
        if decision.outcome is Outcome.IGNORED:
            return base
        if decision.outcome is Outcome.FILED:
            assert decision.category is not None
            report = Report(case_key(device.code, alarm, decision.category), decision.category,
                            device.lon, device.lat, description=self._describe(device, alarm),
                            source=device.source, reporter=device.code)
            result = self.intake.file_report(report, actor=actor, role="system", now=now)
            case_id = int(result.case["id"])
            verified = False
            if result.created and device.trusted:  # 可信设备: no one needs to go and look
                self._step(case_id, "verify", actor, {"reason": "trusted device"}, now)
                verified = True
            # linked after the step: the link's foreign key share-locks the case row until
            # this transaction ends, which the step's own lock would wait for
            link_case(conn, device.code, decision.category, case_id, alarm.kind or "", now)
            if not result.created:  # a redelivered message: the case it opened already
                return {**base, "outcome": Outcome.REPEAT.value, "case_id": case_id,
                        "redelivered": True}
            return {**base, "case_id": case_id, "public_no": result.case["public_no"],
                    "verified": verified}
        assert decision.case_id is not None
        if decision.outcome is Outcome.REPEAT:
            self._step(decision.case_id, "alarm", actor, {"alarm": record}, now)
            count_repeat(conn, device.code, decision.case_id, now)
        elif decision.outcome is Outcome.PROPOSED:
            self._step(decision.case_id, "propose_close", actor, {
                "reason": f"device {device.code} reads normal again; the class needs an "
                          "on-site check before closing", "alarm": record}, now)
        else:
            self._step(decision.case_id, "auto_close", actor, {
                "reason": f"device {device.code} reads normal again; the class may be closed "
                          "on the device's word (machine_close.csv)", "alarm": record}, now)
        return base

    def _step(self, case_id: int, action: str, actor: str, payload: dict[str, Any],
              now: datetime) -> None:
        transition(self.engine, self.settings, self.resolver, case_id, action, actor,
                   "system", payload, now=now)

    @staticmethod
    def _describe(device: Device, alarm: Alarm) -> str:
        what = f"{device.name or device.code} ({device.kind or device.source}): {alarm.kind}"
        if alarm.value is not None:
            what += f", value {alarm.value:g}"
        return f"{what}. {alarm.description}".strip()
