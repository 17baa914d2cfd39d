"""Test harness. The suite is sorted by kind:

- ``tests/unit`` — no database, no server: ``pytest tests/unit`` runs in seconds anywhere;
- ``tests/db`` — storage and the command line on a real PostGIS;
- ``tests/api`` — the HTTP service (in-process TestClient or a live server);
- ``tests/browser`` — pages driven in headless Chromium;
- ``tests/notebooks`` — the analysts' notebooks executed end to end;
- ``tests/support`` — planted cities, servers, browsers and the database fixtures.

Real data come from ``../shared/data`` (``tests.support.data.shared_file``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.support.data import ARTIFACTS
from tests.support.demo_db import drop_template, run_id
from tests.support.timeline import Timeline, summary
from tests.support.timeline import path as timeline_path

# The database fixtures (db, engine, client, cli_env…); they import storage lazily.
pytest_plugins = ("tests.support.database",)

# Python caches compiled modules (__pycache__, git-ignored) for the processes the suite starts
# (pytest-xdist's, every live server and CLI run, the notebooks' kernels): with
# PYTHONDONTWRITEBYTECODE set, as in some shells and containers, each of them compiled the
# project's 40,000 lines again (~1.5 s of CPU a process).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
# Tests sign their own tokens: a per-run random secret (never the development default).
os.environ.setdefault("GRIDCORE_SECRET_KEY", "test-" + uuid.uuid4().hex + uuid.uuid4().hex)
# Development mode: a request without a token may act under the X-Role / X-Actor it names
# (the stand-in most route tests use). Tests of enforcement run the app in production mode.
os.environ.setdefault("GRIDCORE_ENV", "development")
# The audit sealer anchors every chain head it makes (layers.security.anchor): the test
# databases' anchors go to a file of the run's own, not to the data dir of the shared cluster.
os.environ.setdefault("GRIDCORE_AUDIT_ANCHOR_FILE", str(
    Path(tempfile.mkdtemp(prefix="gridcore-anchors-")) / "audit-anchor.jsonl"))
# The supervision sweep (预警 · 自动督办) runs when a test asks it to, with the clock the test
# chooses: a server's own sweep would warn and supervise the planted cases behind its back.
os.environ.setdefault("GRIDCORE_SUPERVISION_INTERVAL_S", "0")
os.environ.setdefault("GRIDCORE_ESCALATION_INTERVAL_S", "0")  # a test turns it on
# no scheduled learning in tests (issue 22): a test that wants it sets its own
os.environ.setdefault("GRIDCORE_INTEL_LEARN_EVERY_H", "0")


# The files that take minutes (a demo city built from OSM, browsers walked through every
# screen, real history trained on, the fuzzer), biggest first by their summed setup, call and
# teardown (a full run's --durations=0, session 11). scripts/test.sh hands files to its processes
# in collection order (pytest-xdist --dist loadfile --no-loadscope-reorder): one of these started
# last kept one process busy minutes after the others had run out of work. Only the order
# changes.
HEAVY_FIRST = (
    "tests/db/test_demo.py",
    "tests/browser/test_dispatch_browser.py",
    "tests/browser/test_desk_narrow_browser.py",
    "tests/browser/test_desk_browser.py",
    "tests/db/test_intelligence_real.py",
    "tests/api/test_api_fuzz.py",
    "tests/api/test_api_fuzz_roles.py",
    "tests/db/test_health_days.py",
    "tests/browser/test_field_browser.py",
    "tests/api/test_health_api.py",
    "tests/api/test_access_table.py",
    "tests/db/test_resolve_batch.py",
    "tests/api/test_field_api.py",
    "tests/api/test_security_round2.py",
    "tests/api/test_serve_workers.py",
    "tests/browser/test_map_phone_browser.py",
    "tests/api/test_cases_intake.py",
    "tests/api/test_evaluation_api.py",
    "tests/db/test_briefing.py",
    "tests/notebooks/test_cluster_notebook.py",
    "tests/browser/test_map_demo_browser.py",
    "tests/browser/test_intel_browser.py",
    "tests/db/test_megacity.py",
    "tests/api/test_open311.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_configure(config: pytest.Config) -> None:
    run_id(config)  # the run's id, fixed before pytest-xdist hands it to its processes
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        # the process that runs the tests (pytest-xdist's controller only hears of them)
        config.pluginmanager.register(Timeline(config), "gridcore-timeline")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    lines = summary(timeline_path(config))
    if lines:
        terminalreporter.section("where the wall time went (tests/support/timeline.py)")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    drop_template(session.config)  # the demo city's template database of this run


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
