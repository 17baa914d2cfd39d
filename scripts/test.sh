#!/usr/bin/env bash
# README command 2: install everything (test extras included) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
