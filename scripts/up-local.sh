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
# instead of `pulumi up`. PULUMI=<command> picks the CLI (default `npx --no-install pulumi`, the npm
# package `pulumi`, which downloads the CLI on first use; without it, the script says how to install it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK=local
STACK_FILE="$ROOT/Pulumi.$STACK.yaml"
DRY_RUN=0
OPERATION=up

usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
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

# The CLI must answer `pulumi version` before anything else runs. By default it is the npm package
# `pulumi` (a devDependency, node_modules/pulumi/lib/resolve.js): a small wrapper that downloads the
# real CLI from get.pulumi.com into $PULUMI_HOME/versions/<version> (~/.pulumi) on first use, so
# without internet it fails with only "pulumi: fetch failed". Say what is missing and how to get it.
check_cli() {
  local out rc=0 why last
  log "checking the Pulumi CLI (${PULUMI_CMD[*]} version; the npm package downloads the CLI on first use)"
  out="$(cd "$ROOT" && "${PULUMI_CMD[@]}" version 2>&1)" || rc=$?
  if ((rc == 0)); then
    log "pulumi CLI $(tail -n1 <<<"$out")"
    return 0
  fi
  printf '%s\n' "$out" >&2
  # The wrapper's own error line (`pulumi: <message>`), else the last line that is not npm's.
  last="$(grep -E '^pulumi: ' <<<"$out" | tail -n1 || true)"
  [[ -n "$last" ]] || last="$(grep -vE '^npm (notice|warn)' <<<"$out" | tail -n1 || true)"
  if ((rc == 126 || rc == 127)) || grep -qiE 'command not found|no such file' <<<"$out"; then
    why="the Pulumi CLI is missing: '${PULUMI_CMD[*]}' was not found"
  elif grep -qE 'npx canceled due to missing packages|could not determine executable' <<<"$out"; then
    why="the Pulumi CLI is missing: the npm package 'pulumi' is not installed in node_modules (run npm ci first)"
  elif grep -q '^Downloading pulumi v' <<<"$out"; then
    why="the Pulumi CLI is not installed and could not be downloaded (the npm package 'pulumi' fetches it from get.pulumi.com on first use: $last)"
  else
    why="the Pulumi CLI did not run ('${PULUMI_CMD[*]} version' exited $rc: $last)"
  fi
  fail "$why. Nothing was changed. Next: install the Pulumi CLI, then run npm run up:local again:
    curl -fsSL https://get.pulumi.com | sh    # Linux or macOS: installs it into ~/.pulumi/bin
    brew install pulumi/tap/pulumi            # or, on macOS, with Homebrew
  and point this script at it: PULUMI=~/.pulumi/bin/pulumi npm run up:local (with Homebrew: PULUMI=\"\$(command -v pulumi)\" npm run up:local;
  a bare PULUMI=pulumi would find node_modules/.bin/pulumi, the same downloader, first).
  With internet access the default needs no install: the npm package downloads the CLI into ~/.pulumi/versions/ by itself.$(installed_cli_hint)"
}

# An installed CLI the default does not use (outside node_modules), so the message can name it.
installed_cli_hint() {
  local dir found=""
  local -a dirs
  IFS=: read -r -a dirs <<<"${PATH:-}"
  for dir in "${dirs[@]}" "${HOME:-}/.pulumi/bin"; do
    [[ -n "$dir" && "$dir" != */node_modules/.bin && -x "$dir/pulumi" && ! -d "$dir/pulumi" ]] && { found="$dir/pulumi"; break; }
  done
  [[ -z "$found" ]] || printf '\n  An installed CLI is already here: %s (run with PULUMI=%s).' "$found" "$found"
}

# Secret names the stack file references: `[NAME]` lists (env.secret, password: [NAME], ...).
referenced_secrets() {
  grep -v '^[[:space:]]*#' "$STACK_FILE" | grep -oE '\[[A-Z][A-Z0-9_]*(, *[A-Z][A-Z0-9_]*)*\]' | tr -d '[] ' | tr ',' '\n' | sort -u
}

[[ -f "$STACK_FILE" ]] || fail "no $STACK_FILE. Next: run this from a Railhead checkout"
if ((!DRY_RUN)); then
  command -v docker >/dev/null || fail "docker is not installed. Next: install Docker and start it (the local stack runs on this machine's engine)"
  docker info >/dev/null 2>&1 || fail "the Docker engine does not answer. Next: start it (sudo systemctl start docker) and check 'docker info'"
  check_cli
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
