#!/usr/bin/env bash
# `npm run test:e2e`: the e2e scenarios under the apply harness (test equipment; no `pulumi up` runs
# here). Brings the rig up if it is not (tests/rig/rig.sh up keeps a healthy rig), runs the scenario
# files one at a time (they share the rig hosts), prints the summary table. Exits non-zero when any
# scenario failed. E2E_ONLY=name runs scenarios/<name>.test.ts only.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
mkdir -p tmp/e2e
summary=tmp/e2e/summary.jsonl
: >"$summary"

if [[ ${E2E_ONLY:-} != harness-semantics ]]; then
  bash tests/rig/rig.sh up
fi

# The local S3 endpoint for the data scenarios (the same test-only install tests/data/run.sh makes).
if [[ ! -e node_modules/fauxqs/dist/app.js && ! -e tmp/data-deps/node_modules/fauxqs/dist/app.js ]]; then
  mkdir -p tmp/data-deps
  [[ -f tmp/data-deps/package.json ]] || echo '{"name":"railhead-data-deps","private":true}' >tmp/data-deps/package.json
  npm install --prefix tmp/data-deps --no-audit --no-fund --loglevel=error fauxqs@1.9.2 >&2 ||
    echo "e2e: could not install fauxqs; the data scenarios will be reported as not run" >&2
fi

files=()
if [[ -n ${E2E_ONLY:-} ]]; then
  files=("tests/e2e/scenarios/${E2E_ONLY}.test.ts")
else
  for f in tests/e2e/scenarios/*.test.ts; do
    [[ $f == */harness-semantics.test.ts ]] || files+=("$f")
  done
fi

# The rig is shared with the other real-host suites: hold the tests lock while e2e uses it.
exec 8>/run/rh-rig.tests.lock
flock -w 1800 8 || { echo "e2e: another suite holds /run/rh-rig.tests.lock" >&2; exit 1; }

rc=0
# The harness's own self-test first, on its own (node's runner orders files itself): if the
# equipment is wrong, nothing after it means anything.
if [[ -z ${E2E_ONLY:-} ]]; then
  E2E_SUMMARY=$summary timeout 300 node --import tsx --test --test-reporter=spec tests/e2e/scenarios/harness-semantics.test.ts || rc=$?
fi
if ((rc == 0)); then
  E2E_SUMMARY=$summary timeout 1200 node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}" || rc=$?
fi

# Leave the shared rig's hosts without the e2e firewall (other suites probe ports from outside).
for h in $(jq -r '.hosts[].name' .rig/rig.json 2>/dev/null); do
  bash tests/rig/rig.sh ssh "$h" 'iptables -D INPUT -i eth0 -j RAILHEAD-FW 2>/dev/null; iptables -F RAILHEAD-FW 2>/dev/null; iptables -X RAILHEAD-FW 2>/dev/null; true' || true
done

echo
echo "e2e summary (apply harness; $(($(date +%s) - start)) s total)"
node --import tsx tests/e2e/summary.ts "$summary"
exit "$rc"
