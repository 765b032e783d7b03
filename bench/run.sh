#!/usr/bin/env bash
# Cutover benchmark against a rig host (brings the rig up if .rig/rig.json is missing).
# Usage: bash bench/run.sh [--host h1] [--cutovers 3] [--connections 16]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ! -f .rig/rig.json ]]; then
  echo "bench: .rig/rig.json missing: bringing the rig up (bash tests/rig/rig.sh up)"
  bash tests/rig/rig.sh up
fi
exec node --import tsx bench/cutover.ts "$@"
