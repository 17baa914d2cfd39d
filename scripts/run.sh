#!/usr/bin/env bash
# README command 1: install everything, build the demo city on the embedded PostGIS, serve it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
.venv/bin/gridcore demo
exec .venv/bin/gridcore serve "$@"
