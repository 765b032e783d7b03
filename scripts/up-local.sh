#!/usr/bin/env bash
# npm run up:local: deploy the embedded `local` stack (Pulumi.local.yaml) onto this machine's Docker
# engine, from nothing, in one command.
#
#   1. state in a file backend inside the project (./.pulumi, git-ignored), chosen through
#      PULUMI_BACKEND_URL, so the login you use for staging/production is left alone;
#   2. secrets encrypted with a passphrase: PULUMI_CONFIG_PASSPHRASE, default `railhead-local`
#      (a local stack holds only values this script generated; set your own to change it);
#   3. `pulumi stack select --create local`;
#   4. every secret the stack file names is set to a random value if it is missing (value on stdin,
#      never in a process argument);
#   5. `pulumi up --yes`, then where the app answers.
#
# Options: --dry-run prints the commands instead of running them; --preview runs `pulumi preview`
# instead of `pulumi up`. PULUMI=<command> picks the CLI (default `npx --no-install pulumi`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK=local
STACK_FILE="$ROOT/Pulumi.$STACK.yaml"
DRY_RUN=0
OPERATION=up

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while (($# > 0)); do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --preview) OPERATION=preview ;;
    -h | --help) usage; exit 0 ;;
    *) echo "up-local: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

STARTED=$SECONDS
log() { printf '[up:local] %s (%ss)\n' "$*" "$((SECONDS - STARTED))"; }
fail() { printf '[up:local] ERROR %s\n' "$*" >&2; exit 1; }

read -r -a PULUMI_CMD <<<"${PULUMI:-npx --no-install pulumi}"

# Runs the CLI, or prints what would run. Never given a secret: secrets go through set_secret.
pulumi_run() {
  if ((DRY_RUN)); then
    printf '+ pulumi %s\n' "$*"
    return 0
  fi
  (cd "$ROOT" && "${PULUMI_CMD[@]}" "$@")
}

# Sets one secret from stdin (`pulumi config set` reads the value from stdin when none is given).
set_secret() {
  local name=$1
  if ((DRY_RUN)); then
    printf '+ pulumi config set --secret --path railhead:secrets.%s --stack %s < (32 random bytes, hex)\n' "$name" "$STACK"
    return 0
  fi
  random_value | (cd "$ROOT" && "${PULUMI_CMD[@]}" config set --secret --path "railhead:secrets.$name" --stack "$STACK")
}

random_value() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

# Secret names the stack file references: `[NAME]` lists (env.secret, password: [NAME], ...).
referenced_secrets() {
  grep -v '^[[:space:]]*#' "$STACK_FILE" | grep -oE '\[[A-Z][A-Z0-9_]*(, *[A-Z][A-Z0-9_]*)*\]' | tr -d '[] ' | tr ',' '\n' | sort -u
}

[[ -f "$STACK_FILE" ]] || fail "no $STACK_FILE. Next: run this from a Railhead checkout"
if ((!DRY_RUN)); then
  command -v docker >/dev/null || fail "docker is not installed. Next: install Docker and start it (the local stack runs on this machine's engine)"
  docker info >/dev/null 2>&1 || fail "the Docker engine does not answer. Next: start it (sudo systemctl start docker) and check 'docker info'"
fi

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$ROOT/.pulumi}"
if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
  export PULUMI_CONFIG_PASSPHRASE=railhead-local
  log "secrets passphrase: the documented local default (set PULUMI_CONFIG_PASSPHRASE to use your own)"
fi
[[ "$PULUMI_BACKEND_URL" == file://* ]] && ((!DRY_RUN)) && mkdir -p "${PULUMI_BACKEND_URL#file://}"
log "state backend: $PULUMI_BACKEND_URL"

log "step 1/4: select stack $STACK"
pulumi_run stack select --create "$STACK" || fail "could not select or create stack $STACK. Next: check 'pulumi whoami' with PULUMI_BACKEND_URL=$PULUMI_BACKEND_URL"

log "step 2/4: secrets"
while read -r name; do
  [[ -n "$name" ]] || continue
  if ((!DRY_RUN)) && pulumi_run config get --path "railhead:secrets.$name" --stack "$STACK" >/dev/null 2>&1; then
    log "secret $name: already set"
  else
    set_secret "$name" || fail "could not set secret $name. Next: pulumi config set --secret --path 'railhead:secrets.$name' --stack $STACK"
    log "secret $name: set to a random value"
  fi
done < <(referenced_secrets)

log "step 3/4: pulumi $OPERATION"
if [[ "$OPERATION" == up ]]; then
  pulumi_run up --yes --stack "$STACK" || fail "pulumi up failed (the lines above name the host and step). Next: fix it and run npm run up:local again; it picks up where it stopped"
else
  pulumi_run preview --stack "$STACK" || fail "pulumi preview failed. Next: read the error above"
fi

log "step 4/4: where the app answers"
if ((DRY_RUN)); then
  pulumi_run stack output urls --json --stack "$STACK"
else
  urls="$(pulumi_run stack output urls --json --stack "$STACK" 2>/dev/null || true)"
  [[ -n "$urls" ]] || urls="$(pulumi_run stack output url --stack "$STACK" 2>/dev/null || true)"
  if [[ -n "$urls" ]]; then
    log "the app answers at: $(tr -d '[]"\n' <<<"$urls" | sed 's/,/ /g')"
  else
    log "no url output yet (after a preview there is none)"
  fi
  log "next: npm run railhead -- details --stack $STACK   (logs, exec, console, rollback: docs/workflow.md)"
fi
