#!/usr/bin/env bash
# Install everything gridcore needs on a fresh Debian/Ubuntu machine: PostgreSQL + PostGIS
# (Debian packages), a virtual environment in .venv with gridcore and its Python packages.
#   scripts/install.sh          what the product needs
#   scripts/install.sh --test   plus what the tests and benchmarks need (Chromium, GDAL tools,
#                               wrk, test packages)
# Re-running is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

# -- system packages ----------------------------------------------------------------------------
need=()
ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || need+=(postgresql-15 postgresql-15-postgis-3)
# The MQTT broker of the device channel (机器发现): gridcore runs its own private mosquitto
# (gridcore broker start); the package's system-wide service is not used.
[[ -x /usr/sbin/mosquitto ]] || command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
# Chinese text in exported maps (PNG reports) needs a CJK font.
[[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]] || need+=(fonts-wqy-zenhei)
# Briefing PDFs (WeasyPrint) lay text out with Pango and HarfBuzz.
ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0' || need+=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0)
if (( want_test )); then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v ogrinfo >/dev/null 2>&1 || need+=(gdal-bin)
  # the load generator of benchmarks/bench_intake.py
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  # the briefing tests read the PDFs back: pdftotext, pdftoppm, pdffonts
  command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
fi
if (( ${#need[@]} )); then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing system packages: ${need[*]} — install them with your package manager"; exit 1
  fi
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      say "missing system packages; run as root: apt-get install -y ${need[*]}"; exit 1
    fi
  fi
  say "installing system packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# -- Python -------------------------------------------------------------------------------------
python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    python=$candidate; break
  fi
done
[[ -n "$python" ]] || { say "Python >= 3.11 is required"; exit 1; }
if [[ ! -x .venv/bin/python ]]; then
  say "creating .venv with $python"
  "$python" -m venv .venv || { say "venv failed: apt-get install -y python3-venv"; exit 1; }
fi
extras="" ; (( want_test )) && extras="[test]"
stamp=".venv/.gridcore-installed${extras}"
digest=$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$digest" ]]; then
  say "installing gridcore${extras} into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".${extras}"
  echo "$digest" > "$stamp"
fi
if (( want_test )); then
  # ogctests, the outside OGC API Features verifier (tests/api/test_ogc_conformance.py), pins
  # httpx < 0.28, pyarrow < 18, pytest < 9 and openapi-schema-validator < 0.7, below what
  # gridcore runs on: it gets an environment of its own and runs as a separate client.
  ogc_pin="ogctests==0.1.15"
  if [[ ! -x .venv-ogctests/bin/python ]] || [[ "$(cat .venv-ogctests/.pin 2>/dev/null)" != "$ogc_pin" ]]; then
    say "installing $ogc_pin into .venv-ogctests"
    rm -rf .venv-ogctests
    "$python" -m venv .venv-ogctests
    .venv-ogctests/bin/python -m pip install -q "$ogc_pin"
    echo "$ogc_pin" > .venv-ogctests/.pin
  fi
fi
say "ready: .venv/bin/gridcore"
