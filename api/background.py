"""What a server process runs beside its requests: the event listener feeding the hub, the
supervision sweep (预警 · 自动督办), the escalation sweep (自动升级), the webhook deliveries, the
folding of the case tiles' cell deltas, the making of the cases' yearly partitions ahead
(案卷分区), the evaluation facts' catching up after a burst of writes and the scheduled
learning. Each process runs them; the
database keeps them exactly-once (an advisory lock for each sweep, the folding and the learning,
``SKIP LOCKED`` claims for webhooks), so any number of workers or machines may share one
database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import FastAPI

from api.events_hub import EventHub
from api.notify_text import event_text
from api.routes.evaluation import evaluation_model
from layers.cases.escalation import escalate_overdue
from layers.cases.supervision import sweep
from layers.db.partitions import ensure_ahead
from layers.evaluation import store as evaluation_facts
from layers.notifications import webhooks
from layers.notifications.listener import EventListener
from layers.ogc import case_cells, part_cells

log = logging.getLogger(__name__)
# The case tiles' cell counts gain a delta row per cell each write; folding them every few
# minutes keeps a hexagon's rows few (one pass over the table, under its own lock).
COMPACT_CELLS_S = 300.0
# Next year's case partition is made by every migrate; a server that runs for months (across
# New Year) makes the one after on its own, under the partitions' advisory lock. Cheap when
# nothing is missing (a catalog look-up per year), so a few times a day is plenty.
PARTITIONS_AHEAD_S = 6 * 3600.0
# A woken loop (the webhooks', woken by every committed batch of events) runs at most this
# often: under intake a wake came with every group of reports, and each run was three
# transactions (claim, look again, deliveries due) in every server process; the events that
# arrive meanwhile go in the next run, at most this much later.
WAKE_GAP_S = 0.25
# An evaluation refreshes the facts itself, one batch of marks at a time; after a burst of
# writes (a sweep supervising thousands of cases) the rest would wait for later evaluations,
# each recounting from the history meanwhile. One look a minute is one round trip when
# nothing is dirty.
EVALUATION_FACTS_S = 60.0


async def _every(seconds: float, work: Any, wake: asyncio.Event | None = None) -> None:
    """Run ``work`` (blocking: in a thread) every ``seconds``, or sooner when ``wake`` is set
    (at most every WAKE_GAP_S). A failure is logged and retried next round: a database restart
    must not end the loop."""
    first = True
    while True:
        if wake is not None:
            if not first:
                await asyncio.sleep(WAKE_GAP_S)
            first = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), seconds)
            wake.clear()
        else:
            await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(work)
        except Exception:  # noqa: BLE001
            log.exception("background work failed; retrying in %.0f s", seconds)


def start(app: FastAPI) -> None:
    state = app.state
    settings = state.settings
    notify = settings.notifications
    hub = state.event_hub = EventHub(asyncio.get_running_loop())
    state.event_listener = EventListener(state.engine, hub.publish_threadsafe,
                                         catch_up=notify.events_replay_max,
                                         wanted=hub.wanted,
                                         noticed=hub.noticed_threadsafe).start()
    tasks = []
    if notify.supervision_interval_s > 0:
        policy = notify.auto_supervision
        tasks.append(_every(notify.supervision_interval_s, lambda: sweep(
            state.engine, settings.cases, state.resolver, policy)))
    if notify.escalation_interval_s > 0:  # 自动升级 (issue 24)
        tasks.append(_every(notify.escalation_interval_s, lambda: escalate_overdue(
            state.engine, settings.cases, state.resolver)))
    tz = settings.cases.working_calendar.tz

    def deliver() -> None:
        while webhooks.fan_out(state.engine):
            pass
        while webhooks.deliver_due(state.engine, notify, lambda e: event_text(e, tz)):
            pass

    tasks.append(_every(notify.webhook_interval_s, deliver, hub.woken))
    tasks.extend(_scheduled_learning(app))
    tasks.append(_every(COMPACT_CELLS_S, lambda: case_cells.compact(state.engine)))
    tasks.append(_every(PARTITIONS_AHEAD_S, lambda: ensure_ahead(state.engine)))
    tasks.append(_every(COMPACT_CELLS_S, lambda: part_cells.compact(state.engine)))
    tasks.append(_every(EVALUATION_FACTS_S, lambda: evaluation_facts.catch_up(
        state.engine, settings.cases.working_calendar, evaluation_model(settings))))
    state.background = [asyncio.create_task(t) for t in tasks]


def _scheduled_learning(app: FastAPI) -> list[Any]:
    """定期学习: every process looks now and then; one learns when it is due (issue 22)."""
    from datetime import timedelta

    from layers.intelligence.schedule import run_if_due

    settings = app.state.settings
    intel = settings.intelligence
    if intel.learn_every_h <= 0:
        return []
    every = timedelta(hours=intel.learn_every_h)
    root = intel.index_root(settings.database.data_dir)
    return [_every(intel.learn_check_s,
                   lambda: run_if_due(app.state.engine, every, intel.kinds, root,
                                      timezone=settings.cases.city_timezone))]


def stop(app: FastAPI) -> None:
    state = app.state
    for task in getattr(state, "background", []):
        task.cancel()
    hub = getattr(state, "event_hub", None)
    if hub is not None:
        hub.stop()
    listener = getattr(state, "event_listener", None)
    if listener is not None:
        listener.stop()
