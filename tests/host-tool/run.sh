#!/usr/bin/env bash
# Host tool checks: shellcheck on the sources and the bundle, then the real-host tests (tests/rig).
# Brings the rig up if .rig/rig.json is missing. Prints a SKIP line for anything skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

echo "host-tool: shellcheck (sources and bundle)"
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "host-tool: FAIL shellcheck is not installed (apt-get install -y shellcheck)" >&2
  exit 1
fi
bundle=$(mktemp /tmp/railhead-host-bundle.XXXXXX)
trap 'rm -f "$bundle"' EXIT
node --import tsx components/host-tool/bundle.ts "$bundle"
(cd components/host-tool && shellcheck -x main.sh lib/*.sh)
shellcheck "$bundle"
echo "host-tool: shellcheck clean"

if [[ ! -f .rig/rig.json ]]; then
  echo "host-tool: .rig/rig.json missing: bringing the rig up (bash tests/rig/rig.sh up)"
  bash tests/rig/rig.sh up
fi
echo "host-tool: tests against the rig"
exec node --import tsx --test --test-concurrency=3 tests/host-tool/*.test.ts
