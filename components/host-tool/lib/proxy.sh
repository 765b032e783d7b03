# shellcheck shell=bash
# The host's reverse proxy: one HAProxy container `railhead-proxy` on the app network, switched
# between two server slots per service (a/b) through its runtime API (DESIGN.md decision 9), and
# an optional Caddy front `railhead-tls` that terminates TLS for services added with --ssl.
#
# State ($RAILHEAD_STATE_DIR/proxy):
#   proxy.conf              what `proxy boot` was given (IMAGE, NETWORK, HTTP_PORT, ...)
#   services/<svc>.conf     one per service: ROLE, APP_PORT, DOMAINS, SSL, RESPONSE_TIMEOUT,
#                           HEALTH_PATH, LIVE (a|b|empty), MAINTENANCE (0|1)
#   maintenance.map         `<svc> <html-escaped message>` for services in maintenance
#   domains.map             `<host name> be_<svc>` per domain, `_default be_<svc>` for the catch-all
#   haproxy.cfg             rendered from the above; copied into the container (docker cp), so
#   Caddyfile               the proxy works whatever filesystem the Docker engine sees
#   loaded.hash             `<section> <hash>` per config section (_head, each backend) the running
#                           HAProxy has loaded (see proxy_needs_reload)
#
# The config and maps are re-rendered whenever a service's live slot, domains or maintenance
# change, so a restarted HAProxy routes exactly like the running one. Routing (domains.map) and
# slot states change at run time; HAProxy is *reloaded* only when it lacks a backend the config
# has, or a backend's settings (port, role, timeout) changed: never on a release, a domain change,
# a maintenance toggle or a service removal (a removed backend stays in the running process,
# unrouted, its slots in maintenance, until the next reload or restart).

RH_PROXY_CONTAINER=railhead-proxy
RH_TLS_CONTAINER=railhead-tls
RH_PROXY_API_PORT=9999
RH_PROXY_CFG_DIR=/etc/railhead-proxy

rh_register_command "proxy boot" "run the HAProxy container railhead-proxy (same spec twice: no change)"
rh_register_command "proxy service add|remove" "register / remove a service's backend (host routing, a/b slots)"
rh_register_command "proxy maintenance S on|off" "serve a 503 maintenance page for a service, or stop"
rh_register_command "proxy remove-if-unused" "remove the proxy (and TLS front) once no service is registered"

