"""Filing reports from routes into the one intake service (``layers.cases.intake.Intake``),
through the process's group commit (``api.intake_groups``). ``POST /cases`` and Open311's
``POST requests`` both file this way, so reports from either source share groups.

A route resolves who files (the signed-in user, the API key's source, the development
stand-in) before it files: a group receives plain :class:`gridcore.intake.Filing` values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request

from api.intake_groups import IntakeGroups
from gridcore.intake import Filing
from layers.cases.intake import Intake, IntakeResult, Outcome
from layers.channels.alarms import AlarmService
from layers.channels.geocoder import Geocoder


def start(app: FastAPI) -> None:
    """The app's intake service and its groups, the geocoder, and the alarm service of the
    HTTP alarm webhook (from the lifespan, once the resolver is up)."""
    state = app.state
    settings = state.settings.cases
    state.geocoder = Geocoder(state.engine, state.resolver)
    state.intake = intake = Intake(state.engine, state.resolver, settings, state.geocoder,
                                   state.settings.channels.geocode_min_confidence)
    state.alarms = AlarmService(state.engine, intake, state.resolver, settings)

    def run(filings: Sequence[Filing], writing: Callable[[], None]) -> list[Outcome]:
        with intake.prepare(filings) as group:  # the read; each case worked out
            writing()  # only the write is left: the next group may start meanwhile
            return group.write()

    # A plain executor rather than anyio's ``to_thread``: the same hop for less than half the
    # CPU. One thread more than groups worked out at once: for the group that is only writing.
    state.intake_executor = ThreadPoolExecutor(settings.intake_threads + 1,
                                               thread_name_prefix="gridcore-intake")
    state.intake_groups = IntakeGroups(run, state.intake_executor,
                                       in_flight=settings.intake_threads)


def stop(app: FastAPI) -> None:
    executor = getattr(app.state, "intake_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)


async def file_report(request: Request, filing: Filing) -> IntakeResult:
    """The report's case (new, or the one an identical resend created); raises its error."""
    groups: IntakeGroups[Filing, IntakeResult] = request.app.state.intake_groups
    return await groups.file(filing)
