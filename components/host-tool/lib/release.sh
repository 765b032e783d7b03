# shellcheck shell=bash
# Releases of app roles (DESIGN.md decision 4): `release`, `role remove`, `migrate`, `audit`,
# `containers`. Containers are named <service>-<role>-<version> and carry the railhead.* labels;
# a web release switches the proxy (lib/proxy.sh) between the service's a/b slots.

rh_register_command "release" "zero-downtime release of one role on this host (env on stdin)"
rh_register_command "role remove" "stop and remove every container of a role, and its env file"
rh_register_command "migrate" "run a one-off command (e.g. db:migrate) with the release env"
rh_register_command "audit" "print a service's release log on this host"
rh_register_command "containers" "list a service's containers: role, version, state, image"

release_help() {
  cat <<'HELP'
Usage: railhead-host release --service S --role R --version V --image IMG [options] < env-file

Starts <S>-<R>-<V>, waits until it is healthy, (web) switches the proxy to it and drains the old
one, stops the previous containers (kept for rollback) and prunes beyond --retain.
stdin: the env file (KEY=VALUE lines); written 0600 and passed with --env-file, never printed.

Options:
  --web                   proxied role: health check over HTTP, then HAProxy cutover
  --app-port P            (web) container port                              [80]
  --health-path PATH      (web) GET path that must answer 2xx               [/up]
  --health-interval S     longest pause between health checks (from 0.05 s) [1]
  --health-timeout S      seconds per health check try                      [5]
  --deploy-timeout S      seconds for the new container to become healthy  [30]
  --drain-timeout S       (web) seconds to wait for the old slot's sessions [30]
  --stop-timeout S        docker stop -t for old containers                 [10]
  --readiness-delay S     non-web roles without a Docker healthcheck must stay
                          running this long                                 [7]
  --retain N              stopped containers kept for rollback              [5]
  --cmd CMD               container command (split like a shell, no expansion)
  --option KEY[=VALUE]    extra `docker run --KEY VALUE` (e.g. memory=512m); repeatable
  --volume NAME:/path[:ro]  named Docker volume mounted in the container (e.g. the SQLite
                          storage); created with Railhead's labels if missing, never removed
                          by the tool; part of the spec (a changed list = new container); repeatable
  --network NAME          app network                                       [railhead]
  --pull missing|always   missing: an image already on the host is not pulled [missing]
  --wait-after S          after a successful release (not when already current) sleep S
                          seconds before exiting (Kamal's boot.wait between groups) [0]
  --host-identity ID      ignored; lets a rebuilt server change the command
Exit: 0 released or already current; 1 failed (the old container keeps serving); 2 usage.
HELP
}

# ---------------------------------------------------------------- release

release_parse() {
  R_SERVICE="" R_ROLE="" R_VERSION="" R_IMAGE="" R_WEB=0 R_APP_PORT=80 R_HEALTH_PATH=/up
  R_HEALTH_INTERVAL=1 R_HEALTH_TIMEOUT=5 R_DEPLOY_TIMEOUT=30 R_DRAIN_TIMEOUT=30 R_STOP_TIMEOUT=10
  R_READINESS_DELAY=7 R_RETAIN=5 R_CMD="" R_OPTIONS=() R_NETWORK=railhead R_PULL=missing
  R_VOLUMES=() R_WAIT_AFTER=0
  while (($#)); do
    case $1 in
      --service) rh_need_arg "$1" "$#"; R_SERVICE=$2; shift 2 ;;
      --role) rh_need_arg "$1" "$#"; R_ROLE=$2; shift 2 ;;
      --version) rh_need_arg "$1" "$#"; R_VERSION=$2; shift 2 ;;
      --image) rh_need_arg "$1" "$#"; R_IMAGE=$2; shift 2 ;;
      --web) R_WEB=1; shift ;;
      --app-port) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; R_APP_PORT=$2; shift 2 ;;
      --health-path) rh_need_arg "$1" "$#"; R_HEALTH_PATH=$2; shift 2 ;;
      --health-interval) rh_need_arg "$1" "$#"; R_HEALTH_INTERVAL=$2; shift 2 ;;
      --health-timeout) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; R_HEALTH_TIMEOUT=$2; shift 2 ;;
      --deploy-timeout) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; R_DEPLOY_TIMEOUT=$2; shift 2 ;;
      --drain-timeout) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; R_DRAIN_TIMEOUT=$2; shift 2 ;;
      --stop-timeout) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; R_STOP_TIMEOUT=$2; shift 2 ;;
      --readiness-delay) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; R_READINESS_DELAY=$2; shift 2 ;;
      --retain) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; R_RETAIN=$2; shift 2 ;;
      --cmd) rh_need_arg "$1" "$#"; R_CMD=$2; shift 2 ;;
      --option) rh_need_arg "$1" "$#"; R_OPTIONS+=("$2"); shift 2 ;;
      --volume) rh_need_arg "$1" "$#"; R_VOLUMES+=("$2"); shift 2 ;;
      --network) rh_need_arg "$1" "$#"; R_NETWORK=$2; shift 2 ;;
      --pull) rh_need_arg "$1" "$#"; R_PULL=$2; shift 2 ;;
      --wait-after) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; R_WAIT_AFTER=$2; shift 2 ;;
      --host-identity) rh_need_arg "$1" "$#"; shift 2 ;;
      -h | --help) release_help; exit 0 ;;
      *) rh_usage_fail "unknown release option '$1'" ;;
    esac
  done
  [[ -n $R_SERVICE && -n $R_ROLE && -n $R_VERSION && -n $R_IMAGE ]] ||
    rh_usage_fail "release needs --service, --role, --version and --image"
  rh_validate_name service "$R_SERVICE"
  rh_validate_name role "$R_ROLE"
  rh_validate_version "$R_VERSION"
  rh_validate_name network "$R_NETWORK"
  [[ $R_PULL == missing || $R_PULL == always ]] || rh_usage_fail "--pull must be missing or always"
  [[ $R_HEALTH_INTERVAL =~ ^[0-9]+(\.[0-9]+)?$ ]] || rh_usage_fail "--health-interval must be a number of seconds"
  ((R_RETAIN >= 1)) || rh_usage_fail "--retain must be at least 1 (the rollback target)"
  [[ $R_HEALTH_PATH == /* ]] || rh_usage_fail "--health-path must start with /"
  R_OPTION_ARGS=()
  local opt key
  for opt in "${R_OPTIONS[@]}"; do
    key=${opt%%=*}
    [[ $key =~ ^[a-z][a-z0-9-]*$ ]] || rh_usage_fail "--option '$opt' must be KEY or KEY=VALUE with a docker run option name"
    case $key in
      name | network | network-alias | restart | env-file | label | l | detach | d | rm)
        rh_usage_fail "--option $key is set by railhead-host itself" ;;
    esac
    if [[ $opt == *=* ]]; then
      R_OPTION_ARGS+=("--$key" "${opt#*=}")
    else
      R_OPTION_ARGS+=("--$key")
    fi
  done
  rh_split_words R_CMD_WORDS "$R_CMD"
  release_volumes R_VOLUMES "${R_VOLUMES[@]}"
  R_VOLUME_ARGS=()
  local v
  for v in "${R_VOLUMES[@]}"; do R_VOLUME_ARGS+=(--volume "$v"); done
}

# Validates `--volume` values (NAME:/path or NAME:/path:ro, NAME a Docker volume name) and sets
# ARRAY to them normalised (no trailing slash) and sorted: the order of mounts means nothing, so it
# does not change the spec. Shared by release and migrate. Usage: release_volumes ARRAY V...
release_volumes() {
  local -n rv_out=$1
  shift
  local v name path mode seen=" " list=()
  for v in "$@"; do
    [[ $v =~ ^([a-zA-Z0-9][a-zA-Z0-9_.-]+):(/[^:[:space:][:cntrl:]]*)(:ro)?$ ]] ||
      rh_usage_fail "--volume '$v' must be NAME:/absolute/path or NAME:/absolute/path:ro (NAME a Docker volume name, [a-zA-Z0-9][a-zA-Z0-9_.-]+)"
    name=${BASH_REMATCH[1]} path=${BASH_REMATCH[2]} mode=${BASH_REMATCH[3]}
    ((${#name} <= 255)) || rh_usage_fail "--volume '$v': the volume name is longer than 255 characters"
    while [[ $path == */ && $path != / ]]; do path=${path%/}; done
    [[ $path != / ]] || rh_usage_fail "--volume '$v': a volume cannot be mounted at /"
    [[ $path/ != */../* && $path/ != */./* && $path != *//* ]] ||
      rh_usage_fail "--volume '$v': the container path must be a plain absolute path (no '.', '..' or '//')"
    [[ $seen != *" $path "* ]] || rh_usage_fail "--volume '$v': two volumes are mounted at $path"
    seen+="$path "
    list+=("$name:$path$mode")
  done
  rv_out=()
  ((${#list[@]})) || return 0
  # shellcheck disable=SC2034 # rv_out is a nameref to the caller's array
  mapfile -t rv_out < <(printf '%s\n' "${list[@]}" | LC_ALL=C sort)
}

# Creates each volume (NAME:/path[:ro] values) that does not exist yet, with Railhead's labels
# (owner `app`) so it is recognisable; an existing one (e.g. made by `litestream restore`) is left
# as it is. The tool never removes these volumes (not `role remove`, not the prune).
release_ensure_volumes() { # service NAME:/path...
  local service=$1 v name
  shift
  for v in "$@"; do
    name=${v%%:*}
    docker volume inspect "$name" >/dev/null 2>&1 && continue
    docker volume create --label railhead.managed=true --label "railhead.service=$service" --label railhead.owner=app "$name" >/dev/null ||
      return 1
    rh_log volume "created volume $name"
  done
}

cmd_release() {
  release_parse "$@"
  rh_require_docker
  RELEASE_CHANGED=0
  rh_with_lock "release-$R_SERVICE-$R_ROLE" release_run
  # Kamal's boot.wait: the next boot group starts this much later. Outside the lock; skipped when
  # the role was already current (nothing new is booting).
  if ((R_WAIT_AFTER > 0)); then
    if ((RELEASE_CHANGED)); then
      rh_log wait "waiting ${R_WAIT_AFTER}s before the next boot group (--wait-after)"
      sleep "$R_WAIT_AFTER"
      rh_log wait "waited ${R_WAIT_AFTER}s"
    else
      rh_log wait "already current: no --wait-after pause"
    fi
  fi
}

# Everything that decides what a container is, as one digest (label railhead.spec). The image is
# named by reference here (its id is a separate label), so a retained container can be reused
# even if the tag is gone from the host.
release_spec() {
  local env_hash=$1
  {
    printf 'spec-v1\n%s\n%s\n%s\n%s\n' "$R_IMAGE" "$R_NETWORK" "$R_WEB" "$env_hash"
    printf 'cmd:%s\n' "${R_CMD_WORDS[@]}"
    printf 'opt:%s\n' "${R_OPTION_ARGS[@]}"
    # Only when there are volumes, so a release without them keeps the spec it had before
    # --volume existed (no needless new container after a tool upgrade).
    if ((${#R_VOLUMES[@]})); then printf 'vol:%s\n' "${R_VOLUMES[@]}"; fi
  } | sha256sum | cut -c1-16
}

# The network alias slot (a|b) a container answers to on the app network (from the snapshot).
release_container_slot() {
  printf '%s' "${RS_SLOT[$1]:-}"
}

# Names of this role's containers (running or not), newest first.
release_role_containers() {
  docker ps -a --filter "label=railhead.service=$R_SERVICE" --filter "label=railhead.role=$R_ROLE" \
    --format '{{.Names}}' 2>/dev/null
}

# Names of this role's containers, one per line (the Engine API when in use: no CLI process).
release_role_names() {
  local json
  if [[ -n $RH_API_SOCKET ]]; then
    # filters={"label":["railhead.service=S","railhead.role=R"]} (S and R are validated names)
    json=$(rh_api GET "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22railhead.service%3D$R_SERVICE%22%2C%22railhead.role%3D$R_ROLE%22%5D%7D") ||
      return 1
    while [[ $json =~ \"Names\":\[\"/([A-Za-z0-9][A-Za-z0-9_.-]*)\" ]]; do
      printf '%s\n' "${BASH_REMATCH[1]}"
      json=${json#*"${BASH_REMATCH[0]}"}
    done
    return 0
  fi
  release_role_containers
}

# Reads every container of the role once (a list and one `docker container inspect`) into
# RS_NAMES and, per name, RS_STATE, RS_SPEC (label railhead.spec), RS_SLOT (a|b alias on the app
# network), RS_IMG (image id) and RS_ORDER ("<FinishedAt> <Created>", for the prune). The role's
# lock is held, so nothing else changes them while a release runs; the release updates the
# snapshot for what it does itself.
release_snapshot() {
  RS_NAMES=()
  declare -gA RS_STATE=() RS_SPEC=() RS_SLOT=() RS_IMG=() RS_ORDER=()
  local names name state spec img fin created aliases a
  names=$(release_role_names) || rh_fail release "could not list the containers of $R_SERVICE/$R_ROLE" "check that the Docker engine answers (docker ps)"
  [[ -n $names ]] || return 0
  # shellcheck disable=SC2086 # one name per word
  while IFS='|' read -r name state spec img fin created aliases; do
    name=${name#/}
    [[ -n $name ]] || continue
    RS_NAMES+=("$name")
    RS_STATE[$name]=$state RS_SPEC[$name]=$spec RS_IMG[$name]=$img RS_ORDER[$name]="$fin $created" RS_SLOT[$name]=""
    for a in $aliases; do
      case $a in "$R_SERVICE-$R_ROLE--a") RS_SLOT[$name]=a ;; "$R_SERVICE-$R_ROLE--b") RS_SLOT[$name]=b ;; esac
      [[ -n ${RS_SLOT[$name]} ]] && break
    done
  done < <(docker container inspect --format \
    "{{.Name}}|{{.State.Status}}|{{index .Config.Labels \"railhead.spec\"}}|{{.Image}}|{{.State.FinishedAt}}|{{.Created}}|{{with index .NetworkSettings.Networks \"$R_NETWORK\"}}{{range .Aliases}}{{.}} {{end}}{{end}}" \
    $names 2>/dev/null)
}

# True for the states `docker ps` (without -a) lists: the ones a release stops.
release_is_up() {
  [[ $1 == running || $1 == paused || $1 == restarting ]]
}

release_run() {
  local name="$R_SERVICE-$R_ROLE-$R_VERSION" app_dir env_file env_new env_hash spec state started
  started=$(rh_now_us)
  app_dir=$(rh_app_dir "$R_SERVICE")
  env_file="$app_dir/env/$R_ROLE.env"
  env_new="$app_dir/env/.$R_ROLE.env.incoming"
  mkdir -p "$app_dir/env"
  chmod 0700 "$app_dir/env"
  rh_env_file_from_stdin "$env_new"
  env_hash=$(rh_secret_hash "$env_new")
  spec=$(release_spec "$env_hash")
  RELEASE_NAME=$name RELEASE_STARTED=$started RELEASE_NEW_STARTED=0 RELEASE_IP=""

  local slot="" live=""
  if ((R_WEB)); then
    local conf
    conf=$(proxy_service_conf "$R_SERVICE")
    [[ -f $conf ]] || release_abort register "service $R_SERVICE is not registered on this host's proxy" "run 'railhead-host proxy service add $R_SERVICE --app-port $R_APP_PORT' before a web release"
    [[ $(rh_kv_get "$conf" ROLE) == "$R_ROLE" ]] || release_abort register "the proxy routes service $R_SERVICE to role $(rh_kv_get "$conf" ROLE), not $R_ROLE" "release the proxied role with --web, other roles without it"
    live=$(rh_kv_get "$conf" LIVE)
  fi
  release_snapshot

  # 1. Already current?
  state=${RS_STATE[$name]:-}
  if [[ $state == running && ${RS_SPEC[$name]:-} == "$spec" ]] && release_image_current "$name"; then
    if ((R_WEB == 0)) || [[ -n $live && $(release_container_slot "$name") == "$live" ]]; then
      rm -f "$env_new"
      release_stop_others "$name"
      rh_log release "$name already current"
      return 0
    fi
  fi

  # 2-3. The container: reuse a retained one with the same spec, else create it.
  if ((R_WEB)); then
    slot=a
    [[ $live == a ]] && slot=b
    release_free_slot "$slot" "$name"
  fi
  if [[ -n $state && ${RS_SPEC[$name]:-} == "$spec" ]] && release_image_current "$name"; then
    if [[ $state == running ]]; then
      rh_log release "$name already runs (not live yet): continuing with it"
      slot=$(release_container_slot "$name")
      [[ -n $slot || $R_WEB == 0 ]] || slot=a
    else
      ((R_WEB)) && release_set_slot_alias "$name" "$slot"
      docker start "$name" >/dev/null || release_abort start "could not start the retained container $name" "docker logs $name"
      RELEASE_NEW_STARTED=1
      RS_STATE[$name]=running
      rh_log release "started the retained container $name (no pull)"
    fi
    rm -f "$env_new"
  else
    if [[ -n $state ]]; then
      local n=1
      while [[ -n ${RS_STATE[$name-replaced-$n]:-} || -n $(rh_container_state "$name-replaced-$n") ]]; do n=$((n + 1)); done
      docker rename "$name" "$name-replaced-$n"
      release_snapshot_rename "$name" "$name-replaced-$n"
      rh_log release "an older $name with another spec was renamed $name-replaced-$n"
    fi
    rh_pull_image "$R_IMAGE" "$R_PULL" || release_abort pull "could not pull $R_IMAGE" "check the image reference, the registry and 'railhead-host registry login'"
    release_ensure_volumes "$R_SERVICE" "${R_VOLUMES[@]}" || release_abort volume "could not create a volume of ${R_VOLUMES[*]}" "docker volume ls; read Docker's error above"
    mv -f "$env_new" "$env_file"
    release_create_container "$name" "$spec" "$slot"
    RELEASE_NEW_STARTED=1
    rh_log release "started $name${slot:+ as slot $slot}"
  fi

  # 4. Healthy?
  release_wait_healthy "$name"

  # 5. Web: cut over, then drain (the drain runs in the cutover's exec, outside the proxy lock).
  if ((R_WEB)); then
    # The address the health check used (a container keeps it while it runs).
    local ip=$RELEASE_IP
    PROXY_OLD_SLOT=""
    rh_with_lock proxy proxy_cutover_locked "$R_SERVICE" "$slot" "$ip" "$R_DEPLOY_TIMEOUT" "$R_DRAIN_TIMEOUT" ||
      release_abort cutover "the proxy did not switch to $name" "docker logs $RH_PROXY_CONTAINER; the old container keeps serving"
    rh_log cutover "proxy switched be_$R_SERVICE to slot $slot ($ip)${PROXY_OLD_SLOT:+, slot $PROXY_OLD_SLOT in maintenance}"
    if [[ -n $PROXY_OLD_SLOT ]]; then
      proxy_drain_slot "$PROXY_OLD_SLOT" "$R_DRAIN_TIMEOUT"
      rh_log drain "slot $PROXY_OLD_SLOT drained"
    else
      proxy_drain_wait
    fi
  fi

  # 6. Stop the previous containers (kept for rollback) and, at the same time, prune beyond
  # --retain (the containers being stopped count as the newest stopped ones).
  RS_STATE[$name]=running
  release_stop_others "$name" prune

  # 7. Audit.
  local seconds
  seconds=$(rh_seconds_between "$started" "$(rh_now_us)")
  rh_audit "$R_SERVICE" "$R_ROLE" "$R_VERSION" ok "$seconds"
  RELEASE_CHANGED=1
  rh_log release "released $R_VERSION as $name in ${seconds}s"
}

# Moves the snapshot entry of OLD to NEW (after a `docker rename`).
release_snapshot_rename() {
  local old=$1 new=$2 i
  RS_STATE[$new]=${RS_STATE[$old]} RS_SPEC[$new]=${RS_SPEC[$old]} RS_SLOT[$new]=${RS_SLOT[$old]}
  RS_IMG[$new]=${RS_IMG[$old]} RS_ORDER[$new]=${RS_ORDER[$old]}
  unset "RS_STATE[$old]" "RS_SPEC[$old]" "RS_SLOT[$old]" "RS_IMG[$old]" "RS_ORDER[$old]"
  for i in "${!RS_NAMES[@]}"; do [[ ${RS_NAMES[$i]} == "$old" ]] && RS_NAMES[i]=$new; done
  return 0
}

# True unless --pull always brought a different image than the container's.
release_image_current() {
  [[ $R_PULL == missing ]] && return 0
  rh_pull_image "$R_IMAGE" always >/dev/null || return 0
  [[ ${RS_IMG[$1]:-} == "$(rh_image_id "$R_IMAGE")" ]]
}

# A slot alias must belong to one running container only; a leftover (e.g. a container started
# by hand or by an interrupted release) is stopped before the new container takes the slot.
release_free_slot() {
  local slot=$1 keep=$2 c
  for c in "${RS_NAMES[@]}"; do
    [[ $c == "$keep" ]] && continue
    release_is_up "${RS_STATE[$c]}" || continue
    if [[ ${RS_SLOT[$c]} == "$slot" ]]; then
      rh_warn release "$c holds the idle slot $slot but is not live: stopping it"
      rh_stop_containers "$R_STOP_TIMEOUT" "$c" || true
      RS_STATE[$c]=$(rh_container_state "$c")
      [[ ${RS_STATE[$c]} == exited ]] && RS_ORDER[$c]="$(date -u +%Y-%m-%dT%H:%M:%S.%NZ) ${RS_ORDER[$c]#* }"
    fi
  done
}

# Re-attaches a stopped container to the app network with the alias of SLOT (a retained
# container keeps the alias it was created with; the idle slot may be the other one now).
release_set_slot_alias() {
  local name=$1 slot=$2
  [[ $(release_container_slot "$name") == "$slot" ]] && return 0
  docker network disconnect "$R_NETWORK" "$name" >/dev/null 2>&1 || true
  docker network connect --alias "$R_SERVICE-$R_ROLE--$slot" "$R_NETWORK" "$name" ||
    release_abort start "could not attach $name to $R_NETWORK as slot $slot" "docker network inspect $R_NETWORK"
  RS_SLOT[$name]=$slot
}

release_create_container() {
  local name=$1 spec=$2 slot=$3 labels=() alias=() logs=()
  rh_labels_args labels "$R_SERVICE" "$R_ROLE" "$R_VERSION"
  rh_log_args logs "${R_OPTION_ARGS[@]}"
  [[ -n $slot ]] && alias=(--network-alias "$R_SERVICE-$R_ROLE--$slot")
  if ! docker run --detach --name "$name" --restart unless-stopped \
    --network "$R_NETWORK" "${alias[@]}" \
    --env-file "$(rh_app_dir "$R_SERVICE")/env/$R_ROLE.env" \
    --env "RAILHEAD_SERVICE=$R_SERVICE" --env "RAILHEAD_ROLE=$R_ROLE" --env "RAILHEAD_VERSION=$R_VERSION" \
    --env "RAILHEAD_CONTAINER_NAME=$name" \
    "${labels[@]}" --label "railhead.spec=$spec" --label "railhead.image=$R_IMAGE" \
    "${logs[@]}" "${R_VOLUME_ARGS[@]}" "${R_OPTION_ARGS[@]}" "$R_IMAGE" "${R_CMD_WORDS[@]}" >/dev/null; then
    docker rm -f "$name" >/dev/null 2>&1 || true
    release_abort start "docker could not start $name" "read Docker's error above (an --option, the image's command?)"
  fi
}

release_wait_healthy() {
  local name=$1 rc=0 since
  since=$(rh_now_us)
  if ((R_WEB)); then
    local ip
    ip=$(rh_container_ip "$name" "$R_NETWORK")
    [[ -n $ip ]] || release_abort health "$name has no address on $R_NETWORK" "docker inspect $name"
    RELEASE_IP=$ip
    RH_LAST_HEALTH_STATUS=""
    rh_wait_http_ok "$ip" "$R_APP_PORT" "$R_HEALTH_PATH" "$R_HEALTH_INTERVAL" "$R_HEALTH_TIMEOUT" "$R_DEPLOY_TIMEOUT" "$name" || rc=$?
    case $rc in
      0) rh_log health "$name answers 2xx on $R_HEALTH_PATH after $(rh_seconds_between "$since" "$(rh_now_us)")s" ;;
      1) release_abort health "$name did not answer 2xx on http://$ip:$R_APP_PORT$R_HEALTH_PATH within ${R_DEPLOY_TIMEOUT}s (last status ${RH_LAST_HEALTH_STATUS:-none})" "read the container log above; raise --deploy-timeout if the app boots slowly" ;;
      *) release_abort health "$name stopped while booting" "read the container log above" ;;
    esac
  else
    rh_wait_until_healthy "$name" "$R_DEPLOY_TIMEOUT" "$R_READINESS_DELAY" || rc=$?
    case $rc in
      0) rh_log health "$name ready after $(rh_seconds_between "$since" "$(rh_now_us)")s" ;;
      1) release_abort health "$name did not become ready within ${R_DEPLOY_TIMEOUT}s" "read the container log above" ;;
      *) release_abort health "$name stopped or restarted while booting" "read the container log above" ;;
    esac
  fi
}

# On any failure: stop the new container (kept for its logs), print its logs, audit, exit 1.
release_abort() {
  local step=$1 what=$2 next=$3
  if [[ ${RELEASE_NEW_STARTED:-0} == 1 ]]; then
    rh_print_container_logs "$RELEASE_NAME" 50
    docker stop -t "$R_STOP_TIMEOUT" "$RELEASE_NAME" >/dev/null 2>&1 || true
  fi
  rm -f "$(rh_app_dir "$R_SERVICE")/env/.$R_ROLE.env.incoming"
  rh_audit "$R_SERVICE" "$R_ROLE" "$R_VERSION" "failed:$step" "$(rh_seconds_between "$RELEASE_STARTED" "$(rh_now_us)")"
  rh_fail "$step" "$what" "$next"
}

# Stops every other running container of the role (they stay, for rollback). With "prune", also
# removes the stopped containers beyond the newest --retain, at the same time as the stop: the
# containers being stopped are the newest stopped ones once stopped, so which ones go is known
# before the stop ends. A container that cannot be stopped fails the command (the new release
# serves; the next release stops it again).
release_stop_others() {
  local keep=$1 prune=${2:-} c stopped=() prune_pid="" rc=0
  for c in "${RS_NAMES[@]}"; do
    [[ $c != "$keep" ]] && release_is_up "${RS_STATE[$c]}" && stopped+=("$c")
  done
  if [[ $prune == prune ]]; then
    release_prune "$keep" "${#stopped[@]}" &
    prune_pid=$!
  fi
  if ((${#stopped[@]})); then
    rh_stop_containers "$R_STOP_TIMEOUT" "${stopped[@]}" || rc=$?
  fi
  if [[ -n $prune_pid ]]; then wait "$prune_pid" || true; fi
  ((rc == 0)) || rh_fail stop "could not stop ${stopped[*]}" "docker ps; docker stop ${stopped[*]} (the new release already serves)"
  ((${#stopped[@]} == 0)) || rh_log stop "stopped ${stopped[*]} (kept for rollback)"
}

# Removes the stopped containers of the role beyond the newest --retain (by when they stopped),
# and their images when no other container uses them. Usage: release_prune KEEP STOPPING_NOW
# (STOPPING_NOW containers are being stopped and count as the newest).
release_prune() {
  local keep=$1 room=$((R_RETAIN - $2)) c name image removed=() images=() lines=()
  ((room >= 0)) || room=0
  mapfile -t lines < <(for c in "${RS_NAMES[@]}"; do
    [[ $c == "$keep" ]] && continue
    case ${RS_STATE[$c]} in exited | created | dead) printf '%s %s\n' "${RS_ORDER[$c]}" "$c" ;; esac
  done | sort -r | tail -n +"$((room + 1))")
  for c in "${lines[@]}"; do
    read -r _ _ name <<<"$c"
    [[ -n $name ]] || continue
    if rh_api_word "$name" && rh_api DELETE "/containers/$name" >/dev/null; then
      :
    elif [[ -n $RH_API_SOCKET ]] || ! docker rm "$name" >/dev/null; then
      continue
    fi
    removed+=("$name")
    images+=("${RS_IMG[$name]}")
  done
  ((${#removed[@]})) || return 0
  rh_log prune "removed ${removed[*]} (beyond --retain $R_RETAIN)"
  # An image still used by any container (running or stopped) is refused by the engine (no force).
  for image in $(printf '%s\n' "${images[@]}" | sort -u); do
    if rh_api_word "$image" && rh_api DELETE "/images/$image" >/dev/null; then
      rh_log prune "removed unused image ${image:7:12}"
    elif [[ -z $RH_API_SOCKET ]] && [[ -z $(docker ps -a --filter "ancestor=$image" --format '{{.ID}}' | head -n 1) ]] &&
      docker rmi "$image" >/dev/null 2>&1; then
      rh_log prune "removed unused image ${image:7:12}"
    fi
  done
}

# ---------------------------------------------------------------- role remove

role_help() {
  cat <<'HELP'
Usage: railhead-host role remove --service S --role R [--network railhead]

Stops and removes every container of role R of service S (running, stopped, retained) and the
role's env file. The proxy backend of a web role is left alone (it belongs to `proxy service`).
HELP
}

cmd_role() {
  [[ ${1:-} == remove ]] || { [[ ${1:-} == -h || ${1:-} == --help || -z ${1:-} ]] && { role_help; return 0; }; rh_usage_fail "unknown role subcommand '${1:-}'"; }
  shift
  R_SERVICE="" R_ROLE=""
  while (($#)); do
    case $1 in
      --service) rh_need_arg "$1" "$#"; R_SERVICE=$2; shift 2 ;;
      --role) rh_need_arg "$1" "$#"; R_ROLE=$2; shift 2 ;;
      --network) rh_need_arg "$1" "$#"; shift 2 ;;
      -h | --help) role_help; return 0 ;;
      *) rh_usage_fail "unknown role remove option '$1'" ;;
    esac
  done
  [[ -n $R_SERVICE && -n $R_ROLE ]] || rh_usage_fail "role remove needs --service and --role"
  rh_validate_name service "$R_SERVICE"
  rh_validate_name role "$R_ROLE"
  rh_require_docker
  rh_with_lock "release-$R_SERVICE-$R_ROLE" role_remove_locked
}

role_remove_locked() {
  local names
  mapfile -t names < <(release_role_containers)
  if ((${#names[@]})); then
    docker rm -f "${names[@]}" >/dev/null
    rh_log role "removed ${names[*]}"
  else
    rh_log role "no container of $R_SERVICE/$R_ROLE on this host"
  fi
  rm -f "$(rh_app_dir "$R_SERVICE")/env/$R_ROLE.env"
}

# ---------------------------------------------------------------- migrate

migrate_help() {
  cat <<'HELP'
Usage: railhead-host migrate --service S --version V --image IMG --cmd CMD
                             [--network railhead] [--option KEY[=VALUE]]... [--volume NAME:/path[:ro]]...
                             [--pull missing|always] < env-file

Runs CMD once in a one-off container (<S>-migrate-<V>-<random>, removed afterwards) on the app
network with the release env from stdin, prints its output and exits with its status.
--volume mounts a named volume as `release --volume` does (the same SQLite files the releases
see); a missing volume is created with Railhead's labels, none is ever removed.
HELP
}

cmd_migrate() {
  local service="" version="" image="" cmd="" network=railhead pull=missing options=() option_args=() words=() opt key
  local volumes=() volume_args=() v
  while (($#)); do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --version) rh_need_arg "$1" "$#"; version=$2; shift 2 ;;
      --image) rh_need_arg "$1" "$#"; image=$2; shift 2 ;;
      --cmd) rh_need_arg "$1" "$#"; cmd=$2; shift 2 ;;
      --network) rh_need_arg "$1" "$#"; network=$2; shift 2 ;;
      --option) rh_need_arg "$1" "$#"; options+=("$2"); shift 2 ;;
      --volume) rh_need_arg "$1" "$#"; volumes+=("$2"); shift 2 ;;
      --pull) rh_need_arg "$1" "$#"; pull=$2; shift 2 ;;
      --host-identity) rh_need_arg "$1" "$#"; shift 2 ;;
      -h | --help) migrate_help; return 0 ;;
      *) rh_usage_fail "unknown migrate option '$1'" ;;
    esac
  done
  [[ -n $service && -n $version && -n $image && -n $cmd ]] || rh_usage_fail "migrate needs --service, --version, --image and --cmd"
  rh_validate_name service "$service"
  rh_validate_version "$version"
  rh_validate_name network "$network"
  [[ $pull == missing || $pull == always ]] || rh_usage_fail "--pull must be missing or always"
  for opt in "${options[@]}"; do
    key=${opt%%=*}
    [[ $key =~ ^[a-z][a-z0-9-]*$ ]] || rh_usage_fail "--option '$opt' must be KEY or KEY=VALUE"
    if [[ $opt == *=* ]]; then option_args+=("--$key" "${opt#*=}"); else option_args+=("--$key"); fi
  done
  release_volumes volumes "${volumes[@]}"
  for v in "${volumes[@]}"; do volume_args+=(--volume "$v"); done
  rh_split_words words "$cmd"
  rh_require_docker
  local env_file name labels=() logs=() rc=0 started
  started=$(rh_now_us)
  env_file="$(rh_app_dir "$service")/env/.migrate-$$.env"
  mkdir -p "$(dirname "$env_file")"
  rh_env_file_from_stdin "$env_file"
  rh_pull_image "$image" "$pull" || { rm -f "$env_file"; rh_fail pull "could not pull $image" "check the image reference and 'registry login'"; }
  release_ensure_volumes "$service" "${volumes[@]}" || { rm -f "$env_file"; rh_fail volume "could not create a volume of ${volumes[*]}" "docker volume ls; read Docker's error above"; }
  name="$service-migrate-$version-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  rh_labels_args labels "$service" migrate "$version"
  rh_log_args logs "${option_args[@]}"
  rh_log migrate "running '${words[*]}' in $name"
  docker run --rm --name "$name" --network "$network" --env-file "$env_file" \
    --env "RAILHEAD_SERVICE=$service" --env "RAILHEAD_ROLE=migrate" --env "RAILHEAD_VERSION=$version" \
    "${labels[@]}" "${logs[@]}" "${volume_args[@]}" "${option_args[@]}" "$image" "${words[@]}" </dev/null || rc=$?
  rm -f "$env_file"
  migrate_wait_removed "$name"
  rh_audit "$service" migrate "$version" "$([[ $rc == 0 ]] && echo ok || echo "failed:exit-$rc")" "$(rh_seconds_between "$started" "$(rh_now_us)")"
  if ((rc != 0)); then
    printf '[railhead] %s ERROR migrate: %s exited with status %s. Next: read its output above (%ss)\n' \
      "$(rh_host_label)" "'${words[*]}'" "$rc" "$(rh_elapsed)" >&2
    exit "$rc"
  fi
  rh_log migrate "'${words[*]}' succeeded"
}

# `docker run --rm` can return while the engine is still removing the container (seen on the rig:
# the one-off was listed for a moment after the CLI returned). The one-off must be gone when
# migrate returns, so wait for it (bounded), then remove it outright.
migrate_wait_removed() { # name
  local i
  for ((i = 0; i < 100; i++)); do
    docker container inspect "$1" >/dev/null 2>&1 || return 0
    sleep 0.05
  done
  docker rm -f "$1" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- audit, containers

cmd_audit() {
  local service=""
  while (($#)); do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      -h | --help) printf 'Usage: railhead-host audit --service S\n\nPrints the release log of S on this host: time, host, role, version, result, seconds.\n'; return 0 ;;
      *) rh_usage_fail "unknown audit option '$1'" ;;
    esac
  done
  [[ -n $service ]] || rh_usage_fail "audit needs --service"
  rh_validate_name service "$service"
  local file
  file="$(rh_app_dir "$service")/audit.log"
  if [[ -f $file ]]; then cat "$file"; fi
}

cmd_containers() {
  local service=""
  while (($#)); do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      -h | --help) printf 'Usage: railhead-host containers --service S\n\nLists the containers of S on this host: name, role, version, state, image.\n'; return 0 ;;
      *) rh_usage_fail "unknown containers option '$1'" ;;
    esac
  done
  [[ -n $service ]] || rh_usage_fail "containers needs --service"
  rh_validate_name service "$service"
  rh_require_docker
  printf 'NAME\tROLE\tVERSION\tSTATE\tIMAGE\n'
  docker ps -a --filter "label=railhead.service=$service" \
    --format '{{.Names}}\t{{.Label "railhead.role"}}\t{{.Label "railhead.version"}}\t{{.State}}\t{{.Image}}'
}
