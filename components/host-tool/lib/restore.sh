# shellcheck shell=bash
# restore.sh: incident restores, one command each (the runbook in docs/runbook-restore.md).
#   restore sqlite    point-in-time restore of a Litestream-replicated SQLite database into the
#                     live volume: maintenance on, stop the roles that mount it and the replicator,
#                     restore into a NEW file, PRAGMA integrity_check, keep the current file aside
#                     (renamed, never deleted), swap, start, maintenance off.
#   restore postgres  a safety dump, maintenance on, the chosen dump restored into a NEW database,
#                     row counts, then the names swapped (the old database is kept, renamed).
# Fail safe: until the swap nothing live has changed; any failing step puts back what was moved,
# starts what was stopped, turns maintenance off (when this command turned it on) and exits 1
# naming the step. Each step prints its own seconds and the time since the start.
# Uses: ls_* and DRILL_SQLITE_SCRIPT, drill_compare, pg_* (litestream.sh), dp_* (accessory.sh),
# proxy_* (proxy.sh). Secrets: the Litestream credentials stay in the stored 0600 env file and
# reach containers through --env-file; nothing here reads or prints them.

rh_register_command "restore sqlite|postgres" "incident restore: point in time (SQLite) or a dump (Postgres), fail safe"

restore_usage() {
  cat <<'EOF'
Usage: railhead-host restore sqlite   --service S [--database NAME] [--timestamp T] [--dry-run] [--sqlite-image IMG]
       railhead-host restore postgres --service S --name N (--target DIR | --s3) [--prefix P] [--dump NAME] [--list] [< stdin]

sqlite: restores database NAME (a file name from litestream.yml; default the first, Rails'
  primary) as of T (RFC 3339, e.g. 2026-11-29T14:05:00Z; default the newest replicated write; a T
  after the newest replicated write restores that newest state)
  from the replica of the replicator <S>-litestream on this host, with the config `litestream
  replicate` stored. Steps: maintenance on (when S is on this host's proxy), stop every running
  container of S that mounts the storage volume and the replicator, `litestream restore
  -timestamp T` into a new file, PRAGMA integrity_check and row counts, keep the current file
  (and its -wal/-shm) aside as NAME.before-restore-<UTC time>, swap, start the replicator and
  the roles (web: until the proxy sees the live slot up again), maintenance off.
  --dry-run: only restores into a scratch volume and checks it; nothing live is touched.
  --sqlite-image: an image with the sqlite3 CLI (or python3); default: the image of the first
  container that mounts the volume (the app image).
postgres: restores dump NAME (a file name under <prefix>/postgres/<N>/, or
  pre-restore/<file> for a safety dump; default the newest) into the accessory <S>-<N>. Steps:
  the chosen dump is fetched, a safety dump of the live database goes to
  <prefix>/pre-restore/postgres/<N>/ (kept: 30), maintenance on (when S is on this host's proxy),
  pg_restore into a new database, row counts (restored vs live), the live database renamed to
  <db>_before_<UTC time> (kept, never dropped here) and the restored one renamed to <db>,
  maintenance off. --target/--s3/--prefix as for pg-dump (--s3: stdin or the stored config).
  --list: prints the dumps that can be restored, changes nothing.
Exit: 0 restored (or dry run passed), 1 a step failed (the old data serves again), 2 usage.
EOF
}

cmd_restore() {
  local sub=${1:-}
  [[ $# -gt 0 ]] && shift
  case $sub in
    sqlite) restore_sqlite "$@" ;;
    postgres) restore_postgres "$@" ;;
    -h | --help | help | "") restore_usage ;;
    *) rh_usage_fail "unknown restore subcommand \"$sub\" (sqlite or postgres)" ;;
  esac
}

# ---- steps, timing and the undo list ----------------------------------------------------------

RS_STEP="" RS_STEP_US=0 RS_N=0 RS_WHAT=""
RS_UNDO=() # shell words run in reverse order on failure (functions of this file)
RS_OK=0

rs_step() { # name: closes the previous step (its seconds), opens NAME
  rs_step_done
  RS_N=$((RS_N + 1))
  RS_STEP=$1
  RS_STEP_US=$(rh_now_us)
  rh_log "$RS_WHAT" "step $RS_N $RS_STEP"
}

