# shellcheck shell=bash
# day2.sh: what a person runs against a live deploy (through `npm run railhead -- ...`):
#   logs     the log of a role's running release, an accessory, the proxy or the replicator
#   exec     a command in a one-off container of a role (the release's image and env file), or in
#            the running container (--reuse); interactive when the caller has a terminal
#   details  what runs here for a service: releases per role, health, proxy slot, accessories
# Read-only, except exec's one-off container (removed when it ends). Status lines go to stderr so
# stdout carries only what was asked for (a log, a command's output, the details table).

rh_register_command "logs" "log of a role, accessory, proxy or litestream (--follow, --since, --lines, --grep)"
rh_register_command "exec" "a command in a one-off container of a role (its image and env), or --reuse the running one"
rh_register_command "details" "releases per role with health and proxy slot, accessories, proxy, maintenance"

day2_note() { # step message: a status line on stderr, in the tool's log format
  printf '[railhead] %s %s: %s (%ss)\n' "$(rh_host_label)" "$1" "$2" "$(rh_elapsed)" >&2
}

# The running container of SERVICE's ROLE (newest first); with VERSION, that release's container
# whether it runs or not. Fails with what exists instead.
day2_role_container() {
  local service=$1 role=$2 version=${3:-} name
  if [[ -n $version ]]; then
    name="$service-$role-$version"
    [[ -n $(rh_container_state "$name") ]] ||
      rh_fail find "no container $name on this host" "list the retained versions with: railhead-host containers --service $service"
    printf '%s' "$name"
    return 0
  fi
  name=$(docker ps --filter "label=railhead.service=$service" --filter "label=railhead.role=$role" \
    --filter status=running --format '{{.Names}}' | head -n 1)
  if [[ -z $name ]]; then
    local roles
    roles=$(docker ps -a --filter "label=railhead.service=$service" --format '{{.Label "railhead.role"}}' | sort -u | tr '\n' ' ')
    rh_fail find "no running container of role '$role' of $service on this host (roles here: ${roles:-none})" \
      "check the role name, or pick a retained release with --version; railhead-host details --service $service"
  fi
  printf '%s' "$name"
}

day2_accessory_container() {
  local service=$1 accessory=$2 name
  name=$(docker ps -a --filter "label=railhead.service=$service" --filter "label=railhead.accessory=$accessory" \
    --format '{{.Names}}' | head -n 1)
  [[ -n $name ]] || rh_fail find "no accessory '$accessory' of $service on this host" "railhead-host details --service $service lists what runs here"
  printf '%s' "$name"
}

# ---------------------------------------------------------------- logs

day2_logs_help() {
  cat <<'HELP'
Usage: railhead-host logs --service S (--role R [--version V] | --accessory N | --proxy | --litestream)
                          [--follow] [--since TIME] [--lines N] [--grep PATTERN] [--timestamps]

Prints the Docker log of one container: the running release of role R (or release V), accessory
N, the proxy, or the Litestream replicator. --since takes Docker's forms (10m, 2h,
2026-11-22T10:00:00). --lines defaults to 200 unless --since is given. --grep keeps lines matching
the extended regular expression PATTERN. With --follow it keeps streaming until interrupted.
HELP
}

