# shellcheck shell=bash
# Common helpers for every railhead-host area (bundled first, see bundle.ts).
#
# What other lib/*.sh files can rely on (all documented below, grouped):
#   logging        rh_log STEP MSG, rh_warn STEP MSG, rh_fail STEP WHAT NEXT (exit 1),
#                  rh_usage_fail MSG (exit 2), rh_not_ready WHAT NEXT (exit 3), rh_elapsed
#   arguments      rh_need_arg OPT COUNT, rh_validate_name KIND VALUE, rh_validate_uint OPT VALUE,
#                  rh_register_command NAME SUMMARY (shown by `railhead-host --help`)
#   state          rh_state_dir, rh_app_dir SERVICE, rh_kv_get FILE KEY, rh_kv_set FILE KEY VALUE,
#                  rh_write_file_atomic DEST MODE (content on stdin), rh_with_lock NAME CMD...,
#                  rh_audit SERVICE ROLE VERSION RESULT SECONDS, rh_secret_hash FILE
#   stdin/secrets  rh_env_file_from_stdin DEST (0600, never echoed), rh_stdin_text
#   docker         rh_require_docker, rh_container_state NAME, rh_container_ip NAME NETWORK,
#                  rh_container_label NAME KEY, rh_image_id REF, rh_pull_image REF POLICY,
#                  rh_labels_args ARRAY SERVICE ROLE VERSION, rh_wait_until_healthy NAME TIMEOUT
#                  READINESS_DELAY, rh_wait_http_ok IP PORT PATH INTERVAL TRY_TIMEOUT DEADLINE_S
#                  NAME, rh_http_status IP PORT PATH TIMEOUT, rh_print_container_logs NAME LINES
#   words          rh_split_words ARRAY STRING (shell-like quoting, no expansion)
#
# Conventions: functions only (no top-level side effects besides variable defaults); every
# function that can fail returns non-zero or calls rh_fail; nothing here reads stdin except the
# two stdin helpers; no helper prints a secret.

RAILHEAD_TOOL_VERSION=${RAILHEAD_TOOL_VERSION:-dev}
RAILHEAD_HOST_LABEL=${RAILHEAD_HOST_LABEL:-}
RAILHEAD_COMMANDS=()
RH_LOCK_FDS="" # descriptors of the locks rh_with_lock holds (flock), space-separated
RH_LAST_HEALTH_STATUS="" # last non-2xx status seen by rh_wait_http_ok (for error messages)
export RH_LAST_HEALTH_STATUS

# ---------------------------------------------------------------- time and logging

# Microseconds since the epoch, without forking (bash >= 5 has EPOCHREALTIME).
rh_now_us() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    local t=${EPOCHREALTIME/[.,]/}
    printf '%s' "$((10#$t))"
  else
    printf '%s' "$(($(date +%s%N) / 1000))"
  fi
}

RAILHEAD_STARTED_US=${RAILHEAD_STARTED_US:-$(rh_now_us)}

# Seconds since the command started, with two decimals (e.g. 3.07).
rh_elapsed() {
  local us=$(($(rh_now_us) - RAILHEAD_STARTED_US))
  printf '%d.%02d' "$((us / 1000000))" "$(((us % 1000000) / 10000))"
}

# Seconds (two decimals) between two rh_now_us readings.
rh_seconds_between() {
  local us=$(($2 - $1))
  printf '%d.%02d' "$((us / 1000000))" "$(((us % 1000000) / 10000))"
}

rh_host_label() {
  if [[ -z $RAILHEAD_HOST_LABEL ]]; then
    RAILHEAD_HOST_LABEL=$(hostname 2>/dev/null || uname -n)
  fi
  printf '%s' "$RAILHEAD_HOST_LABEL"
}

