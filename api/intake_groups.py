"""Reports that arrive together are filed together (group commit).

Every report ends in one read and one write statement, and each statement has fixed costs:
a round trip, the executor's start-up, a commit and its WAL flush, a thread hop. The event loop
keeps the reports that arrive while a group is being filed; when that group is done, they go as
the next group, on one thread, in one read and one write (``api.filing`` runs them through
``layers.cases.intake.Intake``). A report that arrives to an idle process goes at once, alone;
under load a group is whatever arrived during the previous one, so groups grow with the load
and no report waits for a timer (the same idea as PostgreSQL's own group commit of WAL flushes).
Nothing here knows about cases: any work done in groups of items can use it.

Each report still gets its own answer: its own case, or its own error (a bad point, an unknown
class, a key reused with another payload) — one report's trouble is never another's.

A group that has read and worked out its reports, and only waits for its write (the statement,
then the commit's WAL flush), lets the next group start (``writing``): the next one's read and
Python then overlap that wait. Groups stay as large as with one group at a time, which two
groups started freely did not manage (they split the arrivals between them). A lone report does
not start beside a writing group, though: it waits the rest of that write (a fraction of a
millisecond) and usually goes with company, because a group of one pays all of a group's fixed
costs for one report (benchmarks/README.md, "Design figures").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from functools import partial
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# run(items, writing) → one outcome per item, in order: its result, or the exception its caller
# raises. ``run`` calls ``writing()`` (from its thread) once all that is left is the write.
RunGroup = Callable[[Sequence[Item], Callable[[], None]], Sequence["Result | Exception"]]


class IntakeGroups(Generic[Item, Result]):
    """Files items in groups on ``executor``: at most ``in_flight`` groups being read and worked
    out at a time, plus one more that is only writing; at most ``limit`` items in a group, and at
    least ``beside_writing`` to start while another group writes. Used from one event loop (a
    process's); ``executor`` needs ``in_flight + 1`` threads."""

    def __init__(self, run: RunGroup[Item, Result], executor: Executor, in_flight: int = 1,
                 limit: int = 64, beside_writing: int = 2) -> None:
        self._run = run
        self._executor = executor
        self._in_flight = in_flight
        self._limit = limit
        self._beside_writing = beside_writing
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._working: set[int] = set()  # groups not yet writing (by a number of their own)
        self._running = 0
        self._numbers = 0

    async def file(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._start()
        return await future

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        while (self._waiting and len(self._working) < self._in_flight
               and self._running <= self._in_flight
               and (self._running == len(self._working)
                    or len(self._waiting) >= self._beside_writing)):
            group, self._waiting = self._waiting[:self._limit], self._waiting[self._limit:]
            self._numbers += 1
            number = self._numbers
            self._working.add(number)
            self._running += 1

            def writing(number: int = number) -> None:  # on the group's thread
                loop.call_soon_threadsafe(self._writing, number)

            try:
                done = loop.run_in_executor(self._executor, self._run,
                                            [item for item, _ in group], writing)
            except RuntimeError as exc:  # the executor is shut down (the app is stopping)
                done = loop.create_future()
                done.set_exception(exc)
            done.add_done_callback(partial(self._finish, group, number))

    def _writing(self, number: int) -> None:
        if number in self._working:
            self._working.discard(number)
            self._start()

    def _finish(self, group: list[tuple[Item, asyncio.Future[Result]]], number: int,
                finished: asyncio.Future[Sequence[Result | Exception]]) -> None:
        self._working.discard(number)
        self._running -= 1
        try:
            outcomes: Sequence[Result | BaseException] = finished.result()
            if len(outcomes) != len(group):
                raise RuntimeError(f"a group of {len(group)} gave {len(outcomes)} outcomes")
        except (Exception, asyncio.CancelledError) as exc:  # the whole group failed: all get it
            outcomes = [exc] * len(group)
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if future.done():  # the caller is gone (client disconnected)
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        self._start()
