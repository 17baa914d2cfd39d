#!/usr/bin/env bash
# README command 2: install everything (test extras included), check the code (ruff, mypy, the
# import contract of docs/architecture.md) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
