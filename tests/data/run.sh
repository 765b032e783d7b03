#!/usr/bin/env bash
# Real-host data-path tests (tests/data/*.test.ts): accessories, Litestream with the real 0.3.13
# binary, restores, drills. Against the rig's hosts when .rig/rig.json exists (tests/rig/rig.sh up),
# else against this machine's Docker engine with the rig's test images (built here if missing).
# RAILHEAD_DATA_TARGET=local forces this machine's engine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

log() { printf '[data] %s\n' "$*" >&2; }

# Test-only packages: the litestream binary (used by the bench and by the rig's image) and the S3
# fake. From the project's node_modules when it has them, else installed into tmp/data-deps.
ensure_test_packages() {
  if [[ -e node_modules/fauxqs/dist/app.js && -e node_modules/@flydotio/litestream-linux-x64/litestream ]]; then return; fi
  if [[ -e tmp/data-deps/node_modules/fauxqs/dist/app.js && -e tmp/data-deps/node_modules/@flydotio/litestream-linux-x64/litestream ]]; then return; fi
  log "installing test-only packages into tmp/data-deps (fauxqs@1.9.2, @flydotio/litestream-linux-x64@1.0.1)"
  mkdir -p tmp/data-deps
  [[ -f tmp/data-deps/package.json ]] || echo '{"name":"railhead-data-deps","private":true}' >tmp/data-deps/package.json
  npm install --prefix tmp/data-deps --no-audit --no-fund --loglevel=error fauxqs@1.9.2 @flydotio/litestream-linux-x64@1.0.1 >&2
}

ensure_local_images() {
  docker info >/dev/null 2>&1 || { log "no Docker engine on this machine (start dockerd, or bring the rig up)"; exit 1; }
  local missing=0 i
  for i in postgres:15 redis:7 litestream:0.3.13 app:v1 app:v2; do
    docker image inspect "railhead-test/$i" >/dev/null 2>&1 || missing=1
  done
  if [[ $missing == 1 ]]; then
    log "building the rig's test images on this machine's engine (tests/rig/rig.sh images)"
    bash tests/rig/rig.sh images >&2
  fi
}

ensure_test_packages
if [[ -f .rig/rig.json && ${RAILHEAD_DATA_TARGET:-} != local ]]; then
  log "target: rig hosts from .rig/rig.json"
else
  export RAILHEAD_DATA_TARGET=local
  log "target: this machine's Docker engine"
  ensure_local_images
fi
files=("$@")
[[ ${#files[@]} -gt 0 ]] || files=(tests/data/*.test.ts)
exec node --import tsx --test --test-concurrency=1 "${files[@]}"
