"""Filing a report from a route: through the process's intake groups (``api.intake_groups``)
into ``layers.cases.intake.intake_many``. ``POST /cases`` and Open311's ``POST requests`` both file
this way, so reports from either source share groups."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from fastapi import Request

from api.intake_groups import IntakeGroups
from api.routes.case_deps import get_case_settings, get_resolver
from layers.cases.intake import Filing, IntakeResult, Outcome, Report, intake_many, outcomes_at

# Who files the report, asked on the intake thread (it may look up a token or an API key:
# never on the event loop): (actor, role)
Reporter = Callable[[], tuple[str, str]]
_Job = tuple[Report, Reporter]


async def file_report(request: Request, report: Report, reporter: Reporter) -> IntakeResult:
    """The report's case (new, or the one an identical resend created); raises its error."""
    state = request.app.state
    groups: IntakeGroups[_Job, IntakeResult] | None = getattr(state, "intake_groups", None)
    settings = await get_case_settings(request)
    await get_resolver(request)
    if groups is None:

        def run(jobs: Sequence[_Job], writing: Callable[[], None]) -> list[Outcome]:
            # The app's settings and resolver as they are now (as every report read them
            # before it was filed in a group), not as they were when the groups were made.
            outcomes: list[Outcome | None] = [None] * len(jobs)
            filings: list[Filing] = []
            at: list[int] = []
            for i, (report_, reporter_) in enumerate(jobs):
                try:
                    filings.append(Filing(report_, *reporter_()))
                    at.append(i)
                except Exception as exc:  # noqa: BLE001  (this report's own error: 401, 403, 503)
                    outcomes[i] = exc
            outcomes_at(outcomes, at, intake_many(state.engine, state.case_resolver,
                                                  state.case_settings, filings,
                                                  writing=writing))
            return outcomes  # type: ignore[return-value]  (every slot is filled)

        # A plain executor rather than anyio's ``to_thread``: the same hop for less than half
        # the CPU (36 against 82 µs a call, measured under uvloop). Shut down with the app.
        # one thread more than groups worked out at once: for the group that is only writing
        state.intake_executor = ThreadPoolExecutor(settings.intake_threads + 1,
                                                   thread_name_prefix="gridcore-intake")
        groups = state.intake_groups = IntakeGroups(run, state.intake_executor,
                                                    in_flight=settings.intake_threads)
    return await groups.file((report, reporter))
