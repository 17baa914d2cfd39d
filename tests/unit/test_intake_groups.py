"""Group commit (api.intake_groups): reports arriving during a group form the next one, failures
reach every caller, a group only writing lets the next one start."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from api.intake_groups import IntakeGroups


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def test_reports_arriving_during_a_group_form_the_next_one() -> None:
    gate = threading.Event()
    seen: list[list[int]] = []

    def run(items, writing):  # type: ignore[no-untyped-def]
        seen.append(list(items))
        if len(seen) == 1:
            gate.wait(5)  # the first group is slow: the others arrive meanwhile
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    async def main() -> list[object]:
        groups = IntakeGroups(run, ThreadPoolExecutor(2), in_flight=1, limit=4)
        first = asyncio.ensure_future(groups.file(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(groups.file(i)) for i in range(1, 7)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    out = asyncio.run(main())
    assert seen == [[0], [1, 2, 3, 4], [5, 6]]  # a group holds at most `limit` reports
    assert out[0] == 0 and out[2] == 20 and out[6] == 60
    assert isinstance(out[1], ValueError) and str(out[1]) == "odd 1"  # its own error only


def test_a_group_that_fails_as_a_whole_fails_each_caller() -> None:
    def run(items, writing):  # type: ignore[no-untyped-def]
        raise ConnectionError("database gone")

    async def main() -> list[object]:
        groups = IntakeGroups(run, ThreadPoolExecutor(1))
        out = await asyncio.gather(*(groups.file(i) for i in range(3)), return_exceptions=True)
        ok = await IntakeGroups(lambda items, writing: list(items), ThreadPoolExecutor(1)).file(7)
        return [*out, ok]

    out = asyncio.run(main())
    assert all(isinstance(o, ConnectionError) for o in out[:3]) and out[3] == 7


def test_a_group_only_writing_lets_the_next_one_start() -> None:
    """Once a group has only its write left, the next reports go at once, while it writes, when
    there are two or more of them; a lone report waits for the write to end. With two groups
    running (two threads), the rest wait and go together."""
    groups_seen: list[list[int]] = []
    wrote = [threading.Event() for _ in range(4)]

    def run(items, writing):  # type: ignore[no-untyped-def]
        n = len(groups_seen)
        groups_seen.append(list(items))
        writing()
        wrote[n].wait(5)  # the write (statement and commit) takes its time
        return list(items)

    async def main() -> list[object]:
        groups = IntakeGroups(run, ThreadPoolExecutor(2), in_flight=1)
        filed = [asyncio.ensure_future(groups.file(0))]
        await _until(lambda: groups_seen == [[0]])
        await asyncio.sleep(0.1)  # its writing() reaches the event loop
        filed.append(asyncio.ensure_future(groups.file(1)))
        await asyncio.sleep(0.1)
        assert groups_seen == [[0]]  # alone, it waits for the write
        filed.append(asyncio.ensure_future(groups.file(2)))
        # two of them start while the first writes
        await _until(lambda: groups_seen == [[0], [1, 2]])
        filed += [asyncio.ensure_future(groups.file(i)) for i in (3, 4)]
        await asyncio.sleep(0.1)
        assert groups_seen == [[0], [1, 2]]  # two running: the others wait
        wrote[0].set()
        await _until(lambda: len(groups_seen) == 3)
        assert groups_seen == [[0], [1, 2], [3, 4]]  # and go together when one is done
        filed.append(asyncio.ensure_future(groups.file(5)))
        await asyncio.sleep(0.1)
        assert len(groups_seen) == 3  # two groups still run (one of them writing)
        wrote[1].set()
        await asyncio.sleep(0.1)
        assert len(groups_seen) == 3  # a lone report beside a writing group still waits
        wrote[2].set()
        await _until(lambda: groups_seen[-1] == [5])  # nothing writes: it goes alone
        wrote[3].set()
        return await asyncio.gather(*filed)

    assert asyncio.run(main()) == [0, 1, 2, 3, 4, 5]


def test_reports_after_shutdown_get_an_error_not_a_hang() -> None:
    async def main() -> object:
        executor = ThreadPoolExecutor(1)
        executor.shutdown()
        groups = IntakeGroups(lambda items, writing: list(items), executor)
        try:
            return await asyncio.wait_for(groups.file(1), 5)
        except RuntimeError as exc:
            return exc

    assert isinstance(asyncio.run(main()), RuntimeError)

