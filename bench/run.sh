#!/usr/bin/env bash
# Release benchmarks against rig hosts (brings a 4-host rig up if .rig/rig.json is missing):
# 1. bench/cutover.ts: cutovers under load (failed requests) and the release overhead beyond the
#    app's own time to healthy, per step, with and without load;
# 2. bench/fleet.ts: a rollout to 1, 2 and 4 hosts with boot.limit 1 and 2 (wall time per group).
# Usage: bash bench/run.sh [--host h1] [--cutovers 5] [--connections 16]   (options go to cutover.ts)
# BENCH_ONLY=cutover|fleet runs one of them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ! -f .rig/rig.json ]]; then
  echo "bench: .rig/rig.json missing: bringing the rig up with 4 hosts (bash tests/rig/rig.sh up 4)"
  bash tests/rig/rig.sh up 4
fi
only=${BENCH_ONLY:-}
if [[ -z $only || $only == cutover ]]; then
  node --import tsx bench/cutover.ts "$@"
fi
if [[ -z $only || $only == fleet ]]; then
  hosts=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(".rig/rig.json","utf8")).hosts.length)')
  list=1
  ((hosts >= 2)) && list=1,2
  ((hosts >= 4)) && list=1,2,4
  ((hosts >= 4)) || echo "bench: SKIP the 4-host fleet rollout: the rig has $hosts hosts (bash tests/rig/rig.sh up 4 for all of it)"
  node --import tsx bench/fleet.ts --hosts "$list" --limits 1,2
fi
