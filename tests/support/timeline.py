"""Where the suite's wall time goes: each test file's span on its process, in every run's log.

``--durations`` names the slowest steps but not the run's shape: on 3 processes (scripts/test.sh)
the whole suite lasts as long as its busiest process, and a file started late can keep one
process working minutes after the others ran out of work. Each process appends one line per test
file (its process, the file, when it started and ended, seconds since the run began) to
``artifacts/timeline-<run>.tsv``; at the end the controller prints each process's busy time,
when it finished, and its longest files. It only reads clocks: nothing is timed against a limit.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support.data import ARTIFACTS
from tests.support.demo_db import run_id

_STARTED = "GRIDCORE_TEST_T0"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def path(config: pytest.Config) -> Path:
    return ARTIFACTS / f"timeline-{run_id(config)[:16]}.tsv"


class Timeline:
    """One process's file spans (pytest-xdist --dist loadfile: a file runs on one process)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.t0 = float(os.environ.setdefault(_STARTED, repr(time.time())))
        self.current: str | None = None
        self.began = 0.0

    def _close(self) -> None:
        if self.current is None:
            return
        now = time.time() - self.t0
        ARTIFACTS.mkdir(exist_ok=True)
        with path(self.config).open("a", encoding="utf-8") as out:
            out.write(f"{_worker()}\t{self.current}\t{self.began:.1f}\t{now:.1f}\n")
        self.current = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        file = nodeid.split("::")[0]
        if file != self.current:
            self._close()
            self.current, self.began = file, time.time() - self.t0

    def pytest_sessionfinish(self) -> None:
        self._close()


def summary(path: Path) -> list[str]:
    """Per process: busy seconds, when its last file ended, its three longest files."""
    spans: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    if not path.exists():
        return []
    for line in path.read_text(encoding="utf-8").splitlines():
        worker, file, start, end = line.split("\t")
        spans[worker].append((float(start), float(end), file))
    lines = []
    for worker in sorted(spans):
        rows = spans[worker]
        busy = sum(e - s for s, e, _ in rows)
        longest = sorted(rows, key=lambda r: r[0] - r[1])[:3]
        lines.append(f"{worker}: {len(rows)} files, busy {busy:.0f} s, last ended at "
                     f"{max(e for _, e, _ in rows):.0f} s; longest: " + ", ".join(
                         f"{f.removeprefix('tests/')} {e - s:.0f} s" for s, e, f in longest))
    return lines
