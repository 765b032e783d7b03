#!/usr/bin/env bash
# `npm run test:e2e`: the e2e scenarios under the apply harness (test equipment; no `pulumi up` runs
# here). Brings the rig up if it is not (tests/rig/rig.sh up keeps a healthy rig), runs the scenario
# files one at a time (they share the rig hosts), prints the summary table. Exits non-zero when any
# scenario failed. E2E_ONLY=name runs scenarios/<name>.test.ts only.
# E2E_RIG_JSON=FILE uses a rig that is already up (e.g. one another checkout brought up with its own
# state dir) instead of running `rig.sh up` here, which would rebuild a rig whose rig.json it lacks.
# scenarios/local-stack.test.ts uses no rig host (this machine's engine and port 8080, and the rig's
# registry for images): it runs after the rig scenarios under its own lock, /run/rh-local-stack.lock.
# scenarios/vm.test.ts boots QEMU guests (no rig host; the rig's registry): it runs on its own after
# the rig scenarios, with its own time limit (a first VM image build on a fresh machine included).
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
mkdir -p tmp/e2e
summary=tmp/e2e/summary.jsonl
: >"$summary"

if [[ ${E2E_ONLY:-} != harness-semantics ]]; then
  if [[ -n ${E2E_RIG_JSON:-} ]]; then
    [[ -f $E2E_RIG_JSON ]] || { echo "e2e: E2E_RIG_JSON=$E2E_RIG_JSON does not exist" >&2; exit 1; }
    echo "e2e: using the rig in $E2E_RIG_JSON (not bringing one up)"
  else
    bash tests/rig/rig.sh up
  fi
fi

# The local S3 endpoint for the data scenarios (the same test-only install tests/data/run.sh makes).
if [[ ! -e node_modules/fauxqs/dist/app.js && ! -e tmp/data-deps/node_modules/fauxqs/dist/app.js ]]; then
  mkdir -p tmp/data-deps
  [[ -f tmp/data-deps/package.json ]] || echo '{"name":"railhead-data-deps","private":true}' >tmp/data-deps/package.json
  npm install --prefix tmp/data-deps --no-audit --no-fund --loglevel=error fauxqs@1.9.2 >&2 ||
    echo "e2e: could not install fauxqs; the data scenarios will be reported as not run" >&2
fi

LOCAL=tests/e2e/scenarios/local-stack.test.ts
VM=tests/e2e/scenarios/vm.test.ts
files=()
local_files=()
vm_files=()
if [[ -n ${E2E_ONLY:-} ]]; then
  case tests/e2e/scenarios/${E2E_ONLY}.test.ts in
    "$LOCAL") local_files=("$LOCAL") ;;
    "$VM") vm_files=("$VM") ;;
    *) files=("tests/e2e/scenarios/${E2E_ONLY}.test.ts") ;;
  esac
else
  for f in tests/e2e/scenarios/*.test.ts; do
    [[ $f == */harness-semantics.test.ts || $f == "$LOCAL" || $f == "$VM" ]] || files+=("$f")
  done
  local_files=("$LOCAL")
  vm_files=("$VM")
fi

# The rig is shared with the other real-host suites: hold the rig's tests lock while e2e uses it.
if [[ -z ${E2E_ONLY:-} || ${#files[@]} -gt 0 || ${#vm_files[@]} -gt 0 ]]; then
  tests_lock=/run/${RH_RIG_PREFIX:-rh}-rig.tests.lock # per rig: a second rig (RH_RIG_PREFIX) runs beside the first
  exec 8>"$tests_lock"
  flock -w 1800 8 || { echo "e2e: another suite holds $tests_lock" >&2; exit 1; }
fi

rc=0
# The harness's own self-test first, on its own (node's runner orders files itself): if the
# equipment is wrong, nothing after it means anything.
if [[ -z ${E2E_ONLY:-} ]]; then
  E2E_SUMMARY=$summary timeout 900 node --import tsx --test --test-reporter=spec tests/e2e/scenarios/harness-semantics.test.ts || rc=$?
fi
harness_ok=$((rc == 0))
if ((harness_ok && ${#files[@]} > 0)); then
  E2E_SUMMARY=$summary timeout 2400 node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}" || rc=$?
fi
if ((harness_ok && ${#vm_files[@]} > 0)); then
  E2E_SUMMARY=$summary timeout 3000 node --import tsx --test --test-reporter=spec "${vm_files[@]}" || rc=$?
  # A scenario killed by the timeout does not run its clean-up: stop what it left (pid files).
  for pidfile in tmp/e2e/vm/*/qemu.pid; do
    if [[ -f $pidfile ]]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  done
fi
# The local stack: after the rig scenarios (never at the same time as another e2e scenario), under
# the lock for this machine's port 8080 and `demo-*` containers (another checkout's e2e run).
if ((harness_ok && ${#local_files[@]} > 0)); then
  exec 7>/run/rh-local-stack.lock
  if flock -w 900 7; then
    E2E_SUMMARY=$summary timeout 600 node --import tsx --test --test-reporter=spec "${local_files[@]}" || rc=$?
  else
    echo "e2e: another run holds /run/rh-local-stack.lock" >&2
    rc=1
  fi
fi

# Leave the shared rig's hosts without the e2e firewall (other suites probe ports from outside).
for h in $(jq -r '.hosts[].name' .rig/rig.json 2>/dev/null); do
  bash tests/rig/rig.sh ssh "$h" 'iptables -D INPUT -i eth0 -j RAILHEAD-FW 2>/dev/null; iptables -F RAILHEAD-FW 2>/dev/null; iptables -X RAILHEAD-FW 2>/dev/null; true' || true
done

# ... and with the rig's own SSH host keys (a host booted as a Hetzner server presented the key its
# program generated; rig.json's hostKey, which other suites pin, is the rig's own).
jq -r '.hosts[] | select(.hostKeyFile != null) | "\(.hostKeyFile) \(.sshdPidFile)"' .rig/rig.json 2>/dev/null |
  while read -r key pidfile; do
    if [[ -f $key.rig ]] && ! cmp -s "$key" "$key.rig"; then
      cp "$key.rig" "$key"
      cp "$key.rig.pub" "$key.pub"
      kill -HUP "$(cat "$pidfile")" || true
    fi
  done

echo
echo "e2e summary (apply harness; $(($(date +%s) - start)) s total)"
node --import tsx tests/e2e/summary.ts "$summary"
exit "$rc"