cmd_logs() {
  local service="" role="" version="" accessory="" what="" follow=0 since="" lines="" pattern="" timestamps=0
  while (($#)); do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --role) rh_need_arg "$1" "$#"; role=$2; what=role; shift 2 ;;
      --version) rh_need_arg "$1" "$#"; version=$2; shift 2 ;;
      --accessory) rh_need_arg "$1" "$#"; accessory=$2; what=accessory; shift 2 ;;
      --proxy) what=proxy; shift ;;
      --litestream) what=litestream; shift ;;
      -f | --follow) follow=1; shift ;;
      --since) rh_need_arg "$1" "$#"; since=$2; shift 2 ;;
      -n | --lines) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; lines=$2; shift 2 ;;
      -g | --grep) rh_need_arg "$1" "$#"; pattern=$2; shift 2 ;;
      -T | --timestamps) timestamps=1; shift ;;
      -h | --help) day2_logs_help; return 0 ;;
      *) rh_usage_fail "unknown logs option '$1'" ;;
    esac
  done
  [[ -n $service ]] || rh_usage_fail "logs needs --service"
  [[ -n $what ]] || rh_usage_fail "logs needs one of --role, --accessory, --proxy, --litestream"
  rh_validate_name service "$service"
  [[ -z $version ]] || rh_validate_version "$version"
  rh_require_docker
  local container
  case $what in
    role) rh_validate_name role "$role"; container=$(day2_role_container "$service" "$role" "$version") ;;
    accessory) rh_validate_name accessory "$accessory"; container=$(day2_accessory_container "$service" "$accessory") ;;
    proxy) container=${RH_PROXY_CONTAINER:-railhead-proxy} ;;
    litestream) container="$service-litestream" ;;
  esac
  [[ -n $(rh_container_state "$container") ]] || rh_fail find "no container $container on this host" "railhead-host details --service $service"

  local args=()
  ((follow)) && args+=(--follow)
  ((timestamps)) && args+=(--timestamps)
  [[ -n $since ]] && args+=(--since "$since")
  if [[ -n $lines ]]; then args+=(--tail "$lines"); elif [[ -z $since ]]; then args+=(--tail 200); fi
  day2_note logs "$container ($(rh_container_state "$container"), version $(rh_container_label "$container" railhead.version))"
  if [[ -n $pattern ]]; then
    # grep finding nothing is not an error; docker failing is (pipefail).
    docker logs "${args[@]}" "$container" 2>&1 | { grep --line-buffered -E -- "$pattern" || true; }
  else
    docker logs "${args[@]}" "$container" 2>&1
  fi
}

# ---------------------------------------------------------------- exec

day2_exec_help() {
  cat <<'HELP'
Usage: railhead-host exec --service S --role R [--version V] [--reuse] [--interactive] [--tty]
                          [--env KEY=VALUE]... [--network railhead] -- CMD [ARGS...]

Without --reuse: runs CMD in a new container (<S>-<R>-exec-<random>, removed when it ends) from
the image of the role's running release (or release V), with the role's env file and the app
network, as a release would run. With --reuse: runs CMD inside the running container
(docker exec). --interactive keeps stdin open; --tty allocates a terminal (default: when stdin and
stdout are terminals). Exits with CMD's status.
HELP
}