# Sets RH_LOG_HOST and RH_LOG_AT (seconds since start) without a subshell: a log line costs no
# process (forks are slow on a busy host, and a release logs about ten lines).
rh_log_stamp() {
  [[ -n $RAILHEAD_HOST_LABEL ]] || rh_host_label >/dev/null
  RH_LOG_HOST=$RAILHEAD_HOST_LABEL
  local now
  if [[ -n ${EPOCHREALTIME:-} ]]; then now=${EPOCHREALTIME/[.,]/}; now=$((10#$now)); else now=$(rh_now_us); fi
  now=$((now - RAILHEAD_STARTED_US))
  printf -v RH_LOG_AT '%d.%02d' "$((now / 1000000))" "$(((now % 1000000) / 10000))"
}

# One line per step on stdout: `[railhead] <host> <step>: <message> (<seconds since start>s)`.
rh_log() {
  rh_log_stamp
  printf '[railhead] %s %s: %s (%ss)\n' "$RH_LOG_HOST" "$1" "$2" "$RH_LOG_AT"
}

rh_warn() {
  rh_log_stamp
  printf '[railhead] %s WARN %s: %s (%ss)\n' "$RH_LOG_HOST" "$1" "$2" "$RH_LOG_AT" >&2
}

# Error line on stderr, then exit 1. WHAT says what failed, NEXT what the operator can try.
rh_fail() {
  printf '[railhead] %s ERROR %s: %s. Next: %s (%ss)\n' "$(rh_host_label)" "$1" "$2" "$3" "$(rh_elapsed)" >&2
  exit 1
}

rh_usage_fail() {
  printf '[railhead] %s ERROR usage: %s. Next: run with --help\n' "$(rh_host_label)" "$1" >&2
  exit 2
}

rh_not_ready() {
  printf '[railhead] %s ERROR check: %s. Next: %s\n' "$(rh_host_label)" "$1" "$2" >&2
  exit 3
}

# ---------------------------------------------------------------- arguments

# Lets a lib file add a line to the tool's --help: rh_register_command "accessory" "boot|remove ...".
rh_register_command() {
  local line
  printf -v line '  %-22s %s' "$1" "$2"
  RAILHEAD_COMMANDS+=("$line")
}

# Call as `rh_need_arg "$1" "$#"` before reading an option's value from "$2".
rh_need_arg() {
  (($2 >= 2)) || rh_usage_fail "$1 needs a value"
}

# Names become container names, DNS aliases, HAProxy backend names and file names.
rh_validate_name() {
  [[ $2 =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ && ${#2} -le 63 ]] ||
    rh_usage_fail "$1 '$2' must match [A-Za-z0-9][A-Za-z0-9_-]* (at most 63 characters)"
}

# Versions may also hold dots (v1.2.3, git shas).
rh_validate_version() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ && ${#1} -le 100 ]] ||
    rh_usage_fail "version '$1' must match [A-Za-z0-9][A-Za-z0-9_.-]*"
}

rh_validate_uint() {
  [[ $2 =~ ^[0-9]+$ ]] || rh_usage_fail "$1 must be a whole number, got '$2'"
}

# Splits STRING into words like a shell would (quotes and backslashes), without any expansion.
# Usage: rh_split_words ARRAY_NAME "string".
rh_split_words() {
  local -n rh_words_out=$1
  rh_words_out=()
  [[ -n ${2//[[:space:]]/} ]] || return 0
  # shellcheck disable=SC2034 # rh_words_out is a nameref to the caller's array
  mapfile -d '' -t rh_words_out < <(printf '%s' "$2" | xargs -r printf '%s\0') ||
    rh_usage_fail "could not split '$2' into words (unbalanced quotes?)"
}

# ---------------------------------------------------------------- state

rh_state_dir() {
  printf '%s' "${RAILHEAD_STATE_DIR:-$HOME/.railhead}"
}

rh_app_dir() {
  printf '%s/apps/%s' "$(rh_state_dir)" "$1"
}

# Reads KEY from a KEY=VALUE file (no sourcing: state files are data, not code). Empty if absent.
rh_kv_get() {
  local file=$1 key=$2 k v
  [[ -f $file ]] || return 0
  while IFS='=' read -r k v; do
    if [[ $k == "$key" ]]; then
      printf '%s' "$v"
      return 0
    fi
  done <"$file"
}

# Sets KEY=VALUE in FILE (created if missing), atomically. Values must be one line.
rh_kv_set() {
  local file=$1 key=$2 value=$3 k v out=""
  if [[ -f $file ]]; then
    while IFS='=' read -r k v; do
      [[ -z $k || $k == "$key" ]] && continue
      out+="$k=$v"$'\n'
    done <"$file"
  fi
  out+="$key=$value"$'\n'
  printf '%s' "$out" | rh_write_file_atomic "$file" 0644
}

# Writes stdin to DEST with MODE via a temporary file in the same directory and a rename, so a
# reader never sees half a file. Prints nothing. Returns 0.
rh_write_file_atomic() {
  local dest=$1 mode=$2 tmp
  mkdir -p "$(dirname "$dest")"
  tmp=$(mktemp "$dest.XXXXXX")
  chmod "$mode" "$tmp"
  cat >"$tmp"
  mv -f "$tmp" "$dest"
}

# Runs CMD... while holding an exclusive lock named NAME (a file under the state dir), so two
# commands started in parallel on one host (Pulumi runs resources concurrently) do not interleave.
rh_with_lock() {
  local name=$1 lock_file fd
  shift
  lock_file="$(rh_state_dir)/locks/$name.lock"
  mkdir -p "$(dirname "$lock_file")"
  if command -v flock >/dev/null 2>&1; then
    exec {fd}>"$lock_file"
    flock -w 600 "$fd" || rh_fail lock "could not take the lock $lock_file within 600s" "look for a hung railhead-host process on this host"
    local rc=0 fds_before=$RH_LOCK_FDS
    # Background jobs that must not hold the lock close these descriptors (proxy_cutover_locked).
    RH_LOCK_FDS+=" $fd"
    "$@" || rc=$?
    RH_LOCK_FDS=$fds_before
    exec {fd}>&-
    return "$rc"
  fi
  local waited=0
  until mkdir "$lock_file.d" 2>/dev/null; do
    sleep 0.2
    waited=$((waited + 1))
    ((waited < 3000)) || rh_fail lock "could not take the lock $lock_file.d within 600s" "remove it if no railhead-host process runs"
  done
  local rc=0
  "$@" || rc=$?
  rmdir "$lock_file.d"
  return "$rc"
}

# One audit line per release: time, host, role, version, result, seconds.
rh_audit() {
  local file
  file="$(rh_app_dir "$1")/audit.log"
  mkdir -p "$(dirname "$file")"
  printf '%s %s role=%s version=%s result=%s seconds=%s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(rh_host_label)" "$2" "$3" "$4" "$5" >>"$file"
}

# A keyed hash of a file holding secrets (HMAC-like: sha256 over a per-host random key and the
# content), so labels can say "the env changed" without exposing a guessable digest of secrets.
rh_secret_hash() {
  local key_file
  key_file="$(rh_state_dir)/hash.key"
  if [[ ! -s $key_file ]]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key_file.$$" && mv -n "$key_file.$$" "$key_file"; rm -f "$key_file.$$")
  fi
  { cat "$key_file"; printf '\n'; cat "$1"; } | sha256sum | cut -c1-16
}

# ---------------------------------------------------------------- stdin and secrets

# Reads all of stdin into DEST with mode 0600 (umask set before the file exists). Never prints it.
# An interactive terminal on stdin counts as empty, so a person running the tool is not blocked.
rh_env_file_from_stdin() {
  local dest=$1 tmp
  mkdir -p "$(dirname "$dest")"
  tmp=$(umask 077 && mktemp "$dest.XXXXXX")
  if [[ ! -t 0 ]]; then
    cat >"$tmp"
  fi
  chmod 0600 "$tmp"
  mv -f "$tmp" "$dest"
}

# Prints stdin (for non-secret text such as a maintenance message); empty for a terminal.
rh_stdin_text() {
  [[ -t 0 ]] || cat
}

# ---------------------------------------------------------------- docker

rh_require_docker() {
  command -v docker >/dev/null 2>&1 || rh_not_ready "docker is not installed" "install Docker (cloud-init does it on Railhead servers)"
  rh_api_init
  if [[ -n $RH_API_SOCKET ]] && rh_api GET /_ping >/dev/null; then return 0; fi
  RH_API_SOCKET=""
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    rh_not_ready "the Docker engine is not reachable (DOCKER_HOST=${DOCKER_HOST:-default})" "start dockerd or add this user to the docker group"
}

# ----- the Engine API over its unix socket (curl), for the calls a release makes most
# A docker CLI process costs about 25 ms on an idle host and 3-4x that under load; curl on the
# engine's unix socket costs a few ms. Used only when curl is installed (cloud-init installs it)
# and the CLI would talk to a local unix socket itself: DOCKER_HOST unset (then
# /var/run/docker.sock) or unix://PATH, and no Docker context chosen (DOCKER_CONTEXT or the CLI
# config's currentContext). Otherwise, or with RAILHEAD_DOCKER_API=off, every helper below uses
# the docker CLI as before. Responses are read with bash patterns on the engine's compact JSON,
# only for fields whose place is fixed (State.Status, an image's Id, a network's IPAddress).
RH_API_SOCKET=""
RH_API_CHECKED=0
rh_api_init() {
  ((RH_API_CHECKED)) && return 0
  RH_API_CHECKED=1
  RH_API_SOCKET=""
  [[ ${RAILHEAD_DOCKER_API:-on} != off ]] || return 0
  command -v curl >/dev/null 2>&1 || return 0
  [[ -z ${DOCKER_CONTEXT:-} ]] || return 0
  local config="${DOCKER_CONFIG:-$HOME/.docker}/config.json" sock text=""
  [[ -r $config ]] && text=$(<"$config")
  if [[ $text =~ \"currentContext\"[[:space:]]*:[[:space:]]*\"([^\"]*)\" ]] && [[ ${BASH_REMATCH[1]} != default && -n ${BASH_REMATCH[1]} ]]; then
    return 0
  fi
  case ${DOCKER_HOST:-} in
    "") sock=/var/run/docker.sock ;;
    unix://*) sock=${DOCKER_HOST#unix://} ;;
    *) return 0 ;;
  esac
  [[ -S $sock && -w $sock ]] || return 0
  RH_API_SOCKET=$sock
}

# rh_api METHOD PATH: one Engine API call; prints the response body; returns 0 for a 2xx or 304
# answer, 1 otherwise (also when no API socket is in use: callers check RH_API_SOCKET first).
rh_api() {
  [[ -n $RH_API_SOCKET ]] || return 1
  local out code
  out=$(curl -sS --unix-socket "$RH_API_SOCKET" -X "$1" -w '\n%{http_code}' "http://docker$2" 2>/dev/null) || return 1
  code=${out##*$'\n'}
  printf '%s' "${out%$'\n'*}"
  [[ $code == 2?? || $code == 304 ]]
}

# Prints STRING as a JSON string (backslashes, quotes, newlines, tabs and CRs escaped; the texts
# sent are bash function definitions and plain words, with no other control characters).
rh_json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

# True when WORD can go into an API path as it is (names and image references Railhead uses).
rh_api_word() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$ ]]
}

# Prints running|exited|created|restarting|paused|dead, or nothing if there is no such container.
rh_container_state() {
  rh_api_init
  if [[ -n $RH_API_SOCKET ]] && rh_api_word "$1"; then
    local json
    json=$(rh_api GET "/containers/$1/json") || return 0
    [[ $json =~ \"State\":\{\"Status\":\"([a-z]+)\" ]] && printf '%s\n' "${BASH_REMATCH[1]}"
    return 0
  fi
  docker container inspect --format '{{.State.Status}}' "$1" 2>/dev/null || true
}

rh_container_ip() {
  rh_api_init
  if [[ -n $RH_API_SOCKET ]] && rh_api_word "$1"; then
    local json
    json=$(rh_api GET "/containers/$1/json") || return 0
    json=${json#*\"Networks\":\{}
    # The first IPAddress after the network's key is its own (keys and strings are JSON-quoted,
    # so a quote followed by the name, a quote, a colon and a brace can only be that key).
    [[ $json == *"\"$2\":{"* ]] || return 0
    json=${json#*\""$2"\":\{}
    [[ $json =~ \"IPAddress\":\"([0-9.]*)\" ]] && [[ -n ${BASH_REMATCH[1]} ]] && printf '%s\n' "${BASH_REMATCH[1]}"
    return 0
  fi
  docker container inspect --format "{{with index .NetworkSettings.Networks \"$2\"}}{{.IPAddress}}{{end}}" "$1" 2>/dev/null || true
}

# Stops the containers NAME... (SIGTERM, SIGKILL after TIMEOUT seconds), in parallel. Returns
# non-zero if one could not be stopped. Usage: rh_stop_containers TIMEOUT NAME...
rh_stop_containers() {
  local timeout=$1 c pids=() rc=0 p
  shift
  (($#)) || return 0
  rh_api_init
  if [[ -n $RH_API_SOCKET ]]; then
    for c in "$@"; do
      if rh_api_word "$c"; then
        # The engine answers when the container has stopped (or after the kill); curl waits for it.
        rh_api POST "/containers/$c/stop?t=$timeout" >/dev/null &
      else
        docker stop -t "$timeout" "$c" >/dev/null &
      fi
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    return "$rc"
  fi
  docker stop -t "$timeout" "$@" >/dev/null
}

# Log caps for every long-lived container Railhead starts (releases, proxy, Caddy, accessories,
# the replicator): json-file (so `docker logs` works) rotated at 10 MB, 5 files. Fills ARRAY with
# the docker run arguments; empty when EXTRA (the user's docker run args, if any) already chooses
# a log driver or log options, so config can override it. Usage: rh_log_args ARRAY [EXTRA...]
RH_LOG_MAX_SIZE=10m
RH_LOG_MAX_FILE=5
rh_log_args() {
  local -n rh_log_out=$1
  shift
  local a
  for a in "$@"; do
    case $a in --log-driver | --log-driver=* | --log-opt | --log-opt=*) rh_log_out=(); return 0 ;; esac
  done
  # shellcheck disable=SC2034 # rh_log_out is a nameref to the caller's array
  rh_log_out=(--log-driver json-file --log-opt "max-size=$RH_LOG_MAX_SIZE" --log-opt "max-file=$RH_LOG_MAX_FILE")
}

rh_container_label() {
  docker container inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

# Image id of a local image reference, empty if the host does not have it.
rh_image_id() {
  rh_api_init
  if [[ -n $RH_API_SOCKET ]] && rh_api_word "$1"; then
    local json
    json=$(rh_api GET "/images/$1/json") || return 0
    [[ $json =~ ^\{\"Id\":\"(sha256:[0-9a-f]+)\" ]] && printf '%s\n' "${BASH_REMATCH[1]}"
    return 0
  fi
  docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
}

# POLICY missing: pull only if the host lacks REF (so rollbacks never pull); always: pull.
rh_pull_image() {
  local ref=$1 policy=$2 started out
  if [[ $policy == missing && -n $(rh_image_id "$ref") ]]; then
    rh_log pull "$ref already on the host, not pulled"
    return 0
  fi
  started=$(rh_now_us)
  if ! out=$(docker pull --quiet "$ref" 2>&1); then
    printf '%s\n' "$out" | tail -n 5 >&2
    return 1
  fi
  rh_log pull "pulled $ref in $(rh_seconds_between "$started" "$(rh_now_us)")s"
}

# Fills ARRAY with the --label arguments every Railhead container carries.
rh_labels_args() {
  local -n rh_labels_out=$1
  # shellcheck disable=SC2034 # rh_labels_out is a nameref to the caller's array
  rh_labels_out=(--label railhead.managed=true --label "railhead.service=$2" --label "railhead.role=$3" --label "railhead.version=$4")
}

# HTTP status code of GET http://IP:PORT/PATH within TIMEOUT seconds ("000" when no answer).
# Uses curl when the host has it, else bash's /dev/tcp; either way straight to the container.
rh_http_status() {
  local ip=$1 port=$2 path=$3 timeout=$4
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -w '%{http_code}' --max-time "$timeout" -H 'User-Agent: railhead-health' "http://$ip:$port$path" 2>/dev/null || true
    return 0
  fi
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout "$timeout" bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 0
    printf "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: railhead-health\r\nConnection: close\r\n\r\n" "$2" "$0" "$1" >&3
    IFS=" " read -r _ code _ <&3 && printf "%s" "$code"
  ' "$ip" "$port" "$path" 2>/dev/null || true
}

# Polls the container's HTTP health path until a 2xx, the container exits, or DEADLINE_S passes.
# Returns 0 healthy, 1 timed out, 2 the container stopped.
rh_wait_http_ok() {
  local ip=$1 port=$2 path=$3 interval=$4 try_timeout=$5 deadline_s=$6 name=$7 status state
  local since deadline
  since=$(rh_now_us)
  deadline=$((since + deadline_s * 1000000))
  # The pause between tries is a tenth of the time waited so far, at least 0.05 s and at most
  # INTERVAL: an app that is ready quickly is seen within 0.05 s, one that boots for 10 s is
  # seen at most about 1 s late, and a slow one is asked every INTERVAL.
  local pause_ms whole=${interval%%.*} frac=000 interval_ms
  [[ $interval == *.* ]] && frac=${interval#*.}000
  interval_ms=$((10#${whole:-0} * 1000 + 10#${frac:0:3}))
  while :; do
    status=$(rh_http_status "$ip" "$port" "$path" "$try_timeout")
    [[ $status == 2?? ]] && return 0
    state=$(rh_container_state "$name")
    [[ $state == running ]] || return 2
    (($(rh_now_us) < deadline)) || return 1
    RH_LAST_HEALTH_STATUS=$status
    pause_ms=$((($(rh_now_us) - since) / 10000))
    ((pause_ms >= 50)) || pause_ms=50
    ((pause_ms <= interval_ms)) || pause_ms=$interval_ms
    sleep "$(printf '%d.%03d' $((pause_ms / 1000)) $((pause_ms % 1000)))"
  done
}

# Non-HTTP readiness: Docker health "healthy" if the image defines a healthcheck, otherwise the
# container still running (and not restarted) READINESS_DELAY seconds after it started.
# Returns 0 ready, 1 timed out / unhealthy, 2 the container stopped or restarted.
rh_wait_until_healthy() {
  local name=$1 timeout=$2 delay=$3 health state restarts
  local deadline=$(($(rh_now_us) + timeout * 1000000))
  if [[ -n $(docker container inspect --format '{{if .Config.Healthcheck}}yes{{end}}' "$name" 2>/dev/null) ]]; then
    while :; do
      health=$(docker container inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$name" 2>/dev/null || true)
      [[ $health == healthy ]] && return 0
      [[ $(rh_container_state "$name") == running ]] || return 2
      (($(rh_now_us) < deadline)) || return 1
      sleep 0.5
    done
  fi
  local ready_at=$(($(rh_now_us) + delay * 1000000))
  while (($(rh_now_us) < ready_at)); do
    state=$(rh_container_state "$name")
    restarts=$(docker container inspect --format '{{.RestartCount}}' "$name" 2>/dev/null || echo 0)
    [[ $state == running && $restarts == 0 ]] || return 2
    (($(rh_now_us) < deadline)) || return 1
    sleep 0.5
  done
  state=$(rh_container_state "$name")
  restarts=$(docker container inspect --format '{{.RestartCount}}' "$name" 2>/dev/null || echo 0)
  [[ $state == running && $restarts == 0 ]] || return 2
}

# Prints the container's last LINES log lines to stderr, each prefixed, for failure reports.
rh_print_container_logs() {
  local name=$1 lines=$2
  printf '[railhead] %s logs of %s (last %s lines):\n' "$(rh_host_label)" "$name" "$lines" >&2
  docker logs --tail "$lines" "$name" 2>&1 | sed "s/^/  [$name] /" >&2 || true
}
