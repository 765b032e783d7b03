#!/usr/bin/env bash
# accessory.sh: long-lived service containers (Postgres, Redis, ...) whose data lives on named
# volumes. `accessory boot` is idempotent through a spec hash label; a changed spec pulls the new
# image first, then replaces the container and waits until it is healthy, rolling back to the old
# container when the new one does not come up. Volumes are removed only by `accessory remove --purge`.
# Helpers shared by accessory.sh and litestream.sh are prefixed `dp_` (data path); logging,
# arguments, stdin and docker basics come from common.sh.

rh_register_command "accessory boot|remove|status" "Postgres/Redis/... containers with data on named volumes (env on stdin)"

# ---- data-path helpers (shared with litestream.sh; the rest comes from common.sh) -------------

dp_sha() { sha256sum | cut -c1-16; }

dp_container_exists() { docker container inspect "$1" >/dev/null 2>&1; }

dp_container_running() { [[ $(rh_container_state "$1") == running ]]; }

# Pulls IMG unless it is already on the host (a pinned tag does not change under us).
dp_ensure_image() {
  rh_pull_image "$1" missing || rh_fail pull "could not pull $1" "check the image name and the registry login (railhead-host registry login)"
}

# Creates a named volume with Railhead's labels if it does not exist; never touches an existing one.
dp_ensure_volume() { # name service owner-label
  local vol=$1 service=$2 owner=$3
  docker volume inspect "$vol" >/dev/null 2>&1 && return 0
  docker volume create --label railhead.managed=true --label "railhead.service=$service" --label "railhead.owner=$owner" "$vol" >/dev/null
  rh_log volume "created volume $vol"
}

# ---- accessory ------------------------------------------------------------------------------

accessory_usage() {
  cat <<'EOF'
Usage: railhead-host accessory boot --service S --name N --image IMG [options] < envfile
       railhead-host accessory remove --service S --name N [--purge]
       railhead-host accessory status --service S --name N

boot: runs container <service>-<name> with --restart unless-stopped on the app network, with the
network aliases <service>-<name> and <name>. stdin is its env file (KEY=VALUE lines, kept 0600).
The same spec twice changes nothing (label railhead.spec). A changed spec pulls the new image
first, then stops the old container, starts the new one and waits until it is healthy; if it is
not, the old container is started again and the command fails.

  --port IP:HOSTPORT:CONTAINERPORT  publish (repeatable); a bind without an IP, or on 0.0.0.0/::,
                                    is public and needs --allow-public (a warning is printed);
                                    an empty value is ignored
  --allow-public                    permit public port binds
  --volume NAME:/path               named volume (repeatable); created if missing, never removed here
  --cmd CMD                         container command (split into words)
  --option KEY=VALUE                docker run --KEY VALUE (repeatable; KEY=true gives --KEY)
  --health-cmd CMD                  shell command in the container that exits 0 when it serves
  --health-timeout SECONDS          how long to wait for healthy (default 90)
  --network NAME                    app network (default railhead)
  --host-identity ID                ignored; changes when the server is rebuilt

remove: removes the container; its volumes and data stay unless --purge.
EOF
}

cmd_accessory() {
  local sub=${1:-}
  [[ $# -gt 0 ]] && shift
  case $sub in
    boot) accessory_boot "$@" ;;
    remove) accessory_remove "$@" ;;
    status) accessory_status "$@" ;;
    -h | --help | help | "") accessory_usage ;;
    *) rh_usage_fail "unknown accessory subcommand \"$sub\"" ;;
  esac
}