cmd_exec() {
  local service="" role="" version="" reuse=0 interactive=0 tty=auto network=railhead envs=() exec_argv=()
  while (($#)); do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --role) rh_need_arg "$1" "$#"; role=$2; shift 2 ;;
      --version) rh_need_arg "$1" "$#"; version=$2; shift 2 ;;
      --reuse) reuse=1; shift ;;
      -i | --interactive) interactive=1; shift ;;
      -t | --tty) tty=1; shift ;;
      --no-tty) tty=0; shift ;;
      -e | --env)
        rh_need_arg "$1" "$#"
        [[ $2 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || rh_usage_fail "--env '$2' must be KEY=VALUE"
        envs+=(--env "$2"); shift 2 ;;
      --network) rh_need_arg "$1" "$#"; network=$2; shift 2 ;;
      -h | --help) day2_exec_help; return 0 ;;
      --) shift; exec_argv=("$@"); break ;;
      *) rh_usage_fail "unknown exec option '$1' (put the command after --)" ;;
    esac
  done
  [[ -n $service && -n $role ]] || rh_usage_fail "exec needs --service and --role"
  ((${#exec_argv[@]})) || rh_usage_fail "exec needs a command after --"
  rh_validate_name service "$service"
  rh_validate_name role "$role"
  rh_validate_name network "$network"
  [[ -z $version ]] || rh_validate_version "$version"
  rh_require_docker

  local from flags=()
  from=$(day2_role_container "$service" "$role" "$version")
  ((interactive)) && flags+=(--interactive)
  if [[ $tty == 1 ]] || { [[ $tty == auto ]] && [[ -t 0 && -t 1 ]]; }; then flags+=(--tty); fi

  if ((reuse)); then
    [[ $(rh_container_state "$from") == running ]] || rh_fail exec "$from is not running, so --reuse has nothing to enter" "drop --reuse to run a one-off container from its image"
    day2_note exec "running '${exec_argv[*]}' in $from"
    local rc=0
    docker exec "${flags[@]}" "${envs[@]}" "$from" "${exec_argv[@]}" || rc=$?
    return "$rc"
  fi

  local image release_version env_file name
  image=$(docker container inspect --format '{{.Config.Image}}' "$from")
  release_version=$(rh_container_label "$from" railhead.version)
  env_file="$(rh_app_dir "$service")/env/$role.env"
  [[ -f $env_file ]] || rh_fail exec "no env file $env_file for role $role" "deploy the role first (pulumi up); its release writes the env file"
  name="$service-$role-exec-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  day2_note exec "running '${exec_argv[*]}' in one-off $name (image $image, version $release_version)"
  local rc=0
  docker run --rm "${flags[@]}" --name "$name" --network "$network" --env-file "$env_file" \
    --env "RAILHEAD_SERVICE=$service" --env "RAILHEAD_ROLE=$role" --env "RAILHEAD_VERSION=$release_version" \
    --env "RAILHEAD_CONTAINER_NAME=$name" "${envs[@]}" \
    --label railhead.managed=true --label "railhead.service=$service" --label "railhead.exec=$role" \
    "$image" "${exec_argv[@]}" || rc=$?
  return "$rc"
}

# ---------------------------------------------------------------- details

day2_details_help() {
  cat <<'HELP'
Usage: railhead-host details --service S

Prints what runs on this host for service S, one line each:
  release   ROLE VERSION STATE HEALTH CONTAINER IMAGE   (HEALTH: live/idle proxy slot and the
            health path's HTTP status for web releases, Docker health otherwise; retained = kept
            stopped for rollback)
  accessory NAME STATE HEALTH CONTAINER IMAGE
  proxy     SERVICE live=SLOT maintenance=on|off
  replicator, tool and Docker versions.
HELP
}

# Slot alias (a|b) of a web container on the network.
day2_slot_of() {
  local container=$1 service=$2 role=$3 network=$4
  docker container inspect --format "{{with index .NetworkSettings.Networks \"$network\"}}{{range .Aliases}}{{println .}}{{end}}{{end}}" "$container" 2>/dev/null |
    sed -n "s/^$service-$role--\([ab]\)\$/\1/p" | head -n 1
}

day2_docker_health() {
  local h
  h=$(docker container inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1" 2>/dev/null || true)
  printf '%s' "${h:-no-healthcheck}"
}

# The proxy service conf whose ROLE is ROLE among SERVICE's (the primary role is named SERVICE,
# others SERVICE-ROLE); empty when the role is not proxied here.
day2_proxy_conf_for_role() {
  local service=$1 role=$2 conf
  for conf in "$(rh_state_dir)/proxy/services/$service.conf" "$(rh_state_dir)/proxy/services/$service-$role.conf"; do
    if [[ -f $conf && $(rh_kv_get "$conf" ROLE) == "$role" ]]; then
      printf '%s' "$conf"
      return 0
    fi
  done
}

cmd_details() {
  local service=""
  while (($#)); do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      -h | --help) day2_details_help; return 0 ;;
      *) rh_usage_fail "unknown details option '$1'" ;;
    esac
  done
  [[ -n $service ]] || rh_usage_fail "details needs --service"
  rh_validate_name service "$service"
  rh_require_docker

  printf 'host %s: tool %s, docker %s\n' "$(rh_host_label)" "${RAILHEAD_TOOL_VERSION:-dev}" "$(docker version --format '{{.Server.Version}}' 2>/dev/null)"
  local line name role version state image health conf live slot port path ip status
  local found=0
  while IFS=$'\t' read -r name role version state image; do
    [[ -n $name ]] || continue
    found=1
    health=""
    if [[ $state == running ]]; then
      conf=$(day2_proxy_conf_for_role "$service" "$role")
      if [[ -n $conf ]]; then
        live=$(rh_kv_get "$conf" LIVE)
        slot=$(day2_slot_of "$name" "$service" "$role" railhead)
        port=$(rh_kv_get "$conf" APP_PORT)
        path=$(rh_kv_get "$conf" HEALTH_PATH)
        ip=$(rh_container_ip "$name" railhead)
        status=000
        [[ -n $ip ]] && status=$(rh_http_status "$ip" "${port:-80}" "${path:-/up}" 3)
        if [[ -n $slot && $slot == "$live" ]]; then health="live(slot $slot) ${path:-/up}=$status"; else health="idle(slot ${slot:--}) ${path:-/up}=$status"; fi
      else
        health=$(day2_docker_health "$name")
      fi
    elif [[ $name == *-replaced-* ]]; then
      health=replaced
    else
      health=retained
    fi
    printf 'release   %-10s %-14s %-8s %-28s %-32s %s\n' "$role" "$version" "$state" "$health" "$name" "$image"
  done < <(docker ps -a --filter "label=railhead.service=$service" --filter "label=railhead.role" \
    --format '{{.Names}}	{{.Label "railhead.role"}}	{{.Label "railhead.version"}}	{{.State}}	{{.Image}}' | sort -t $'\t' -k2,2 -s)
  ((found)) || printf 'release   (none: no release of %s on this host)\n' "$service"

  while IFS=$'\t' read -r name line state image; do
    [[ -n $name ]] || continue
    printf 'accessory %-10s %-8s %-16s %-32s %s\n' "$line" "$state" "$(day2_docker_health "$name")" "$name" "$image"
  done < <(docker ps -a --filter "label=railhead.service=$service" --filter "label=railhead.accessory" \
    --format '{{.Names}}	{{.Label "railhead.accessory"}}	{{.State}}	{{.Image}}')

  local proxy_state
  proxy_state=$(rh_container_state "${RH_PROXY_CONTAINER:-railhead-proxy}")
  for conf in "$(rh_state_dir)"/proxy/services/"$service".conf "$(rh_state_dir)"/proxy/services/"$service"-*.conf; do
    [[ -f $conf ]] || continue
    name=$(basename "$conf" .conf)
    if [[ $(rh_kv_get "$conf" MAINTENANCE) == 1 ]]; then line="on"; else line="off"; fi
    printf 'proxy     %-10s live=%-3s maintenance=%-3s role=%s domains=%s proxy=%s\n' "$name" "$(rh_kv_get "$conf" LIVE)" "$line" \
      "$(rh_kv_get "$conf" ROLE)" "$(rh_kv_get "$conf" DOMAINS)" "${proxy_state:-missing}"
  done
  state=$(rh_container_state "$service-litestream")
  [[ -z $state ]] || printf 'replicator %s-litestream %s\n' "$service" "$state"
}

# ---------------------------------------------------------------- drill-now

rh_register_command "drill-now" "run the backup drills scheduled for a service now, and report each"

day2_drill_now_help() {
  cat <<'HELP'
Usage: railhead-host drill-now --service S [--id ID]

Runs, now and in the foreground, every backup drill `drill schedule` installed for service S on
this host (the crontab entries marked `# railhead-drill S ID`), with the exact command cron runs,
printing its report instead of appending it to the drill log. Exits 1 if any drill failed, 4 when
no drill of S is scheduled on this host (not an error for a host without databases).
HELP
}

cmd_drill_now() {
  local service="" id=""
  while (($#)); do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --id) rh_need_arg "$1" "$#"; id=$2; shift 2 ;;
      -h | --help) day2_drill_now_help; return 0 ;;
      *) rh_usage_fail "unknown drill-now option '$1'" ;;
    esac
  done
  [[ -n $service ]] || rh_usage_fail "drill-now needs --service"
  rh_validate_name service "$service"
  if ! command -v crontab >/dev/null 2>&1; then
    day2_note drill "this host has no crontab, so no drill is scheduled here (install cron and run pulumi up to schedule them)"
    exit 4
  fi
  local entries=() line command marker_id failed=0 ran=0 started
  mapfile -t entries < <(crontab -l 2>/dev/null | grep -E "# railhead-drill $service ${id:-[A-Za-z0-9_-]+}\$" || true)
  if ((${#entries[@]} == 0)); then
    day2_note drill "no drill of $service is scheduled on this host${id:+ with id $id}"
    exit 4
  fi
  for line in "${entries[@]}"; do
    marker_id=${line##*# railhead-drill "$service" }
    # The command cron runs: drop the 5 schedule fields and the log redirection.
    command=$(sed -E 's/^[[:space:]]*([^[:space:]]+[[:space:]]+){5}//; s/[[:space:]]+<\/dev\/null[[:space:]]+>>.*$//' <<<"$line")
    started=$(rh_now_us)
    day2_note drill "running drill $marker_id of $service"
    # Same trust as cron: this is the line the tool itself wrote into this user's crontab.
    if sh -c "$command" </dev/null; then
      rh_log drill "$marker_id passed in $(rh_seconds_between "$started" "$(rh_now_us)")s"
    else
      failed=1
      printf '[railhead] %s ERROR drill: %s failed after %ss. Next: read the report above; the scheduled runs log to %s\n' \
        "$(rh_host_label)" "$marker_id" "$(rh_seconds_between "$started" "$(rh_now_us)")" "$(rh_state_dir)/drill/" >&2
    fi
    ran=$((ran + 1))
  done
  ((failed == 0)) || exit 1
  rh_log drill "$ran drill(s) of $service passed"
}