proxy_help() {
  cat <<'HELP'
Usage:
  railhead-host proxy boot --image IMG [--network railhead] [--http-port 80] [--https-port 443]
                           [--bind-ip IP]... [--tls-image IMG] [--tls-internal] [--tls-email EMAIL]
  railhead-host proxy service add SERVICE --app-port P [--domain D]... [--ssl] [--role web]
                           [--health-path /up] [--response-timeout 30]
  railhead-host proxy service remove SERVICE
  railhead-host proxy maintenance SERVICE on|off      (on: message on stdin, optional)
  railhead-host proxy remove-if-unused

boot      Ensures the HAProxy container railhead-proxy runs on the network with the rendered
          config. Same spec twice = no change; a changed image is pulled first, then the
          container is replaced (routing is kept: it lives in the rendered config).
          --tls-image is the Caddy image used when a service has --ssl; --tls-internal makes
          Caddy use its internal CA instead of ACME (tests, private networks).
service   add: a backend with two slots (a/b) whose servers are the release aliases
          <service>-<role>--a / --b. Domains route by Host header; a service without domains is
          the host's catch-all (at most one). Domain changes apply at run time; HAProxy
          reloads only for a new service or changed port/role/timeout. --ssl puts the
          service's domains behind the Caddy TLS front.
          remove: unroutes the service at run time (no reload) and drops it from the rendered
          config (and its TLS site).
remove-if-unused
          Removes railhead-proxy and the TLS front when no service is registered on the host any
          more (the proxy is shared by every service on a host; the last one out removes it, as
          Kamal's `remove` of the last app does). With services left, changes nothing.
maintenance
          on: the service answers 503 with an HTML page (message from stdin, default "Down for
          maintenance"); off: the live slot serves again. Survives a proxy restart.
HELP
}

proxy_dir() { printf '%s/proxy' "$(rh_state_dir)"; }
proxy_service_conf() { printf '%s/proxy/services/%s.conf' "$(rh_state_dir)" "$1"; }
proxy_setting() { rh_kv_get "$(proxy_dir)/proxy.conf" "$1"; }

# Lists registered services, one per line, sorted.
proxy_services() {
  local f
  for f in "$(proxy_dir)"/services/*.conf; do
    [[ -e $f ]] || continue
    f=${f##*/}
    printf '%s\n' "${f%.conf}"
  done | sort
}

# True when any registered service asked for TLS.
proxy_tls_wanted() {
  local s
  for s in $(proxy_services); do
    [[ $(rh_kv_get "$(proxy_service_conf "$s")" SSL) == 1 ]] && return 0
  done
  return 1
}

# ---------------------------------------------------------------- rendering

proxy_render_haproxy_cfg() {
  local s conf role port live timeout slot disabled
  cat <<EOF
# Rendered by railhead-host from $(proxy_dir)/services/*.conf: edit those (through the tool).
global
  log stdout format raw local0 warning
  stats socket ipv4@127.0.0.1:$RH_PROXY_API_PORT level admin
  stats socket /tmp/railhead-haproxy.sock mode 600 level admin expose-fd listeners
  hard-stop-after 60s
  # Filled just before a reload (and emptied after it) so the new worker starts with the running
  # one's server addresses and states instead of waiting for DNS (see proxy_apply_config).
  server-state-file $RH_PROXY_CFG_DIR/servers.state

defaults
  mode http
  log global
  option dontlognull
  option http-keep-alive
  # On a reload the old worker answers an idle keep-alive connection's next request (with
  # Connection: close) instead of closing it under the client (measured over 12 reloads under
  # load: 51 + 18 failed requests without it, 0 with it).
  option idle-close-on-response
  option forwardfor
  timeout connect 5s
  timeout client 60s
  timeout http-request 30s
  timeout http-keep-alive 60s
  timeout server 30s
  timeout tunnel 1h
  load-server-state-from-file global
  default-server init-addr last,none resolvers docker resolve-prefer ipv4

# Docker's embedded DNS: the release slot aliases resolve to whichever container holds them, so a
# restarted proxy (or a rebooted host, where container IPs change) finds the live container.
# "hold valid 1s" re-resolves every second, so a new container's address is picked up quickly.
# Failed answers keep the last address for 30 s (HAProxy's default): with 1 s, a Docker engine
# that did not answer DNS for about 2 s (busy or stalled) put the live slot in resolution
# maintenance and the app answered 503 (measured: with the host's dockerd stopped (SIGSTOP) for 5 s,
# 57 requests polled every 50 ms got 503; tests/host-tool/proxy.test.ts checks it).
resolvers docker
  nameserver dns 127.0.0.11:53
  accepted_payload_size 8192
  resolve_retries 2
  timeout resolve 500ms
  timeout retry 1s
  hold valid 1s
  hold obsolete 1s
  hold nx 30s
  hold other 30s
  hold refused 30s
  hold timeout 30s

frontend http
  bind :80
  http-request set-var(txn.railhead_host) req.hdr(host),field(1,:),lower
  # Routing lives in domains.map (host name -> backend; the key _default names the catch-all), so
  # adding or removing a domain or a service is an add/del map at run time, not a reload.
  http-request set-var(txn.railhead_backend) var(txn.railhead_host),map($RH_PROXY_CFG_DIR/domains.map)
  http-request set-var(txn.railhead_backend) str(_default),map($RH_PROXY_CFG_DIR/domains.map) unless { var(txn.railhead_backend) -m found }
  use_backend %[var(txn.railhead_backend)] if { var(txn.railhead_backend) -m found }
  default_backend be__none
EOF
  for s in $(proxy_services); do
    conf=$(proxy_service_conf "$s")
    role=$(rh_kv_get "$conf" ROLE)
    port=$(rh_kv_get "$conf" APP_PORT)
    live=$(rh_kv_get "$conf" LIVE)
    timeout=$(rh_kv_get "$conf" RESPONSE_TIMEOUT)
    printf '\nbackend be_%s\n  http-reuse always\n  timeout server %ss\n' "$s" "${timeout:-30}"
    printf '  http-request return status 503 content-type "text/html; charset=utf-8" lf-string "%s" if { str(%s),map(%s/maintenance.map) -m found }\n' \
      "<!doctype html><html><head><meta charset='utf-8'><title>Maintenance</title></head><body><h1>%[str($s),map($RH_PROXY_CFG_DIR/maintenance.map)]</h1></body></html>" \
      "$s" "$RH_PROXY_CFG_DIR"
    for slot in a b; do
      disabled=" disabled"
      [[ $slot == "$live" ]] && disabled=""
      printf '  server %s %s-%s--%s:%s%s\n' "$slot" "$s" "$role" "$slot" "$port" "$disabled"
    done
  done
  cat <<'EOF'

backend be__none
  http-request return status 404 content-type "text/plain" string "no Railhead service for this host name"
EOF
}

# The parts of the config a running HAProxy cannot change at run time (slot states and maps can),
# one line per section: `_head <hash>` (global, defaults, resolvers, frontend) and
# `<backend> <hash>` per backend, sorted.
proxy_structure() {
  local tmp
  tmp=$(mktemp -d)
  sed -e 's/ disabled$//' -e '/^[[:space:]]*$/d' "$(proxy_dir)/haproxy.cfg" |
    awk -v d="$tmp" '/^backend / { sec = $2 } { f = d "/" (sec == "" ? "_head" : sec); print > f }'
  (cd "$tmp" && sha256sum -- *) | awk '{ print $2, substr($1, 1, 16) }' | sort
  rm -rf "$tmp"
}

# Domain routing, one `<host> <backend>` line per domain; `_default <backend>` for the catch-all.
proxy_render_domains_map() {
  local s d svc_domains
  for s in $(proxy_services); do
    svc_domains=$(rh_kv_get "$(proxy_service_conf "$s")" DOMAINS)
    if [[ -z $svc_domains ]]; then
      printf '_default be_%s\n' "$s"
    else
      for d in $svc_domains; do
        printf '%s be_%s\n' "$d" "$s"
      done
    fi
  done
}

proxy_render_maintenance_map() {
  local s msg
  for s in $(proxy_services); do
    [[ $(rh_kv_get "$(proxy_service_conf "$s")" MAINTENANCE) == 1 ]] || continue
    msg=$(rh_kv_get "$(proxy_service_conf "$s")" MESSAGE)
    printf '%s %s\n' "$s" "${msg:-Down for maintenance}"
  done
}

# Escapes text for HTML and keeps it on one line (it lives in a map file and a CLI argument).
proxy_html_escape() {
  # Replacements are quoted: bash 5.2 (patsub_replacement) would read a bare & as "the match".
  local t=$1
  t=${t//&/"&amp;"}
  t=${t//</"&lt;"}
  t=${t//>/"&gt;"}
  t=${t//\"/"&quot;"}
  t=${t//\'/"&#39;"}
  t=${t//\\/"&#92;"}
  t=${t//%/"&#37;"}
  t=${t//$'\r'/ }
  t=${t//$'\t'/ }
  t=${t//$'\n'/ }
  printf '%s' "$t"
}

# Writes haproxy.cfg, maintenance.map and domains.map from the service files; prints "changed"
# when the config text changed.
proxy_write_config_files() {
  local dir cfg map domains
  dir=$(proxy_dir)
  mkdir -p "$dir/services"
  cfg=$(proxy_render_haproxy_cfg)
  map=$(proxy_render_maintenance_map)
  domains=$(proxy_render_domains_map)
  [[ -f $dir/maintenance.map && $(<"$dir/maintenance.map") == "$map" ]] ||
    printf '%s\n' "$map" | sed '/^$/d' | rh_write_file_atomic "$dir/maintenance.map" 0644
  [[ -f $dir/domains.map && $(<"$dir/domains.map") == "$domains" ]] ||
    printf '%s\n' "$domains" | sed '/^$/d' | rh_write_file_atomic "$dir/domains.map" 0644
  if [[ ! -f $dir/haproxy.cfg || $(<"$dir/haproxy.cfg") != "$cfg" ]]; then
    printf '%s\n' "$cfg" | rh_write_file_atomic "$dir/haproxy.cfg" 0644
    printf 'changed'
  fi
}

# Copies the rendered files into the proxy container (created or running).
proxy_push_config() {
  local container=${1:-$RH_PROXY_CONTAINER} stage
  stage=$(mktemp -d)
  cp "$(proxy_dir)/haproxy.cfg" "$(proxy_dir)/maintenance.map" "$(proxy_dir)/domains.map" "$stage/"
  : >"$stage/servers.state"
  chmod 0755 "$stage"
  chmod 0644 "$stage"/*
  local rc=0
  rh_api_init
  if [[ -n $RH_API_SOCKET ]]; then
    # What `docker cp` does, through the Engine API (PUT .../archive): no CLI process. The archive
    # holds the directory itself and goes into its parent, so it is created in a new container
    # (the API, unlike `docker cp`, needs the target path to exist).
    tar -C "$stage" --owner=0 --group=0 --numeric-owner --transform "s,^\.,${RH_PROXY_CFG_DIR##*/}," -cf - . |
      curl -sSf --unix-socket "$RH_API_SOCKET" -X PUT -H 'Content-Type: application/x-tar' --data-binary @- \
        "http://docker/containers/$container/archive?path=${RH_PROXY_CFG_DIR%/*}" >/dev/null || rc=$?
  else
    docker cp "$stage/." "$container:$RH_PROXY_CFG_DIR" >/dev/null || rc=$?
  fi
  rm -rf "$stage"
  return "$rc"
}

# ---------------------------------------------------------------- runtime API

# Sends COMMANDS (several separated by ';') to HAProxy's runtime API and prints the answer
# (one `docker exec`; see proxy_in_api).
proxy_api() {
  proxy_in_run proxy_in_api "$1"
}

# Records which config structure the running HAProxy has loaded (see proxy_needs_reload).
proxy_mark_loaded() {
  mkdir -p "$(proxy_dir)"
  proxy_structure | rh_write_file_atomic "$(proxy_dir)/loaded.hash" 0644
}

# True when the running HAProxy cannot serve the rendered config without a reload: its head
# (global, defaults, resolvers, frontend) differs from what it loaded, or a backend of the config
# is missing from it or was loaded with other settings. Backends it has but the config no longer
# lists (removed services) need no reload: nothing routes to them (see proxy_sync_runtime).
# The backend list comes from the process itself, so a restart from the files is accounted for.
proxy_needs_reload() {
  local loaded running name hash
  loaded=$(cat "$(proxy_dir)/loaded.hash" 2>/dev/null || true)
  running=$(proxy_api "show backend" 2>/dev/null) || return 0
  while read -r name hash; do
    [[ -n $name ]] || continue
    grep -qxF "$name $hash" <<<"$loaded" || return 0
    [[ $name == _head ]] && continue
    grep -qxF "$name" <<<"$running" || return 0
  done < <(proxy_structure)
  return 1
}

# Sends the runtime API commands given one per line on stdin, in batches (the CLI reads one
# line of at most a buffer per connection). Prints nothing; returns non-zero and prints HAProxy's
# answer on stderr when a command was refused.
proxy_api_batch() {
  local line batch="" n=0 out rc=0
  while IFS= read -r line; do
    [[ -n $line ]] || continue
    batch+="${batch:+; }$line"
    n=$((n + 1))
    if ((n >= 40)); then
      out=$(proxy_api "$batch") || rc=1
      [[ -z ${out//[[:space:]]/} ]] || { printf '%s\n' "$out" >&2; rc=1; }
      batch="" n=0
    fi
  done
  if [[ -n $batch ]]; then
    out=$(proxy_api "$batch") || rc=1
    [[ -z ${out//[[:space:]]/} ]] || { printf '%s\n' "$out" >&2; rc=1; }
  fi
  return "$rc"
}

# Makes the running HAProxy's copy of map NAME (a file under $RH_PROXY_CFG_DIR) equal the
# rendered file: `set map` for changed values, `add map` for new keys, then `del map` for keys
# the file no longer has (each key changes in one step: a host is never briefly unrouted).
proxy_sync_map() {
  local name=$1 path have key value ptr
  path="$RH_PROXY_CFG_DIR/$name"
  have=$(proxy_api "show map $path") || return 1
  local -A cur=() want=()
  while read -r ptr key value; do
    [[ $ptr == 0x* && -n $key ]] && cur[$key]=$value
  done <<<"$have"
  while read -r key value; do
    [[ -n $key ]] && want[$key]=$value
  done <"$(proxy_dir)/$name"
  {
    for key in "${!want[@]}"; do
      if [[ -z ${cur[$key]+set} ]]; then
        printf 'add map %s %s %s\n' "$path" "$(proxy_cli_escape "$key")" "$(proxy_cli_escape "${want[$key]}")"
      elif [[ ${cur[$key]} != "${want[$key]}" ]]; then
        printf 'set map %s %s %s\n' "$path" "$(proxy_cli_escape "$key")" "$(proxy_cli_escape "${want[$key]}")"
      fi
    done
    for key in "${!cur[@]}"; do
      [[ -n ${want[$key]+set} ]] || printf 'del map %s %s\n' "$path" "$(proxy_cli_escape "$key")"
    done
  } | proxy_api_batch
}

# Brings the running HAProxy in line with the rendered files without a reload: both maps, and
# `state maint` on both slots of every backend it still has whose service was removed (those
# are listed in the log line).
proxy_sync_runtime() {
  local backends be parked=""
  proxy_sync_map domains.map || rh_fail proxy "HAProxy refused a domain routing change (answer above)" "docker logs $RH_PROXY_CONTAINER; 'docker restart $RH_PROXY_CONTAINER' routes by the rendered files"
  proxy_sync_map maintenance.map || rh_fail proxy "HAProxy refused a maintenance map change (answer above)" "docker logs $RH_PROXY_CONTAINER; 'docker restart $RH_PROXY_CONTAINER' routes by the rendered files"
  backends=$(proxy_api "show backend") || rh_fail proxy "HAProxy's runtime API did not answer" "docker logs $RH_PROXY_CONTAINER"
  local servers="" admin_a admin_b
  for be in $backends; do
    [[ $be == be_* && $be != be__none ]] || continue
    [[ -f $(proxy_service_conf "${be#be_}") ]] && continue
    [[ -n $servers ]] || servers=$(proxy_api "show servers state")
    # Already parked (forced maintenance bit 0x01 on both slots): nothing to do.
    admin_a=$(awk -v b="$be" '$2 == b && $4 == "a" { print $7; exit }' <<<"$servers")
    admin_b=$(awk -v b="$be" '$2 == b && $4 == "b" { print $7; exit }' <<<"$servers")
    ((${admin_a:-0} & 1 && ${admin_b:-0} & 1)) && continue
    printf 'set server %s/a state maint\nset server %s/b state maint\n' "$be" "$be" | proxy_api_batch ||
      rh_fail proxy "HAProxy refused to put $be's slots in maintenance (answer above)" "docker logs $RH_PROXY_CONTAINER"
    parked+="${parked:+ }$be"
  done
  rh_log proxy "routing applied at run time: no reload${parked:+ (removed, unrouted, slots now in maintenance: $parked)}"
}

proxy_running() {
  [[ $(rh_container_state "$RH_PROXY_CONTAINER") == running ]]
}

# Waits until the runtime API answers and knows BACKEND (after a start or a reload).
proxy_wait_api() {
  local backend=${1:-} deadline=$(($(rh_now_us) + 15000000)) out
  while :; do
    if out=$(proxy_api "show backend" 2>/dev/null) && { [[ -z $backend ]] || grep -qx "$backend" <<<"$out"; }; then
      return 0
    fi
    (($(rh_now_us) < deadline)) || return 1
    sleep 0.2
  done
}

# Re-renders the config and maps and copies them into the running HAProxy's container (for its
# next start). When the running HAProxy has every backend the config needs (proxy_needs_reload),
# applies the routing at run time (maps, removed backends' slots to maintenance): no reload, no
# client connection touched. Otherwise validates and reloads it (master-worker, USR2: listening
# sockets are passed on, established connections finish, idle keep-alive ones are closed).
proxy_apply_config() {
  local dir wait_for=${1:-}
  dir=$(proxy_dir)
  proxy_write_config_files >/dev/null
  proxy_running || return 0
  proxy_push_config
  if ! proxy_needs_reload; then
    proxy_sync_runtime
    return 0
  fi
  local check
  if ! check=$(docker exec "$RH_PROXY_CONTAINER" haproxy -c -f "$RH_PROXY_CFG_DIR/haproxy.cfg" 2>&1); then
    printf '%s\n' "$check" | tail -n 20 >&2
    rh_fail proxy "the rendered HAProxy config is invalid (the running proxy keeps its old config)" "read the errors above; the config is $dir/haproxy.cfg"
  fi
  # Hand the running worker's server addresses and states to the new one, or its servers would
  # have no address (503) until the resolvers answer (measured: ~1 s of 503s per reload).
  local stage
  stage=$(mktemp -d)
  proxy_api "show servers state" >"$stage/servers.state"
  chmod 0755 "$stage"
  chmod 0644 "$stage/servers.state"
  docker cp "$stage/servers.state" "$RH_PROXY_CONTAINER:$RH_PROXY_CFG_DIR/servers.state" >/dev/null
  docker kill --signal USR2 "$RH_PROXY_CONTAINER" >/dev/null
  sleep 0.3
  proxy_wait_api "$wait_for" || rh_fail proxy "HAProxy did not come back after the reload" "docker logs $RH_PROXY_CONTAINER"
  # A restart must not load this snapshot: by then releases may have switched slots.
  : >"$stage/servers.state"
  docker cp "$stage/servers.state" "$RH_PROXY_CONTAINER:$RH_PROXY_CFG_DIR/servers.state" >/dev/null
  rm -rf "$stage"
  proxy_mark_loaded
  rh_log proxy "HAProxy reloaded (a new backend or changed backend settings)"
}

# ---------------------------------------------------------------- proxy boot

proxy_publish_args() {
  local -n rh_publish_out=$1
  local port=$2 bind_ips ip
  rh_publish_out=()
  bind_ips=$(proxy_setting BIND_IPS)
  if [[ -z $bind_ips ]]; then
    rh_publish_out=(--publish "$port:${3:-80}")
    return 0
  fi
  for ip in ${bind_ips//,/ }; do
    rh_publish_out+=(--publish "$ip:$port:${3:-80}")
  done
}

# Makes sure railhead-proxy runs with the current settings: nothing if it already does; replaces
# it (new container created and configured first, old one removed, new one started) otherwise.
proxy_ensure_container() {
  local image network spec current state args=() publish=() labels=() logs=()
  image=$(proxy_setting IMAGE)
  network=$(proxy_setting NETWORK)
  [[ -n $image ]] || rh_fail proxy "the proxy was never booted on this host" "run 'railhead-host proxy boot --image IMG' first"
  if ! proxy_tls_wanted; then
    proxy_publish_args publish "$(proxy_setting HTTP_PORT)" 80
  fi
  rh_pull_image "$image" missing || rh_fail proxy "could not pull the proxy image $image" "check the image name and 'registry login'"
  spec=$(printf '%s\n' "v1" "$(rh_image_id "$image")" "$network" "${publish[*]}" | sha256sum | cut -c1-16)
  current=$(rh_container_label "$RH_PROXY_CONTAINER" railhead.spec)
  state=$(rh_container_state "$RH_PROXY_CONTAINER")
  proxy_write_config_files >/dev/null
  if [[ -n $state && $current == "$spec" ]]; then
    if [[ $state != running ]]; then
      proxy_push_config
      docker start "$RH_PROXY_CONTAINER" >/dev/null
      proxy_wait_api || rh_fail proxy "HAProxy did not start" "docker logs $RH_PROXY_CONTAINER"
      proxy_mark_loaded
      rh_log proxy "started the stopped proxy container"
    else
      rh_log proxy "proxy container up to date"
      proxy_apply_config
    fi
    return 0
  fi
  labels=(--label railhead.managed=true --label railhead.component=proxy)
  rh_log_args logs
  args=(--name "$RH_PROXY_CONTAINER-next" --restart unless-stopped --network "$network"
    --network-alias "$RH_PROXY_CONTAINER" "${publish[@]}" "${labels[@]}" --label "railhead.spec=$spec"
    --sysctl net.ipv4.ip_unprivileged_port_start=0 "${logs[@]}"
    --entrypoint haproxy "$image" -W -db -f "$RH_PROXY_CFG_DIR/haproxy.cfg")
  docker rm -f "$RH_PROXY_CONTAINER-next" >/dev/null 2>&1 || true
  docker create "${args[@]}" >/dev/null || rh_fail proxy "could not create the proxy container" "see Docker's error above"
  proxy_push_config "$RH_PROXY_CONTAINER-next"
  if [[ -n $state ]]; then
    docker rm -f "$RH_PROXY_CONTAINER" >/dev/null
    rh_log proxy "removed the old proxy container (spec changed)"
  fi
  docker rename "$RH_PROXY_CONTAINER-next" "$RH_PROXY_CONTAINER"
  docker start "$RH_PROXY_CONTAINER" >/dev/null || rh_fail proxy "the proxy container did not start" "docker logs $RH_PROXY_CONTAINER (port ${publish[*]} taken?)"
  proxy_wait_api || { docker logs --tail 20 "$RH_PROXY_CONTAINER" >&2; rh_fail proxy "HAProxy did not start" "docker logs $RH_PROXY_CONTAINER"; }
  proxy_mark_loaded
  rh_log proxy "proxy container running ($image, ${publish[*]:-not published: behind $RH_TLS_CONTAINER})"
}

proxy_boot() {
  local image="" network=railhead http_port=80 https_port=443 bind_ips=() tls_image="" tls_internal=0 tls_email=""
  while (($#)); do
    case $1 in
      --image) rh_need_arg "$1" "$#"; image=$2; shift 2 ;;
      --network) rh_need_arg "$1" "$#"; network=$2; shift 2 ;;
      --http-port) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; http_port=$2; shift 2 ;;
      --https-port) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; https_port=$2; shift 2 ;;
      --bind-ip) rh_need_arg "$1" "$#"; bind_ips+=("$2"); shift 2 ;;
      --tls-image) rh_need_arg "$1" "$#"; tls_image=$2; shift 2 ;;
      --tls-internal) tls_internal=1; shift ;;
      --tls-email) rh_need_arg "$1" "$#"; tls_email=$2; shift 2 ;;
      -h | --help) proxy_help; return 0 ;;
      *) rh_usage_fail "unknown proxy boot option '$1'" ;;
    esac
  done
  [[ -n $image ]] || rh_usage_fail "proxy boot needs --image"
  rh_validate_name network "$network"
  rh_require_docker
  local old_ifs=$IFS bind_csv
  IFS=,
  bind_csv="${bind_ips[*]}"
  IFS=$old_ifs
  rh_with_lock proxy proxy_boot_locked "$image" "$network" "$http_port" "$https_port" "$bind_csv" "$tls_image" "$tls_internal" "$tls_email"
}

proxy_boot_locked() {
  local image=$1 network=$2 http_port=$3 https_port=$4 bind_csv=$5 tls_image=$6 tls_internal=$7 tls_email=$8 dir
  dir=$(proxy_dir)
  mkdir -p "$dir/services"
  printf 'IMAGE=%s\nNETWORK=%s\nHTTP_PORT=%s\nHTTPS_PORT=%s\nBIND_IPS=%s\nTLS_IMAGE=%s\nTLS_INTERNAL=%s\nTLS_EMAIL=%s\n' \
    "$image" "$network" "$http_port" "$https_port" "$bind_csv" "$tls_image" "$tls_internal" "$tls_email" |
    rh_write_file_atomic "$dir/proxy.conf" 0644
  docker network inspect "$network" >/dev/null 2>&1 || network_ensure "$network"
  if proxy_tls_wanted; then
    tls_ensure
  else
    proxy_ensure_container
  fi
}

# ---------------------------------------------------------------- proxy service add/remove

proxy_service_add() {
  local service="" port="" domains=() ssl=0 role=web health_path=/up timeout=30 d
  while (($#)); do
    case $1 in
      --app-port) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; port=$2; shift 2 ;;
      --domain) rh_need_arg "$1" "$#"; domains+=("$2"); shift 2 ;;
      --ssl) ssl=1; shift ;;
      --role) rh_need_arg "$1" "$#"; role=$2; shift 2 ;;
      --health-path) rh_need_arg "$1" "$#"; health_path=$2; shift 2 ;;
      --response-timeout) rh_need_arg "$1" "$#"; rh_validate_uint "$1" "$2"; timeout=$2; shift 2 ;;
      -h | --help) proxy_help; return 0 ;;
      -*) rh_usage_fail "unknown proxy service add option '$1'" ;;
      *) [[ -z $service ]] || rh_usage_fail "one SERVICE only"; service=$1; shift ;;
    esac
  done
  [[ -n $service ]] || rh_usage_fail "proxy service add needs SERVICE"
  [[ -n $port ]] || rh_usage_fail "proxy service add needs --app-port"
  rh_validate_name service "$service"
  rh_validate_name role "$role"
  local normalized=()
  for d in "${domains[@]}"; do
    d=${d,,}
    [[ $d =~ ^[a-z0-9*]([a-z0-9.-]*[a-z0-9])?$ ]] || rh_usage_fail "--domain '$d' is not a host name"
    normalized+=("$d")
  done
  ((ssl == 0 || ${#normalized[@]} > 0)) || rh_usage_fail "--ssl needs at least one --domain (certificates are per host name)"
  rh_require_docker
  rh_with_lock proxy proxy_service_add_locked "$service" "$port" "$ssl" "$role" "$health_path" "$timeout" "${normalized[@]}"
}

proxy_service_add_locked() {
  local service=$1 port=$2 ssl=$3 role=$4 health_path=$5 timeout=$6
  shift 6
  local domain_list="$*" conf other other_domains d
  conf=$(proxy_service_conf "$service")
  [[ -n $(proxy_setting IMAGE) ]] || rh_fail proxy "the proxy was never booted on this host" "run 'railhead-host proxy boot --image IMG' first"
  for other in $(proxy_services); do
    [[ $other == "$service" ]] && continue
    other_domains=$(rh_kv_get "$(proxy_service_conf "$other")" DOMAINS)
    if [[ -z $domain_list && -z $other_domains ]]; then
      rh_fail proxy "service $other is already this host's catch-all (no --domain); two services without domains cannot share a host" "give $service (or $other) at least one --domain"
    fi
    for d in $domain_list; do
      [[ " $other_domains " == *" $d "* ]] &&
        rh_fail proxy "domain $d is already routed to service $other" "remove it from $other first, or pick another domain"
    done
  done
  local live maintenance message ssl_before=no
  live=$(rh_kv_get "$conf" LIVE)
  maintenance=$(rh_kv_get "$conf" MAINTENANCE)
  message=$(rh_kv_get "$conf" MESSAGE)
  proxy_tls_wanted && ssl_before=yes
  printf 'ROLE=%s\nAPP_PORT=%s\nDOMAINS=%s\nSSL=%s\nHEALTH_PATH=%s\nRESPONSE_TIMEOUT=%s\nLIVE=%s\nMAINTENANCE=%s\nMESSAGE=%s\n' \
    "$role" "$port" "$domain_list" "$ssl" "$health_path" "$timeout" "$live" "${maintenance:-0}" "$message" |
    rh_write_file_atomic "$conf" 0644
  local ssl_after=no
  proxy_tls_wanted && ssl_after=yes
  if [[ $ssl_before != "$ssl_after" || $ssl_after == yes ]]; then
    tls_ensure
  else
    proxy_ensure_running_or_fail
  fi
  proxy_apply_config "be_$service"
  rh_log proxy "service $service: ${domain_list:-catch-all} -> port $port${live:+ (live slot $live)}"
}

proxy_ensure_running_or_fail() {
  proxy_running && return 0
  proxy_ensure_container
}

proxy_service_remove() {
  local service=""
  while (($#)); do
    case $1 in
      -h | --help) proxy_help; return 0 ;;
      -*) rh_usage_fail "unknown proxy service remove option '$1'" ;;
      *) [[ -z $service ]] || rh_usage_fail "one SERVICE only"; service=$1; shift ;;
    esac
  done
  [[ -n $service ]] || rh_usage_fail "proxy service remove needs SERVICE"
  rh_validate_name service "$service"
  rh_require_docker
  rh_with_lock proxy proxy_service_remove_locked "$service"
}

proxy_service_remove_locked() {
  local service=$1 conf had_ssl
  conf=$(proxy_service_conf "$service")
  if [[ ! -f $conf ]]; then
    rh_log proxy "service $service is not registered: nothing to remove"
    return 0
  fi
  had_ssl=$(rh_kv_get "$conf" SSL)
  rm -f "$conf"
  if [[ $had_ssl == 1 ]]; then
    tls_ensure
  fi
  # Its domains are deleted from the running map and its slots put in maintenance; the files
  # (next start) no longer have it. The backend itself stays in the running HAProxy, unrouted,
  # until the next reload or restart.
  proxy_apply_config
  rh_log proxy "service $service removed"
}

proxy_remove_if_unused() {
  [[ ${1:-} == -h || ${1:-} == --help ]] && { proxy_help; return 0; }
  (($# == 0)) || rh_usage_fail "proxy remove-if-unused takes no arguments"
  rh_require_docker
  rh_with_lock proxy proxy_remove_if_unused_locked
}

proxy_remove_if_unused_locked() {
  local left=() f c
  for f in "$(rh_state_dir)"/proxy/services/*.conf; do
    [[ -f $f ]] && left+=("$(basename "$f" .conf)")
  done
  if ((${#left[@]} > 0)); then
    rh_log proxy "kept: still routing for ${left[*]}"
    return 0
  fi
  for c in "$RH_TLS_CONTAINER" "$RH_PROXY_CONTAINER"; do
    if docker container inspect "$c" >/dev/null 2>&1; then
      docker rm -f "$c" >/dev/null || rh_fail proxy "could not remove $c" "docker rm -f $c"
      rh_log proxy "removed $c: no service uses it any more"
    fi
  done
}

# ---------------------------------------------------------------- maintenance

proxy_maintenance() {
  local service=${1:-} mode=${2:-}
  [[ $service == -h || $service == --help ]] && { proxy_help; return 0; }
  [[ -n $service && ($mode == on || $mode == off) && $# -eq 2 ]] || rh_usage_fail "proxy maintenance SERVICE on|off"
  rh_validate_name service "$service"
  local message=""
  if [[ $mode == on ]]; then
    message=$(rh_stdin_text | head -c 2000)
    message=$(proxy_html_escape "${message:-Down for maintenance}")
  fi
  rh_require_docker
  rh_with_lock proxy proxy_maintenance_locked "$service" "$mode" "$message"
}

# The CLI splits arguments on spaces and commands on ';': escape both (and backslashes).
proxy_cli_escape() {
  local t=$1
  t=${t//\\/\\\\}
  t=${t// /\\ }
  t=${t//;/\\;}
  printf '%s' "$t"
}

proxy_maintenance_locked() {
  local service=$1 mode=$2 message=$3 conf map="$RH_PROXY_CFG_DIR/maintenance.map"
  conf=$(proxy_service_conf "$service")
  [[ -f $conf ]] || rh_fail maintenance "service $service is not registered on this host's proxy" "run 'railhead-host proxy service add $service ...' first"
  if [[ $mode == on ]]; then
    rh_kv_set "$conf" MAINTENANCE 1
    rh_kv_set "$conf" MESSAGE "$message"
  else
    rh_kv_set "$conf" MAINTENANCE 0
    rh_kv_set "$conf" MESSAGE ""
  fi
  proxy_write_config_files >/dev/null
  if proxy_running; then
    proxy_push_config
    proxy_sync_map maintenance.map ||
      rh_fail maintenance "HAProxy refused the change to $map (answer above)" "docker logs $RH_PROXY_CONTAINER"
  fi
  if [[ $mode == on ]]; then
    rh_log maintenance "service $service now answers 503 (maintenance page)"
  else
    rh_log maintenance "service $service serves its live slot again"
  fi
}

# ---------------------------------------------------------------- cutover (used by release)

# Prints the live slot of SERVICE (a, b or nothing).
proxy_live_slot() {
  rh_kv_get "$(proxy_service_conf "$1")" LIVE
}

# ----- run inside the proxy container (one `docker exec` each; see proxy_in_run)
# These functions are sent into the proxy container as text (declare -f) and use only bash
# builtins, `sleep` and HAProxy's runtime API on 127.0.0.1:$RH_IN_PORT: a `docker exec` costs about
# 90 ms, an API call inside the container about 1 ms, so the cutover polls every 50 ms in one exec.

# Sends COMMANDS (several separated by ';') to the runtime API and prints the answer.
proxy_in_api() {
  local line
  exec 3<>"/dev/tcp/127.0.0.1/$RH_IN_PORT" || return 1
  printf '%s\n' "$1" >&3
  while IFS= read -r line <&3; do printf '%s\n' "$line"; done
  exec 3<&-
}

# Prints "<addr> <op_state> <admin_state>" of BACKEND/SLOT (`show servers state`).
proxy_in_slot() {
  local out _id _be _sid srv addr op admin _rest
  out=$(proxy_in_api "show servers state $1") || return 1
  while read -r _id _be _sid srv addr op admin _rest; do
    [[ $srv == "$2" ]] && { printf '%s %s %s\n' "$addr" "$op" "$admin"; return 0; }
  done <<<"$out"
  return 1
}

# True when "<addr> <op> <admin>" shows SLOT serving NEW_IP: running (op 2) and in no
# maintenance (mask 0x23: 0x01 forced, 0x02 inherited, 0x20 resolution; 0x04 "disabled in the
# config" stays set after `state ready` and does not stop traffic).
proxy_in_up() {
  local addr op admin
  read -r addr op admin <<<"$1"
  [[ $addr == "$2" && $op == 2 && $((${admin:-0} & 0x23)) == 0 ]]
}

# proxy_in_cutover BACKEND IDLE NEW_IP OLD TIMEOUT_S: waits until IDLE resolves to NEW_IP (and is
# not in resolution maintenance), makes it ready, checks it serves on two reads 50 ms apart, then
# puts OLD (if any) in maintenance. On failure IDLE goes back to maintenance, the reason is
# printed on stderr and the status is 1; OLD was not touched.
proxy_in_cutover() {
  local be=$1 idle=$2 ip=$3 old=$4 tries=$(($5 * 20)) n=0 state addr _op admin set_addr=0
  while :; do
    state=$(proxy_in_slot "$be" "$idle") || state=""
    read -r addr _op admin <<<"$state"
    # The address alone is not enough: a reused container IP can already be there from an older
    # release while the slot is in resolution maintenance (0x20) from that release's exit.
    [[ $addr == "$ip" && $((${admin:-0} & 0x20)) == 0 ]] && break
    # Not in resolution maintenance but still on an older address: set the address the health
    # check used (only the new container holds the slot's alias, so the next DNS answer is the
    # same) instead of waiting up to a resolution interval. In resolution maintenance only a DNS
    # answer clears the flag, so then this waits for it.
    if [[ -n $state && $((${admin:-0} & 0x20)) == 0 && $set_addr == 0 ]]; then
      set_addr=1
      proxy_in_api "set server $be/$idle addr $ip" >/dev/null || true
      continue
    fi
    if ((++n >= tries)); then
      printf 'HAProxy slot %s/%s resolved to %s, not the new container %s, within %ss\n' "$be" "$idle" "${addr:-nothing}" "$ip" "$5" >&2
      return 1
    fi
    sleep 0.05
  done
  proxy_in_api "set server $be/$idle state ready" >/dev/null || { printf 'the runtime API refused "state ready" for %s/%s\n' "$be" "$idle" >&2; return 1; }
  # A slot leaving forced maintenance can briefly show resolution maintenance until the next DNS
  # answer; the old slot keeps serving while we wait, and two good reads in a row are required.
  n=0
  local good=0
  while ((good < 2)); do
    state=$(proxy_in_slot "$be" "$idle") || state=""
    if proxy_in_up "$state" "$ip"; then good=$((good + 1)); else good=0; fi
    ((good >= 2)) && break
    if ((++n >= tries)); then
      proxy_in_api "set server $be/$idle state maint" >/dev/null || true
      printf 'slot %s/%s did not come up (address, op_state, admin_state: %s)\n' "$be" "$idle" "${state:-unknown}" >&2
      return 1
    fi
    sleep 0.05
  done
  [[ -z $old ]] || proxy_in_api "set server $be/$old state maint" >/dev/null
}

# proxy_in_revert BACKEND NEW OLD: puts OLD back in rotation and NEW in maintenance.
proxy_in_revert() {
  proxy_in_api "set server $1/$3 state ready; set server $1/$2 state maint" >/dev/null
}

# proxy_in_drain BACKEND SLOT TIMEOUT_S: waits until SLOT has no current sessions (`show stat`),
# at most TIMEOUT_S; prints the sessions left (0 when drained).
proxy_in_drain() {
  local tries=$(($3 * 20)) n=0 out px sv _qcur _qmax scur _rest sessions
  while :; do
    out=$(proxy_in_api "show stat $1 4 -1") || out=""
    sessions=""
    while IFS=, read -r px sv _qcur _qmax scur _rest; do
      [[ $px == "$1" && $sv == "$2" ]] && { sessions=$scur; break; }
    done <<<"$out"
    if [[ ${sessions:-0} == 0 ]] || ((++n >= tries)); then
      printf '%s\n' "${sessions:-0}"
      return 0
    fi
    sleep 0.05
  done
}

# proxy_in_cutover_drain BACKEND IDLE NEW_IP OLD TIMEOUT_S DRAIN_TIMEOUT_S: the cutover; on
# success prints "switched", then (with an OLD slot) drains it and prints "left <sessions>". One
# `docker exec` for both steps instead of two (about 90 ms each on an idle host, more under load).
proxy_in_cutover_drain() {
  proxy_in_cutover "$1" "$2" "$3" "$4" "$5" || return 1
  printf 'switched\n'
  [[ -z $4 ]] || printf 'left %s\n' "$(proxy_in_drain "$1" "$4" "$6")"
}

# Runs FUNCTION (one of the proxy_in_* above) with ARGS inside the proxy container.
proxy_in_run() {
  local fn=$1
  shift
  docker exec "$RH_PROXY_CONTAINER" bash -c "$(proxy_in_script "$fn")" "$fn" "$@"
}

# The bash -c text that defines the proxy_in_* functions and calls FUNCTION with "$@".
proxy_in_script() {
  printf 'RH_IN_PORT=%s; %s; %s "$@"' "$RH_PROXY_API_PORT" \
    "$(declare -f proxy_in_api proxy_in_slot proxy_in_up proxy_in_cutover proxy_in_revert proxy_in_drain proxy_in_cutover_drain)" "$1"
}

# As proxy_in_run, with stderr merged into stdout (lines may end in CR) and the output streamed as
# it comes. With the Engine API (lib/common.sh) it is three curl calls on the engine's socket
# (create the exec with a TTY, so the stream has no multiplexing headers; start it and stream its
# output; read its exit code) instead of a docker CLI process, about 80 ms less on an idle host.
proxy_in_run_stream() {
  local fn=$1 cmd w out id
  shift
  if [[ -z $RH_API_SOCKET ]]; then
    proxy_in_run "$fn" "$@" 2>&1
    return
  fi
  cmd="[\"bash\",\"-c\",$(rh_json_string "$(proxy_in_script "$fn")"),$(rh_json_string "$fn")"
  for w in "$@"; do cmd+=",$(rh_json_string "$w")"; done
  out=$(curl -sS --unix-socket "$RH_API_SOCKET" -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"AttachStdout\":true,\"AttachStderr\":true,\"Tty\":true,\"Cmd\":$cmd]}" \
    -w '\n%{http_code}' "http://docker/containers/$RH_PROXY_CONTAINER/exec" 2>&1) || out+=$'\n000'
  if [[ ${out##*$'\n'} != 201 || ! $out =~ \"Id\":\"([0-9a-f]+)\" ]]; then
    printf 'docker exec into %s failed: %s\n' "$RH_PROXY_CONTAINER" "${out%$'\n'*}"
    return 1
  fi
  id=${BASH_REMATCH[1]}
  curl -sS -N --unix-socket "$RH_API_SOCKET" -X POST -H 'Content-Type: application/json' \
    --data-binary '{"Detach":false,"Tty":true}' "http://docker/exec/$id/start" 2>&1 || return 1
  out=$(rh_api GET "/exec/$id/json") || return 1
  [[ $out =~ \"ExitCode\":([0-9]+) ]] || return 1
  return "${BASH_REMATCH[1]}"
}

# Switches SERVICE from its live slot to IDLE, whose alias now resolves to NEW_IP, and starts
# draining the old slot. The switch (one exec into the proxy, see proxy_in_cutover_drain) starts
# first; while it runs, the files are rendered with IDLE live and copied into the container (a
# proxy restarted from them routes to IDLE, which is already healthy). Runs under the proxy lock,
# which it holds only until the switch is done: the drain goes on in the same exec (a background
# job without the lock) and proxy_drain_wait collects it. Sets PROXY_OLD_SLOT (the old slot or
# nothing). Returns non-zero (with a message on stderr) on failure, after putting the old slot and
# the old files back.
# Usage: proxy_cutover_locked SERVICE IDLE NEW_IP RESOLVE_TIMEOUT DRAIN_TIMEOUT
proxy_cutover_locked() {
  local service=$1 idle=$2 new_ip=$3 resolve_timeout=$4 drain_timeout=$5 backend="be_$1" conf old fifo
  local push_rc=0 line="" msg="" fd
  conf=$(proxy_service_conf "$service")
  old=$(proxy_live_slot "$service")
  [[ $old == "$idle" ]] && old=""
  PROXY_OLD_SLOT=""
  # The exec's output goes through a FIFO this shell keeps open (read and write, so neither side
  # blocks on open); the background job ends with an "exit N" line, so a read never waits on a
  # dead exec. The lock descriptors are closed in the job, so the drain does not hold the locks.
  fifo=$(mktemp -u "${TMPDIR:-/tmp}/railhead-cutover.XXXXXX")
  mkfifo -m 0600 "$fifo"
  exec {PROXY_CUTOVER_FD}<>"$fifo"
  rm -f "$fifo"
  (
    for fd in $RH_LOCK_FDS; do eval "exec $fd>&-"; done
    rc=0
    proxy_in_run_stream proxy_in_cutover_drain "$backend" "$idle" "$new_ip" "$old" "$resolve_timeout" "$drain_timeout" || rc=$?
    printf '\nexit %s\n' "$rc"
  ) >&"$PROXY_CUTOVER_FD" </dev/null &
  PROXY_CUTOVER_PID=$!
  rh_kv_set "$conf" LIVE "$idle"
  proxy_write_config_files >/dev/null
  proxy_push_config || push_rc=$?
  while IFS= read -r line <&"$PROXY_CUTOVER_FD"; do
    line=${line%$'\r'}
    case $line in
      switched | exit\ *) break ;;
      "") ;;
      *) msg+="${msg:+; }$line" ;;
    esac
  done
  if [[ $line != switched ]]; then
    wait "$PROXY_CUTOVER_PID" || true
    exec {PROXY_CUTOVER_FD}<&-
    rh_kv_set "$conf" LIVE "$old"
    proxy_write_config_files >/dev/null
    proxy_push_config || true
    printf '[railhead] %s ERROR cutover: %s\n' "$(rh_host_label)" "${msg:-docker exec into $RH_PROXY_CONTAINER failed}" >&2
    return 1
  fi
  if ((push_rc != 0)); then
    # The running proxy switched, but a restart would read the old files: switch back.
    proxy_drain_wait
    if [[ -n $old ]]; then proxy_in_run proxy_in_revert "$backend" "$idle" "$old" || true; fi
    rh_kv_set "$conf" LIVE "$old"
    proxy_write_config_files >/dev/null
    printf '[railhead] %s ERROR cutover: could not copy the proxy config into %s (switched back to slot %s)\n' \
      "$(rh_host_label)" "$RH_PROXY_CONTAINER" "${old:-none}" >&2
    return 1
  fi
  # shellcheck disable=SC2034 # read by the caller (release_run)
  PROXY_OLD_SLOT=$old
}

# After proxy_cutover_locked succeeded: waits for the drain of the old slot to end and sets
# PROXY_DRAIN_LEFT to the sessions it still had (0 when drained; empty when there was no old
# slot; "unknown" when the exec failed). Runs in the caller's shell (it owns the FIFO and the job).
proxy_drain_wait() {
  local line rc=0
  PROXY_DRAIN_LEFT=""
  while IFS= read -r line <&"$PROXY_CUTOVER_FD"; do
    line=${line%$'\r'}
    case $line in
      left\ *) PROXY_DRAIN_LEFT=${line#left } ;;
      exit\ *) rc=${line#exit }; break ;;
    esac
  done
  wait "$PROXY_CUTOVER_PID" || true
  exec {PROXY_CUTOVER_FD}<&-
  if [[ $rc != 0 && -z $PROXY_DRAIN_LEFT ]]; then PROXY_DRAIN_LEFT=unknown; fi
  return 0
}

# After proxy_cutover_locked: waits for the drain of the old slot; warns when sessions were left.
proxy_drain_slot() {
  local slot=$1 drain_timeout=$2
  proxy_drain_wait
  [[ $PROXY_DRAIN_LEFT == 0 || -z $PROXY_DRAIN_LEFT ]] ||
    rh_warn drain "slot $slot still had $PROXY_DRAIN_LEFT sessions after ${drain_timeout}s; stopping it anyway"
}

# ---------------------------------------------------------------- TLS front (Caddy)

tls_render_caddyfile() {
  local s conf ssl_domains="" email internal
  for s in $(proxy_services); do
    conf=$(proxy_service_conf "$s")
    [[ $(rh_kv_get "$conf" SSL) == 1 ]] || continue
    ssl_domains+=" $(rh_kv_get "$conf" DOMAINS)"
  done
  email=$(proxy_setting TLS_EMAIL)
  internal=$(proxy_setting TLS_INTERNAL)
  printf '# Rendered by railhead-host: TLS for ssl services; everything goes on to %s:80.\n{\n' "$RH_PROXY_CONTAINER"
  [[ -n $email ]] && printf '  email %s\n' "$email"
  printf '  servers {\n    protocols h1 h2\n  }\n}\n'
  local d site=""
  for d in $ssl_domains; do
    site+="${site:+, }https://$d"
  done
  if [[ -n $site ]]; then
    printf '\n%s {\n' "$site"
    [[ $internal == 1 ]] && printf '  tls internal\n'
    printf '  reverse_proxy %s:80\n}\n' "$RH_PROXY_CONTAINER"
  fi
  printf '\nhttp:// {\n  reverse_proxy %s:80\n}\n' "$RH_PROXY_CONTAINER"
}

# Runs, updates or removes the Caddy front so it matches the ssl services; recreates
# railhead-proxy when it has to give up (or take back) port 80. The Caddyfile changes, and Caddy
# reloads, only when ssl domains change.
tls_ensure() {
  local dir image network state caddyfile spec current publish=() p443=() labels=() args=() sysctls=() logs=()
  dir=$(proxy_dir)
  state=$(rh_container_state "$RH_TLS_CONTAINER")
  if ! proxy_tls_wanted; then
    if [[ -n $state ]]; then
      docker rm -f "$RH_TLS_CONTAINER" >/dev/null
      rm -f "$dir/Caddyfile"
      rh_log tls "no ssl service left: removed $RH_TLS_CONTAINER"
    fi
    proxy_ensure_container
    return 0
  fi
  image=$(proxy_setting TLS_IMAGE)
  network=$(proxy_setting NETWORK)
  [[ -n $image ]] || rh_fail tls "a service asks for ssl but the proxy was booted without --tls-image" "run 'railhead-host proxy boot ... --tls-image IMG'"
  proxy_ensure_container
  caddyfile=$(tls_render_caddyfile)
  proxy_publish_args publish "$(proxy_setting HTTP_PORT)" 80
  proxy_publish_args p443 "$(proxy_setting HTTPS_PORT)" 443
  rh_pull_image "$image" missing || rh_fail tls "could not pull the TLS image $image" "check the image name and 'registry login'"
  spec=$(printf '%s\n' "v1" "$(rh_image_id "$image")" "$network" "${publish[*]} ${p443[*]}" | sha256sum | cut -c1-16)
  current=$(rh_container_label "$RH_TLS_CONTAINER" railhead.spec)
  if [[ $state == running && $current == "$spec" ]]; then
    if [[ -f $dir/Caddyfile && $(<"$dir/Caddyfile") == "$caddyfile" ]]; then
      rh_log tls "TLS front up to date (domains unchanged: Caddy not reloaded)"
      return 0
    fi
    printf '%s\n' "$caddyfile" | rh_write_file_atomic "$dir/Caddyfile" 0644
    docker cp "$dir/Caddyfile" "$RH_TLS_CONTAINER:/etc/caddy/Caddyfile" >/dev/null
    docker exec "$RH_TLS_CONTAINER" caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile >/dev/null 2>&1 ||
      rh_fail tls "Caddy rejected the new config" "docker logs $RH_TLS_CONTAINER; the config is $dir/Caddyfile"
    rh_log tls "ssl domains changed: Caddy reloaded"
    return 0
  fi
  printf '%s\n' "$caddyfile" | rh_write_file_atomic "$dir/Caddyfile" 0644
  [[ -e /proc/sys/net/ipv4/tcp_migrate_req ]] && sysctls=(--sysctl net.ipv4.tcp_migrate_req=1)
  labels=(--label railhead.managed=true --label railhead.component=tls)
  rh_log_args logs
  args=(--name "$RH_TLS_CONTAINER" --restart unless-stopped --network "$network" "${publish[@]}" "${p443[@]}"
    "${labels[@]}" --label "railhead.spec=$spec" --sysctl net.ipv4.ip_unprivileged_port_start=0 "${sysctls[@]}"
    --volume railhead-tls-data:/data --volume railhead-tls-config:/config "${logs[@]}"
    "$image" caddy run --config /etc/caddy/Caddyfile --adapter caddyfile)
  [[ -n $state ]] && docker rm -f "$RH_TLS_CONTAINER" >/dev/null
  docker create "${args[@]}" >/dev/null || rh_fail tls "could not create $RH_TLS_CONTAINER" "see Docker's error above"
  docker cp "$dir/Caddyfile" "$RH_TLS_CONTAINER:/etc/caddy/Caddyfile" >/dev/null
  docker start "$RH_TLS_CONTAINER" >/dev/null || rh_fail tls "$RH_TLS_CONTAINER did not start" "docker logs $RH_TLS_CONTAINER (ports 80/443 taken?)"
  rh_log tls "TLS front $RH_TLS_CONTAINER running ($image)"
}

# ---------------------------------------------------------------- dispatch

cmd_proxy() {
  case ${1:-} in
    boot) shift; proxy_boot "$@" ;;
    service)
      shift
      case ${1:-} in
        add) shift; proxy_service_add "$@" ;;
        remove) shift; proxy_service_remove "$@" ;;
        -h | --help | "") proxy_help ;;
        *) rh_usage_fail "unknown proxy service subcommand '$1'" ;;
      esac
      ;;
    maintenance) shift; proxy_maintenance "$@" ;;
    remove-if-unused) shift; proxy_remove_if_unused "$@" ;;
    -h | --help | "") proxy_help ;;
    *) rh_usage_fail "unknown proxy subcommand '$1'" ;;
  esac
}