rs_step_done() {
  [[ -n $RS_STEP ]] || return 0
  rh_log "$RS_WHAT" "step $RS_N $RS_STEP done in $(rh_seconds_between "$RS_STEP_US" "$(rh_now_us)")s"
  RS_STEP=""
}

rs_undo_push() { RS_UNDO+=("$(printf '%q ' "$@")"); }

# The EXIT trap: on failure, undo in reverse order (each undo step on its own, so one failing
# undo does not stop the others), then say which step failed.
rs_on_exit() {
  local rc=$? i failed_step=$RS_STEP
  ((RS_OK == 1)) && return 0
  trap - EXIT
  if ((${#RS_UNDO[@]} > 0)); then
    rh_warn "$RS_WHAT" "step $RS_N $failed_step failed: putting everything back"
    for ((i = ${#RS_UNDO[@]} - 1; i >= 0; i--)); do
      [[ -n ${RS_UNDO[i]} ]] || continue
      (eval "${RS_UNDO[i]}") || rh_warn "$RS_WHAT" "undo '${RS_UNDO[i]}' failed: check it by hand"
    done
  fi
  printf '[railhead] %s ERROR %s: step %s (%s) failed; nothing live was changed, or it was put back. Next: read the lines above (%ss)\n' \
    "$(rh_host_label)" "$RS_WHAT" "$RS_N" "${failed_step:-arguments}" "$(rh_elapsed)" >&2
  exit "$((rc == 0 ? 1 : rc))"
}

# The end of a restore that went through: maintenance off (when the restore turned it on), the
# last step timed, the work dir removed, and the undo trap disarmed.
rs_finish() { # service work-dir
  if [[ $RS_MAINT_ON == 1 ]]; then
    rs_step "maintenance off"
    rs_run rs_maintenance_off "$1"
  fi
  rs_step_done
  rm -rf "$2"
  RS_OK=1
  trap - EXIT
}

# Runs a step body in a subshell, so an rh_fail inside it ends only the step (the trap undoes).
rs_run() { # fn args...
  if ! ("$@"); then exit 1; fi
}

# ---- maintenance (only where S is on this host's proxy) ---------------------------------------

RS_MAINT_ON=0

rs_maintenance_on() { # service
  local conf
  conf=$(proxy_service_conf "$1")
  if [[ ! -f $conf ]]; then
    rh_log "$RS_WHAT" "service $1 is not on this host's proxy: no maintenance page here (the CLI puts it up on the web hosts)"
    return 0
  fi
  if [[ $(rh_kv_get "$conf" MAINTENANCE) == 1 ]]; then
    rh_log "$RS_WHAT" "maintenance was already on: left on afterwards"
    return 0
  fi
  rs_undo_push rs_maintenance_off "$1"
  rs_run proxy_maintenance "$1" on <<<"Restoring data, back in a few minutes"
  RS_MAINT_ON=1
}

rs_maintenance_off() { proxy_maintenance "$1" off </dev/null; }

# ---- SQLite -----------------------------------------------------------------------------------

# Running containers of SERVICE that mount VOLUME (one name a line): ONEOFF 0 the releases
# (restarted afterwards), 1 the one-off `exec` containers (removed when stopped; not restarted).
# The replicator is never listed.
rs_volume_users() { # service volume oneoff
  docker ps --filter "label=railhead.service=$1" --filter "volume=$2" --filter status=running --format '{{.Names}} {{.Label "railhead.role"}}' |
    awk -v o="$3" '$2 != "litestream" && (($1 ~ /-exec-[0-9a-f]+$/) == (o == 1)) { print $1 }'
}

# Starts CONTAINER again and waits until it serves: for the proxied role until the proxy sees the
# live slot up at its (possibly new) address, else Docker health / still running.
rs_start_role() { # service container
  local service=$1 c=$2 conf role port path live ip deadline state
  docker start "$c" >/dev/null
  conf=$(proxy_service_conf "$service")
  role=$(rh_container_label "$c" railhead.role)
  if [[ -f $conf && $(rh_kv_get "$conf" ROLE) == "$role" ]]; then
    port=$(rh_kv_get "$conf" APP_PORT) path=$(rh_kv_get "$conf" HEALTH_PATH) live=$(rh_kv_get "$conf" LIVE)
    ip=$(docker container inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$c" | awk '{ print $1 }')
    rh_wait_http_ok "$ip" "$port" "${path:-/up}" 1 5 60 "$c" || rh_fail "$RS_WHAT" "$c did not answer ${path:-/up} within 60s after its start" "docker logs $c"
    # Only the live release's container is behind the proxy: wait until its slot is up there.
    if [[ -n $live && $(rh_container_label "$c" railhead.version) != "" ]] && proxy_running; then
      deadline=$((SECONDS + 30))
      while :; do
        state=$(proxy_in_run proxy_in_slot "be_$service" "$live" 2>/dev/null) || state=""
        proxy_in_up "$state" "$ip" && break
        # A retained (not live) container of the role never becomes the live slot's address.
        [[ -n $(docker container inspect -f "{{range .NetworkSettings.Networks}}{{range .Aliases}}{{if eq . \"$service-$role--$live\"}}x{{end}}{{end}}{{end}}" "$c") ]] || break
        ((SECONDS < deadline)) || rh_fail "$RS_WHAT" "the proxy did not see $c up in slot $live within 30s (state: ${state:-unknown})" "docker logs railhead-proxy"
        sleep 0.2
      done
    fi
  else
    rh_wait_until_healthy "$c" 60 2 || rh_fail "$RS_WHAT" "$c did not stay up after its start" "docker logs $c"
  fi
  rh_log "$RS_WHAT" "started $c"
}

rs_volume_rm() { docker volume rm -f "$1" >/dev/null; }
rs_start_container() { docker start "$1" >/dev/null; }
rs_stop_all() { local c; for c in "$@"; do docker stop -t 30 "$c" >/dev/null 2>&1 || true; done; }

# Runs a shell script in a one-shot container as UID with the storage volume (file moves).
rs_in_volume() { # image uid volume storage script args...
  local image=$1 uid=$2 volume=$3 storage=$4 script=$5
  shift 5
  docker run --rm --user "$uid:$uid" --network none --volume "$volume:$storage" --entrypoint sh "$image" -c "set -e; cd \"\$0\"; $script" "$storage" "$@"
}

# Moves DB (and -wal, -shm, Litestream's .DB-litestream) to KEPT, then NEW to DB.
# shellcheck disable=SC2016 # runs in the container
RS_SWAP_SCRIPT='db=$1 kept=$2 new=$3
[ -e "$new" ] || { echo "the restored file $new is missing" >&2; exit 1; }
[ ! -e "$kept" ] || { echo "$kept exists already" >&2; exit 1; }
if [ -e "$db" ]; then mv "$db" "$kept"; fi
for s in -wal -shm; do if [ -e "$db$s" ]; then mv "$db$s" "$kept$s"; fi; done
if [ -d ".$db-litestream" ]; then mv ".$db-litestream" ".$kept-litestream"; fi
mv "$new" "$db"
# What litestream restore and the check leave beside the new file: its WAL goes with it, the
# shared-memory files (rebuilt on open) and the empty WAL of its temporary name go away.
if [ -e "$new-wal" ]; then mv "$new-wal" "$db-wal"; fi
rm -f "$new-shm" "$new.tmp-shm"
if [ -e "$new.tmp-wal" ] && [ ! -s "$new.tmp-wal" ]; then rm -f "$new.tmp-wal"; fi'

# The reverse: the restored DB (and what the app wrote to it) goes to FAILED, KEPT comes back.
# shellcheck disable=SC2016
RS_UNSWAP_SCRIPT='db=$1 kept=$2 failed=$3
[ -e "$kept" ] || exit 0
for s in "" -wal -shm; do if [ -e "$db$s" ]; then mv "$db$s" "$failed$s"; fi; done
if [ -d ".$db-litestream" ]; then mv ".$db-litestream" ".$failed-litestream"; fi
for s in "" -wal -shm; do if [ -e "$kept$s" ]; then mv "$kept$s" "$db$s"; fi; done
if [ -d ".$kept-litestream" ]; then mv ".$kept-litestream" ".$db-litestream"; fi'

# Prints the drill script's report for FILE inside the storage volume (integrity + row counts).
rs_sqlite_report() { # sqlite-image uid volume storage file
  docker run --rm --user "$2:$2" --network none --volume "$3:$4" --entrypoint sh "$1" -c "$DRILL_SQLITE_SCRIPT" report "$5"
}

restore_sqlite() {
  local service="" database="" timestamp="" dry=0 sqlite_image=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --database) rh_need_arg "$1" "$#"; database=$2; shift 2 ;;
      --timestamp) rh_need_arg "$1" "$#"; timestamp=$2; shift 2 ;;
      --sqlite-image) rh_need_arg "$1" "$#"; sqlite_image=$2; shift 2 ;;
      --dry-run) dry=1; shift ;;
      -h | --help) restore_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for restore sqlite" ;;
    esac
  done
  [[ -n $service ]] || rh_usage_fail "restore sqlite needs --service"
  rh_validate_name service "$service"
  [[ -z $timestamp || $timestamp =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$ ]] ||
    rh_usage_fail "--timestamp '$timestamp' is not RFC 3339; give e.g. 2026-11-29T14:05:00Z (UTC) or 2026-11-29T15:05:00+01:00"
  rh_require_docker
  RS_WHAT="restore sqlite $service"
  local dir repl="$service-litestream"
  dir=$(ls_dir "$service")
  [[ -f $dir/litestream.yml && -f $dir/env ]] ||
    rh_fail "$RS_WHAT" "no Litestream config stored for $service on this host" "run it on the host that runs the replicator (pulumi up stores the config with litestream replicate)"
  dp_container_exists "$repl" || rh_fail "$RS_WHAT" "no replicator $repl on this host" "run it on the host that runs the SQLite roles (npm run railhead -- details)"
  local image uid network storage volume db="" p
  image=$(docker container inspect -f '{{.Config.Image}}' "$repl")
  uid=$(docker container inspect -f '{{.Config.User}}' "$repl")
  uid=${uid%%:*}
  network=$(docker container inspect -f '{{.HostConfig.NetworkMode}}' "$repl")
  storage=$(ls_storage_dir "$dir/litestream.yml")
  volume=$(docker container inspect -f "{{range .Mounts}}{{if eq .Destination \"$storage\"}}{{.Name}}{{end}}{{end}}" "$repl")
  [[ $uid =~ ^[0-9]+$ && -n $volume ]] || rh_fail "$RS_WHAT" "could not read the uid and storage volume of $repl" "docker inspect $repl"
  while IFS= read -r p; do
    if [[ -z $database && -z $db ]] || [[ ${p##*/} == "$database" ]]; then db=$p; fi
  done < <(ls_db_paths "$dir/litestream.yml")
  [[ -z $database || ${db##*/} == "$database" ]] ||
    rh_usage_fail "--database $database is not replicated here; one of: $(ls_db_paths "$dir/litestream.yml" | sed 's#.*/##' | tr '\n' ' ')"
  local base=${db##*/} stamp users=()
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  mapfile -t users < <(rs_volume_users "$service" "$volume" 0)
  if [[ -z $sqlite_image ]]; then
    [[ ${#users[@]} -gt 0 ]] || rh_usage_fail "no running container mounts $volume: pass --sqlite-image IMG (an image with sqlite3 or python3)"
    sqlite_image=$(docker container inspect -f '{{.Config.Image}}' "${users[0]}")
  fi
  dp_ensure_image "$sqlite_image"
  local -a args=()
  mapfile -t args < <(ls_run_args "$dir" "$volume" "$storage" "$uid" "$network")
  rh_log "$RS_WHAT" "database $base in volume $volume, as of ${timestamp:-the newest replicated write}${users[*]:+, mounted by ${users[*]}}$([[ $dry == 1 ]] && printf ', DRY RUN (nothing live is touched)')"

  trap rs_on_exit EXIT
  local work report
  work=$(umask 077 && mktemp -d)
  rs_undo_push rm -rf "$work"

  if [[ $dry == 1 ]]; then
    local scratch="$service-restore-dry-$$"
    rs_step "restore into scratch volume $scratch"
    rs_undo_push rs_volume_rm "$scratch"
    docker volume create --label railhead.managed=true --label "railhead.service=$service" --label railhead.owner=restore "$scratch" >/dev/null
    ls_chown "$image" "$uid" --volume "$scratch:/restore" -- /restore
    rs_restore_file "$image" "/restore/$base" "$db" "${args[@]}" --volume "$scratch:/restore" -- "$timestamp"
    rs_step "integrity check"
    report=$(docker run --rm --user "$uid:$uid" --network none --volume "$scratch:/restore" --entrypoint sh "$sqlite_image" -c "$DRILL_SQLITE_SCRIPT" report "/restore/$base" 2>&1) || true
    rs_check_report "$report" "$base"
    rs_step_done
    docker volume rm -f "$scratch" >/dev/null
    rm -rf "$work"
    RS_OK=1
    rh_log "$RS_WHAT" "dry run passed: $base as of ${timestamp:-now} restores and checks ok; nothing live was touched"
    return 0
  fi

  local new=".$base.restore-$stamp" kept="$base.before-restore-$stamp" failed="$base.failed-restore-$stamp" c
  rs_step "maintenance on"
  rs_maintenance_on "$service"

  rs_step "stop the roles that mount $volume and the replicator"
  for c in $(rs_volume_users "$service" "$volume" 1); do
    docker stop -t 10 "$c" >/dev/null 2>&1 || true
    rh_log "$RS_WHAT" "stopped the one-off $c (exec containers are not restarted)"
  done
  for c in "${users[@]}"; do
    rs_undo_push rs_start_role "$service" "$c"
    docker stop -t 30 "$c" >/dev/null
    rh_log "$RS_WHAT" "stopped $c"
  done
  # SIGTERM: Litestream syncs a last time before it exits (DESIGN.md decision 8).
  rs_undo_push rs_start_container "$repl"
  docker stop -t 30 "$repl" >/dev/null
  rh_log "$RS_WHAT" "stopped $repl (final sync)"

  rs_step "restore into a new file $storage/$new"
  # shellcheck disable=SC2016 # runs in the container
  rs_undo_push rs_in_volume "$image" "$uid" "$volume" "$storage" 'for s in "" -wal -shm; do rm -f "$1$s" "$1.tmp$s"; done' "$new"
  rs_restore_file "$image" "$storage/$new" "$db" "${args[@]}" -- "$timestamp"

  rs_step "integrity check"
  report=$(rs_sqlite_report "$sqlite_image" "$uid" "$volume" "$storage" "$storage/$new" 2>&1) || true
  rs_check_report "$report" "$base"
  local live
  live=$(rs_sqlite_report "$sqlite_image" "$uid" "$volume" "$storage" "$db" 2>&1) || true
  rs_count_report "$base" "$live" "$report"

  rs_step "keep the current file aside as $kept, swap"
  rs_undo_push rs_in_volume "$image" "$uid" "$volume" "$storage" "$RS_UNSWAP_SCRIPT" "$base" "$kept" "$failed"
  rs_run rs_in_volume "$image" "$uid" "$volume" "$storage" "$RS_SWAP_SCRIPT" "$base" "$kept" "$new" ||
    rh_fail "$RS_WHAT" "the swap failed" "see above"
  rh_log "$RS_WHAT" "kept the file it replaced as $storage/$kept (never deleted by Railhead)"

  rs_step "start the replicator and the roles"
  # Should a start fail, everything is stopped again before the swap is undone.
  rs_undo_push rs_stop_all "$repl" "${users[@]}"
  docker start "$repl" >/dev/null
  sleep 1
  dp_container_running "$repl" || { rh_print_container_logs "$repl" 30; rh_fail "$RS_WHAT" "the replicator exited after the swap" "read its log above"; }
  for c in "${users[@]}"; do rs_run rs_start_role "$service" "$c"; done

  rs_finish "$service" "$work"
  rh_log "$RS_WHAT" "restored $base as of ${timestamp:-the newest replicated write}; the replaced file is $storage/$kept in volume $volume"
}

# litestream restore DB into OUT (a path in a mount given in the run args); exit 1 on failure.
rs_restore_file() { # image out db run-args... -- timestamp
  local image=$1 out=$2 db=$3 o ts="" gens newest t_utc
  shift 3
  local -a run=()
  while [[ $# -gt 0 && $1 != -- ]]; do run+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  ts=${1:-}
  if o=$(docker run --rm "${run[@]}" "$image" restore -config /etc/litestream.yml -no-expand-env -o "$out" ${ts:+-timestamp "$ts"} "$db" 2>&1); then
    rh_log "$RS_WHAT" "restored $db into $out${ts:+ as of $ts}"
    return 0
  fi
  # Litestream 0.3 restores a timestamp only inside a generation's [first, last write] span, so a T
  # after the newest replicated write finds "no matching backups": the state at T is the newest.
  if [[ -n $ts && $o == *"no matching backups"* ]]; then
    gens=$(docker run --rm "${run[@]}" "$image" generations -config /etc/litestream.yml -no-expand-env "$db" 2>&1) || gens=""
    newest=$(awk 'NR > 1 && $NF ~ /^[0-9][0-9][0-9][0-9]-/ { print $NF }' <<<"$gens" | sort | tail -n 1)
    t_utc=$(date -u -d "$ts" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || true)
    if [[ -n $newest && -n $t_utc && ! $t_utc < $newest ]]; then
      rh_log "$RS_WHAT" "$ts is after the newest replicated write ($newest): the newest state is the state at $ts"
      if o=$(docker run --rm "${run[@]}" "$image" restore -config /etc/litestream.yml -no-expand-env -o "$out" "$db" 2>&1); then
        rh_log "$RS_WHAT" "restored $db into $out as of $newest"
        return 0
      fi
    elif [[ -n $newest ]]; then
      printf '%s\n' "$gens" | sed 's/^/    /' >&2
      rh_fail "$RS_WHAT" "the replica has no backup of $db at $ts (the generations it holds are above)" "pick a --timestamp inside one of them (litestream keeps railhead:litestream.retention)"
    fi
  fi
  printf '%s\n' "$o" | tail -n 5 | sed 's/^/    /' >&2
  rh_fail "$RS_WHAT" "litestream restore of $db failed" "check the replica (litestream generations, snapshots) and the timestamp"
}

rs_check_report() { # report base
  local integrity
  integrity=$(sed -n 's/^integrity //p' <<<"$1")
  if [[ $integrity != "ok " && $integrity != ok ]]; then
    printf '  %s integrity_check FAIL: %s\n' "$2" "$(head -c 300 <<<"$1" | tr '\n' ' ')"
    rh_fail "$RS_WHAT" "the restored $2 failed PRAGMA integrity_check" "try another --timestamp, or inspect the replica"
  fi
  printf '  %s integrity_check ok\n' "$2"
}

rs_count_report() { # base live-report restored-report
  local t n r
  while read -r t r; do
    n=$(awk -v t="$t" '$1 == t { print $2 }' <<<"$2")
    printf '  %s table=%s live=%s restored=%s\n' "$1" "$t" "${n:-missing}" "$r"
  done < <(grep -v '^integrity ' <<<"$3")
  while read -r t n; do
    grep -q "^$t " <<<"$3" || printf '  %s table=%s live=%s restored=missing\n' "$1" "$t" "$n"
  done < <(grep -v '^integrity ' <<<"$2")
}

# ---- Postgres ---------------------------------------------------------------------------------

# Row counts of the public tables of DB in the accessory ("table rows" lines).
rs_pg_counts() { # container db
  local q="SELECT format('%s %s', c.relname, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1"
  docker exec "$1" sh -c "psql -qAt -U \"\$POSTGRES_USER\" -d \"\$1\" -c \"$q\"" psql "$2"
}

rs_psql() { # container sql...: as POSTGRES_USER on the maintenance database
  local c=$1
  shift
  docker exec "$c" sh -c 'psql -qAt -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -c "$1"' psql "$*"
}

rs_pg_drop() { rs_psql "$1" "DROP DATABASE IF EXISTS \"$2\""; }

restore_postgres() {
  local service="" name="" target="" prefix="" dump_name="" s3=0 list_only=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --name) rh_need_arg "$1" "$#"; name=$2; shift 2 ;;
      --target) rh_need_arg "$1" "$#"; target=$2; shift 2 ;;
      --prefix) rh_need_arg "$1" "$#"; prefix=$2; shift 2 ;;
      --dump) rh_need_arg "$1" "$#"; dump_name=$2; shift 2 ;;
      --s3) s3=1; shift ;;
      --list) list_only=1; shift ;;
      -h | --help) restore_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for restore postgres" ;;
    esac
  done
  [[ -n $service && -n $name ]] || rh_usage_fail "restore postgres needs --service and --name"
  rh_validate_name service "$service"
  rh_validate_name name "$name"
  [[ ($s3 == 1 && -z $target) || ($s3 == 0 && $target == /*) ]] || rh_usage_fail "restore postgres needs either an absolute --target or --s3"
  [[ -z $dump_name || $dump_name =~ ^(pre-restore/)?[A-Za-z0-9][A-Za-z0-9._-]*\.dump$ ]] ||
    rh_usage_fail "--dump '$dump_name' is not a dump file name; give e.g. 20261129T140000Z.dump or pre-restore/20261129T141500Z.dump"
  rh_require_docker
  RS_WHAT="restore postgres $service-$name"
  local container="$service-$name" base="${prefix:-$service}"
  local dest="$base/postgres/$name" safety_prefix="$base/pre-restore"
  if [[ $s3 == 1 ]]; then pg_s3_load "$service" "$name" "$RS_WHAT"; fi
  dp_container_running "$container" || rh_fail "$RS_WHAT" "$container is not running" "railhead-host accessory status --service $service --name $name"
  local image where dumps
  image=$(docker container inspect -f '{{.Config.Image}}' "$container")
  if [[ $s3 == 1 ]]; then
    where="s3://$PG_S3_BUCKET"
    dumps=$( { pg_s3_list "$dest/" | grep '\.dump$' | sed "s#^$dest/##"; pg_s3_list "$safety_prefix/postgres/$name/" | grep '\.dump$' | sed "s#^$safety_prefix/postgres/$name/#pre-restore/#"; } || true)
  else
    where=$target
    # shellcheck disable=SC2016 # expanded in the container
    dumps=$(docker run --rm --user 0 --network none --volume "$target:/target:ro" --entrypoint sh "$image" -c \
      'cd /target; for f in "$1"/*.dump; do [ -e "$f" ] && echo "${f##*/}"; done; for f in "$2"/*.dump; do [ -e "$f" ] && echo "pre-restore/${f##*/}"; done; true' ls "$dest" "$safety_prefix/postgres/$name")
  fi
  if [[ $list_only == 1 ]]; then
    printf 'dumps of %s under %s/%s (restore one with --dump NAME):\n' "$container" "$where" "$dest"
    grep -v '^pre-restore/' <<<"$dumps" | sort | sed 's/^/  /' || true
    printf 'safety dumps taken before earlier restores:\n'
    grep '^pre-restore/' <<<"$dumps" | sort | sed 's/^/  /' || true
    return 0
  fi
  local chosen=$dump_name
  [[ -n $chosen ]] || chosen=$(grep -v '^pre-restore/' <<<"$dumps" | sort | tail -n 1 || true)
  [[ -n $chosen ]] || rh_fail "$RS_WHAT" "no dump under $where/$dest" "take one with: railhead-host pg-dump --service $service --name $name ${target:+--target $target}${target:---s3} --prefix $base"
  grep -qxF -- "$chosen" <<<"$dumps" || rh_fail "$RS_WHAT" "no dump $chosen under $where/$dest" "list them with: railhead-host restore postgres --service $service --name $name ${target:+--target $target}${target:---s3} --prefix $base --list"
  local key="$dest/$chosen"
  [[ $chosen == pre-restore/* ]] && key="$safety_prefix/postgres/$name/${chosen#pre-restore/}"
  local db stamp new old
  db=$(docker exec "$container" sh -c 'printf %s "${POSTGRES_DB:-$POSTGRES_USER}"')
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  new="${db:0:40}_restore_${stamp,,}" old="${db:0:40}_before_${stamp,,}"
  rh_log "$RS_WHAT" "database $db in $container from $where/$key"

  trap rs_on_exit EXIT
  local work
  work=$(umask 077 && mktemp -d)
  rs_undo_push rm -rf "$work"

  rs_step "fetch dump $chosen"
  if [[ $s3 == 1 ]]; then
    pg_s3_curl -o "$work/dump" -H "x-amz-content-sha256: $PG_S3_EMPTY_SHA" "$(pg_s3_base)/$key" 2>"$work/get.log" ||
      rh_fail "$RS_WHAT" "downloading $where/$key failed: $(tr '\n' ' ' <"$work/get.log")" "check the endpoint, the bucket and the credentials"
  else
    docker run --rm --user 0 --network none --volume "$target:/target:ro" --entrypoint cat "$image" "/target/$key" >"$work/dump" ||
      rh_fail "$RS_WHAT" "reading $target/$key failed" "check the file"
  fi
  rh_log "$RS_WHAT" "dump $chosen: $(stat -c %s "$work/dump") bytes"

  rs_step "safety dump of the live database"
  # A separate prefix: the regular dumps' retention never removes it, and it never counts as newest.
  if [[ $s3 == 1 ]]; then
    rs_run pg_dump_run --service "$service" --name "$name" --s3 --prefix "$safety_prefix" --keep 30 </dev/null
  else
    rs_run pg_dump_run --service "$service" --name "$name" --target "$target" --prefix "$safety_prefix" --keep 30
  fi

  rs_step "maintenance on"
  rs_maintenance_on "$service"

  rs_step "pg_restore into a new database $new"
  rs_undo_push rs_pg_drop "$container" "$new"
  rs_psql "$container" "CREATE DATABASE \"$new\"" >/dev/null
  if ! docker exec -i "$container" sh -c 'pg_restore --no-owner --exit-on-error -U "$POSTGRES_USER" -d "$1"' pg_restore "$new" <"$work/dump" >"$work/restore.log" 2>&1; then
    sed 's/^/    /' "$work/restore.log" | tail -n 5 >&2
    rh_fail "$RS_WHAT" "pg_restore of $chosen failed" "the dump may be damaged: list the others with --list and pick one with --dump"
  fi

  rs_step "row counts (restored vs live)"
  rs_pg_counts "$container" "$new" >"$work/restored"
  rs_pg_counts "$container" "$db" >"$work/live"
  local t n r
  while read -r t r; do
    n=$(awk -v t="$t" '$1 == t { print $2 }' "$work/live")
    printf '  %s table=%s live=%s restored=%s\n' "$db" "$t" "${n:-missing}" "$r"
  done <"$work/restored"
  while read -r t n; do
    grep -q "^$t " "$work/restored" || printf '  %s table=%s live=%s restored=missing\n' "$db" "$t" "$n"
  done <"$work/live"

  rs_step "swap: $db -> $old (kept), $new -> $db"
  rs_pg_swap "$container" "$db" "$new" "$old"
  RS_UNDO=("${RS_UNDO[@]/rs_pg_drop*/}") # the restored database is live now: never drop it

  rs_finish "$service" "$work"
  rh_log "$RS_WHAT" "restored $chosen into $db; the database it replaced is kept as $old (drop it when done: DROP DATABASE \"$old\"); the safety dump is under $where/$safety_prefix"
}

# Renames DB to OLD and NEW to DB in one transaction, after closing DB's sessions (new ones are
# refused meanwhile). On failure DB takes connections again, unchanged.
rs_pg_swap() { # container db new old
  local c=$1 db=$2 new=$3 old=$4 i out
  rs_psql "$c" "ALTER DATABASE \"$db\" ALLOW_CONNECTIONS false" >/dev/null || rh_fail "$RS_WHAT" "could not stop new sessions on $db" "check the accessory"
  for i in 1 2 3 4 5; do
    rs_psql "$c" "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN ('$db', '$new') AND pid <> pg_backend_pid()" >/dev/null || true
    if out=$(rs_psql "$c" "BEGIN; ALTER DATABASE \"$db\" RENAME TO \"$old\"; ALTER DATABASE \"$new\" RENAME TO \"$db\"; COMMIT;" 2>&1); then
      rs_psql "$c" "ALTER DATABASE \"$old\" ALLOW_CONNECTIONS true" >/dev/null || rh_warn "$RS_WHAT" "could not allow connections to the kept $old again"
      rh_log "$RS_WHAT" "swapped: $db is the restored database, the replaced one is $old"
      return 0
    fi
    sleep 0.5
  done
  printf '    %s\n' "$out" >&2
  rs_psql "$c" "ALTER DATABASE \"$db\" ALLOW_CONNECTIONS true" >/dev/null || true
  rh_fail "$RS_WHAT" "renaming the databases failed 5 times" "sessions kept reconnecting to $db; stop the job roles and retry"
}
