#!/usr/bin/env bash
# railhead-host: entry point, global options and dispatch. Each area's lib/<area>.sh defines
# `cmd_<word>` for its first command word (cmd_proxy, cmd_release, ...) and registers its help
# line with rh_register_command, so a new area needs no change here.
set -euo pipefail

# >>> dev-sources
# Run from the source tree: load the libraries the bundle would contain (bundle.ts strips this).
RAILHEAD_SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
source "$RAILHEAD_SOURCE_DIR/lib/common.sh"
for rh_lib in "$RAILHEAD_SOURCE_DIR"/lib/*.sh; do
  [[ $rh_lib == */common.sh ]] && continue
  # shellcheck source=/dev/null
  source "$rh_lib"
done
unset rh_lib
# <<< dev-sources

main_help() {
  cat <<HELP
railhead-host $RAILHEAD_TOOL_VERSION: what Railhead runs on each host (Docker, HAProxy, releases).

Usage: railhead-host [--host-label NAME] COMMAND [ARGS...]   (COMMAND --help for details)

Commands:
  version                version of this tool (the bundle hash)
  check                  Docker reachable and state dir writable (exit 3 otherwise)
  registry login         docker login --password-stdin (password on stdin)
$(printf '%s\n' "${RAILHEAD_COMMANDS[@]}")

Global options:
  --host-label NAME      name used in every log line (default: hostname)
Environment: RAILHEAD_STATE_DIR (default \$HOME/.railhead), DOCKER_HOST.
Exit codes: 0 ok, 1 a step failed (stderr says which and what to try), 2 usage, 3 host not ready.
HELP
}

cmd_version() {
  if (($#)) && [[ $1 == -h || $1 == --help ]]; then
    printf 'Usage: railhead-host version\n'
    return 0
  fi
  printf '%s\n' "$RAILHEAD_TOOL_VERSION"
}

cmd_check() {
  [[ ${1:-} == -h || ${1:-} == --help ]] && {
    printf 'Usage: railhead-host check\n\nChecks that Docker answers and the state directory is writable; prints the Docker version. Exit 3 if not.\n'
    return 0
  }
  local dir version
  rh_require_docker
  version=$(docker version --format '{{.Server.Version}}')
  dir=$(rh_state_dir)
  if ! mkdir -p "$dir" 2>/dev/null || [[ ! -w $dir ]]; then
    rh_not_ready "the state directory $dir is not writable" "set RAILHEAD_STATE_DIR or fix its owner"
  fi
  command -v flock >/dev/null 2>&1 || rh_warn check "flock is missing: falling back to directory locks"
  rh_log check "docker $version, state dir $dir, tool $RAILHEAD_TOOL_VERSION"
}

cmd_registry() {
  local server="" username=""
  [[ ${1:-} == login ]] || { [[ ${1:-} == -h || ${1:-} == --help ]] || rh_usage_fail "registry takes the subcommand login"; }
  shift || true
  while (($#)); do
    case $1 in
      --server) rh_need_arg "$1" "$#"; server=$2; shift 2 ;;
      --username) rh_need_arg "$1" "$#"; username=$2; shift 2 ;;
      -h | --help)
        printf 'Usage: railhead-host registry login --server S --username U < password\n\nLogs Docker in to registry S; the password comes on stdin, never as an argument.\n'
        return 0 ;;
      *) rh_usage_fail "unknown registry login option '$1'" ;;
    esac
  done
  [[ -n $server && -n $username ]] || rh_usage_fail "registry login needs --server and --username"
  rh_require_docker
  local out
  if ! out=$(docker login "$server" --username "$username" --password-stdin 2>&1); then
    printf '%s\n' "$out" | grep -v -i 'password' | tail -n 3 >&2 || true
    rh_fail registry "docker login to $server as $username failed" "check the username and the password (token) sent on stdin"
  fi
  rh_log registry "logged in to $server as $username"
}

main() {
  while (($#)); do
    case $1 in
      --host-label) rh_need_arg "$1" "$#"; RAILHEAD_HOST_LABEL=$2; shift 2 ;;
      -h | --help | help) main_help; return 0 ;;
      --version) printf "%s\n" "$RAILHEAD_TOOL_VERSION"; return 0 ;;
      -*) rh_usage_fail "unknown global option '$1'" ;;
      *) break ;;
    esac
  done
  (($#)) || { main_help >&2; exit 2; }
  local command=$1 fn
  shift
  fn="cmd_${command//-/_}"
  if [[ ! $command =~ ^[a-z][a-z-]*$ ]] || ! declare -F "$fn" >/dev/null; then
    rh_usage_fail "unknown command '$command'"
  fi
  "$fn" "$@"
}

main "$@"
