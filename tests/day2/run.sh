#!/usr/bin/env bash
# Day-2 commands (bin/railhead.ts + the host tool's logs/exec/details/drill-now) and the image
# pinning path against the rig: brings the rig up if .rig/rig.json is missing, then runs
# tests/day2/*.test.ts under node's test runner.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [[ ! -f .rig/rig.json ]]; then
  echo "day2: .rig/rig.json missing: bringing the rig up (bash tests/rig/rig.sh up)"
  bash tests/rig/rig.sh up
fi
exec node --import tsx --test --test-concurrency=1 tests/day2/*.test.ts
