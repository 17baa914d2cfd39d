#!/usr/bin/env bash
# README command 2: install everything (test extras included), check the code (ruff, mypy, the
# import contract of docs/architecture.md) and run the whole test suite.
# Arguments go to pytest (GRIDCORE_TEST_WORKERS=0: one process).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports
# The suite on GRIDCORE_TEST_WORKERS processes (pytest-xdist; default 3 on this 2-core machine:
# about half of a serial run is waiting on servers, browsers and the database), each with a test
# database of its own; a file's tests run together in one process, so its module-scoped servers
# and browsers start once. A single file or directory runs the same way with plain pytest.
# --no-loadscope-reorder: files go to the processes in collection order, the heaviest first
# (tests/conftest.py HEAVY_FIRST); pytest-xdist's default sends the files with the most tests
# first, which started the demo city's build and the fuzzer last and left one process running
# them for minutes after the others had finished.
# --durations: the slowest steps of every run in its log (where the next minute is to be won).
exec .venv/bin/python -m pytest -n "${GRIDCORE_TEST_WORKERS:-3}" --dist loadfile \
    --no-loadscope-reorder --durations=25 "$@"
