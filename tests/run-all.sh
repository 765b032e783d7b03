#!/usr/bin/env bash
# `npm test`: every check and test suite, in the order that fails fastest. Each stage's output is
# kept under .rig/test-logs/; the closing line sums node's test counts over all suites.
# RIG_KEEP=1 leaves the rig up afterwards (for a developer re-running one suite).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
logdir=.rig/test-logs
mkdir -p "$logdir"
declare -a names=() results=() secs=()
failed_stages=0

stage() {
  local name=$1
  shift
  local log="$logdir/$name.log" start end rc
  printf '\n==> %s: %s\n' "$name" "$*"
  start=$(date +%s)
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  end=$(date +%s)
  names+=("$name")
  secs+=("$((end - start))")
  if ((rc == 0)); then results+=("pass"); else results+=("FAIL($rc)"); failed_stages=$((failed_stages + 1)); fi
}

count() { # sums node's closing "# pass N" (tap) or "ℹ pass N" (spec) lines over all stage logs
  local what=$1
  cat "$logdir"/*.log 2>/dev/null | sed -n -E "s/^(# |ℹ )$what ([0-9]+)$/\2/p" | awk '{s+=$1} END {print s+0}'
}

rm -f "$logdir"/*.log
shell_files=()
while IFS= read -r f; do shell_files+=("$f"); done < <(git ls-files '*.sh' '.ci/run' 'components/host-tool/main.sh' | sort -u)

stage typecheck npx tsc --noEmit -p .
stage lint npx eslint .
stage shellcheck shellcheck -x -P SCRIPTDIR "${shell_files[@]}"
stage unit bash tests/run-unit.sh
stage workflows node --import tsx --test tests/workflows/*.test.ts

stage rig-up bash tests/rig/rig.sh up
if [[ "${RIG_KEEP:-0}" != 1 ]]; then trap 'bash tests/rig/rig.sh down >/dev/null 2>&1 || true' EXIT; fi
stage rig node --import tsx --test tests/rig/rig.test.ts
stage host-tool bash tests/host-tool/run.sh
[[ -f tests/data/run.sh ]] && stage data bash tests/data/run.sh
[[ -f tests/day2/run.sh ]] && stage day2 bash tests/day2/run.sh
stage e2e bash tests/e2e/run.sh

printf '\n%-12s %-10s %s\n' stage result seconds
for i in "${!names[@]}"; do printf '%-12s %-10s %s\n' "${names[$i]}" "${results[$i]}" "${secs[$i]}"; done
passed=$(count pass)
failed=$(count fail)
skipped=$(count skipped)
echo
if ((failed_stages > 0 && failed == 0)); then failed=$failed_stages; fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
((failed_stages == 0))
