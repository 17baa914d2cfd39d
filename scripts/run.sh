#!/usr/bin/env bash
# README command 1: install everything, build the demo city on the embedded PostGIS, serve it.
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo runs in development mode (a fixed signing key, loopback only); a deployment sets
# GRIDCORE_ENV=production and its own GRIDCORE_SECRET_KEY, or the service refuses to start.
export GRIDCORE_ENV="${GRIDCORE_ENV:-development}"
scripts/install.sh
.venv/bin/gridcore demo
# Devices' alarms (机器发现): a private MQTT broker on loopback and the consumer that files
# them; the consumer stops with the service.
.venv/bin/gridcore broker start
.venv/bin/gridcore ingest mqtt &
ingest=$!
trap 'kill "$ingest" 2>/dev/null; wait "$ingest" 2>/dev/null' EXIT
.venv/bin/gridcore serve "$@"