accessory_boot() {
  local service="" name="" image="" cmd="" health="" network=railhead allow_public=0 timeout=90
  local -a ports=() volumes=() options=()
  while [[ $# -gt 0 ]]; do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --name) rh_need_arg "$1" "$#"; name=$2; shift 2 ;;
      --image) rh_need_arg "$1" "$#"; image=$2; shift 2 ;;
      --port) rh_need_arg "$1" "$#"; ports+=("$2"); shift 2 ;;
      --volume) rh_need_arg "$1" "$#"; volumes+=("$2"); shift 2 ;;
      --cmd) rh_need_arg "$1" "$#"; cmd=$2; shift 2 ;;
      --option) rh_need_arg "$1" "$#"; options+=("$2"); shift 2 ;;
      --health-cmd) rh_need_arg "$1" "$#"; health=$2; shift 2 ;;
      --health-timeout) rh_need_arg "$1" "$#"; timeout=$2; shift 2 ;;
      --network) rh_need_arg "$1" "$#"; network=$2; shift 2 ;;
      --allow-public) allow_public=1; shift ;;
      --host-identity) rh_need_arg "$1" "$#"; shift 2 ;;
      -h | --help) accessory_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for accessory boot" ;;
    esac
  done
  [[ -n $service && -n $name && -n $image ]] || rh_usage_fail "accessory boot needs --service, --name and --image"
  rh_validate_name service "$service"
  rh_validate_name name "$name"
  [[ $timeout =~ ^[0-9]+$ ]] || rh_usage_fail "--health-timeout must be a number of seconds"
  local container="$service-$name" step="accessory $service-$name" started=$SECONDS

  local -a run_args=()
  local p v o
  for p in "${ports[@]}"; do
    [[ -n $p ]] || continue # an empty bind: the host has no private address
    if [[ $p =~ ^(([0-9]{1,3}\.){3}[0-9]{1,3}|\[[0-9a-fA-F:]+\]):[0-9]{1,5}:[0-9]{1,5}(/(tcp|udp))?$ ]]; then
      if [[ $p == 0.0.0.0:* || $p == "[::]:"* ]]; then
        [[ $allow_public == 1 ]] || rh_usage_fail "--port $p binds every interface; pass --allow-public to mean it"
        rh_warn "$step" "publishing $p on ALL interfaces, including public ones; firewall it or bind the private IP"
      fi
    elif [[ $p =~ ^[0-9]{1,5}(:[0-9]{1,5})?(/(tcp|udp))?$ ]]; then
      [[ $allow_public == 1 ]] || rh_usage_fail "--port $p has no bind address, so Docker publishes it on every interface; give IP:HOSTPORT:CONTAINERPORT or pass --allow-public"
      rh_warn "$step" "publishing $p on ALL interfaces, including public ones; firewall it or bind the private IP"
    else
      rh_usage_fail "--port \"$p\" is not IP:HOSTPORT:CONTAINERPORT"
    fi
    run_args+=(--publish "$p")
  done
  for v in "${volumes[@]}"; do
    [[ $v =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]*:/[^:]*$ ]] || rh_usage_fail "--volume \"$v\" is not NAME:/absolute/path"
    run_args+=(--volume "$v")
  done
  for o in "${options[@]}"; do
    [[ $o =~ ^[a-z][a-z0-9-]*=.*$ ]] || rh_usage_fail "--option \"$o\" is not KEY=VALUE"
    if [[ ${o#*=} == true ]]; then run_args+=("--${o%%=*}"); else run_args+=("--${o%%=*}=${o#*=}"); fi
  done
  if [[ -n $health ]]; then
    run_args+=(--health-cmd "$health" --health-interval 10s --health-timeout 5s --health-retries 3 --health-start-period 60s)
  fi

  local dir
  dir="$(rh_state_dir)/accessories/$container"
  mkdir -p "$dir"
  chmod 700 "$dir"
  rh_env_file_from_stdin "$dir/env.next"
  local spec
  spec=$( {
    printf '%s\n' "image=$image" "network=$network" "cmd=$cmd" "health=$health"
    printf 'arg=%s\n' "${run_args[@]}"
    printf 'env=%s\n' "$(dp_sha <"$dir/env.next")"
  } | dp_sha)

  if dp_container_exists "$container" && [[ "$(rh_container_label "$container" railhead.spec)" == "$spec" ]]; then
    mv -f "$dir/env.next" "$dir/env"
    if ! dp_container_running "$container"; then
      rh_log "$step" "same spec, container stopped: starting it"
      docker start "$container" >/dev/null
    fi
    accessory_wait_healthy "$container" "$health" "$timeout" || { rh_print_container_logs "$container" 50; rh_fail "$step" "$container is not healthy" "read the log lines above; docker logs $container"; }
    rh_log "$step" "already current ($image)"
    return 0
  fi

  # The new image is on the host before the old container stops: a failed pull changes nothing.
  dp_ensure_image "$image"
  network_ensure "$network"
  for v in "${volumes[@]}"; do dp_ensure_volume "${v%%:*}" "$service" "accessory:$name"; done

  local previous="$container-previous" had_old=0
  if dp_container_exists "$container"; then
    had_old=1
    docker rm -f "$previous" >/dev/null 2>&1 || true
    rh_log "$step" "spec changed: stopping the old container"
    docker stop -t 30 "$container" >/dev/null
    docker rename "$container" "$previous"
  elif dp_container_exists "$previous"; then
    had_old=1 # a run that died half-way left the last good container under this name
  fi
  mv -f "$dir/env.next" "$dir/env"

  local -a net_args=(--network "$network")
  if [[ $network != host && $network != none ]]; then net_args+=(--network-alias "$container" --network-alias "$name"); fi
  local -a cmd_words=()
  rh_split_words cmd_words "$cmd"
  local -a log_args=()
  rh_log_args log_args "${run_args[@]}" # not part of the spec: adding log caps restarts no accessory
  rh_log "$step" "starting $container ($image)"
  if ! docker run -d --name "$container" --restart unless-stopped "${net_args[@]}" \
    --label railhead.managed=true --label "railhead.service=$service" --label "railhead.accessory=$name" \
    --label "railhead.spec=$spec" --env-file "$dir/env" "${log_args[@]}" "${run_args[@]}" "$image" "${cmd_words[@]}" >/dev/null; then
    accessory_rollback "$container" "$previous" "$had_old"
    rh_fail "$step" "docker run failed for $container" "check the port binds and options above"
  fi
  if ! accessory_wait_healthy "$container" "$health" "$timeout"; then
    rh_print_container_logs "$container" 50
    accessory_rollback "$container" "$previous" "$had_old"
    rh_fail "$step" "$container did not become healthy within ${timeout}s; the previous container (if any) runs again" "read the log lines above"
  fi
  [[ $had_old == 1 ]] && docker rm -f "$previous" >/dev/null 2>&1
  rh_log "$step" "booted $container ($image) in $((SECONDS - started))s"
}

accessory_rollback() { # container previous had_old
  docker rm -f "$1" >/dev/null 2>&1 || true
  if [[ $3 == 1 ]] && dp_container_exists "$2"; then
    { docker rename "$2" "$1" && docker start "$1" >/dev/null; } || true
  fi
}

# Waits until the container runs and HEALTH (a shell command run inside it) exits 0.
accessory_wait_healthy() { # container health timeout
  local container=$1 health=$2 deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    if ! dp_container_running "$container"; then
      [[ "$(docker container inspect -f '{{.State.Restarting}}' "$container" 2>/dev/null)" == true ]] || return 1
    elif [[ -z $health ]]; then
      sleep 2
      dp_container_running "$container"
      return
    elif docker exec "$container" sh -c "$health" >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  return 1
}

accessory_remove() {
  local service="" name="" purge=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --name) rh_need_arg "$1" "$#"; name=$2; shift 2 ;;
      --purge) purge=1; shift ;;
      -h | --help) accessory_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for accessory remove" ;;
    esac
  done
  [[ -n $service && -n $name ]] || rh_usage_fail "accessory remove needs --service and --name"
  rh_validate_name service "$service"
  rh_validate_name name "$name"
  local container="$service-$name" step="accessory $service-$name"
  docker rm -f "$container" "$container-previous" >/dev/null 2>&1 || true
  local -a vols=()
  mapfile -t vols < <(docker volume ls -q --filter label=railhead.managed=true --filter "label=railhead.service=$service" --filter "label=railhead.owner=accessory:$name")
  if [[ $purge == 1 ]]; then
    local v
    for v in "${vols[@]}"; do docker volume rm "$v" >/dev/null && rh_log "$step" "purged volume $v"; done
    rm -rf "$(rh_state_dir)/accessories/$container"
  elif [[ ${#vols[@]} -gt 0 ]]; then
    rh_log "$step" "kept volumes: ${vols[*]} (remove them with: accessory remove --service $service --name $name --purge)"
  fi
  rh_log "$step" "removed $container"
}

accessory_status() {
  local service="" name=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --name) rh_need_arg "$1" "$#"; name=$2; shift 2 ;;
      -h | --help) accessory_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for accessory status" ;;
    esac
  done
  [[ -n $service && -n $name ]] || rh_usage_fail "accessory status needs --service and --name"
  docker container inspect -f '{{.Name}} {{.State.Status}} health={{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} image={{.Config.Image}} spec={{index .Config.Labels "railhead.spec"}}' "$service-$name" 2>/dev/null ||
    { echo "$service-$name absent"; return 1; }
}
