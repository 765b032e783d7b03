#!/usr/bin/env bash
# Unit tests: every tests/unit/*.test.ts under node's test runner (each file in its own process, so a
# file may set the mock runtime up for its own stack). Exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
files=(tests/unit/*.test.ts)
if ((${#files[@]} == 0)); then
  echo "no unit tests found under tests/unit" >&2
  exit 1
fi
exec node --import tsx --test "${files[@]}"
