# shellcheck shell=bash
# `network ensure NAME`: the user-defined bridge network app containers and the proxy share
# (Docker's embedded DNS on it resolves container names and the release slot aliases).

rh_register_command "network ensure NAME" "create the user-defined bridge network if missing"

network_help() {
  cat <<'HELP'
Usage: railhead-host network ensure NAME

Creates the user-defined bridge network NAME (label railhead.managed=true) if it does not
exist. Idempotent: an existing network of that name is left alone.
HELP
}

# Creates the network if missing. Two parallel calls are fine: a lost race counts as success.
network_ensure() {
  local name=$1
  if docker network inspect "$name" >/dev/null 2>&1; then
    rh_log network "network $name exists"
    return 0
  fi
  if docker network create --driver bridge --label railhead.managed=true "$name" >/dev/null 2>&1 ||
    docker network inspect "$name" >/dev/null 2>&1; then
    rh_log network "created network $name"
    return 0
  fi
  rh_fail network "could not create the Docker network $name" "run 'docker network create $name' on the host to see Docker's error"
}

cmd_network() {
  case ${1:-} in
    ensure)
      shift
      [[ ${1:-} == -h || ${1:-} == --help ]] && { network_help; return 0; }
      [[ $# -eq 1 ]] || rh_usage_fail "network ensure takes exactly one NAME"
      rh_validate_name network "$1"
      rh_require_docker
      network_ensure "$1"
      ;;
    -h | --help | "") network_help ;;
    *) rh_usage_fail "unknown network subcommand '$1'" ;;
  esac
}
