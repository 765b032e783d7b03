#!/usr/bin/env bash
# litestream.sh: SQLite replication with Litestream 0.3.13 (DESIGN.md decision 8), the backup
# drills and Postgres dumps.
# - One long-lived replicate container per host per service (<service>-litestream), sharing the
#   app's storage volume and running as the app's UID; never inside app containers, because two
#   replicators on one database lose data silently (research/litestream.md B4).
# - `litestream restore` restores each database that is missing, before the first release.
# - `drill sqlite|postgres` proves the newest backup restores; `drill schedule` runs it from cron.
# stdin of litestream/drill sqlite: the rendered litestream.yml, the line `### railhead:env ###`,
# then the credentials env file. The YAML holds no secret; the env file is kept 0600.
# Uses the dp_ helpers from accessory.sh.

LS_SEPARATOR='### railhead:env ###'

rh_register_command "litestream replicate|restore" "SQLite replication: one replicator per host, restore-if-missing"
rh_register_command "drill sqlite|postgres" "backup drill: restore the newest backup and compare (schedule: cron)"
rh_register_command "pg-dump" "pg_dump -Fc of a Postgres accessory to the replica target (file or S3)"

litestream_usage() {
  cat <<'EOF'
Usage: railhead-host litestream replicate --service S --volume V --image IMG [--uid 1000] [--network host] < stdin
       railhead-host litestream restore   --service S --volume V --image IMG [--uid 1000] [--network host] < stdin
       railhead-host litestream remove    --service S
       railhead-host litestream status    --service S

stdin: litestream.yml (litestream 0.3.13, absolute paths), a line `### railhead:env ###`, then the
credentials env file (LITESTREAM_ACCESS_KEY_ID=..., LITESTREAM_SECRET_ACCESS_KEY=...; empty for a
file replica). Both are kept under the state dir (env 0600) for the scheduled drill.

replicate: one container <service>-litestream per host, `litestream replicate`, as --uid, with the
  storage volume V mounted where the YAML's database paths live. The same spec twice changes
  nothing; a changed spec stops the old replicator (final sync) before the new one starts, so two
  never run at once.
restore:   for each database: `litestream restore -if-db-not-exists -if-replica-exists`. Run it
  before the first release on a host; a database that exists is left alone.
remove:    stops and removes the replicator (the volume, the database and the replicas stay).

--network host (default): the replicator only makes outbound connections to the replica store.
EOF
}

drill_usage() {
  cat <<'EOF'
Usage: railhead-host drill sqlite   --service S --volume V --image IMG --sqlite-image IMG [--uid 1000] [--tables 3] [--tolerance 1] [< stdin]
       railhead-host drill postgres --service S --name N --target DIR|--s3 [--prefix P] [--dump] [--tables 3] [--tolerance 1] [< stdin]
       railhead-host drill schedule --service S --cron "M H * * *" --kind sqlite|postgres [--id ID] -- DRILL-ARGS...
       railhead-host drill unschedule --service S --kind sqlite|postgres [--id ID]

sqlite: restores the newest replica of each database into a scratch volume, runs PRAGMA
  integrity_check, compares the row counts of the largest tables with the live database, prints a
  report and exits 1 on any failure. Without stdin it uses the config stored by `litestream replicate`.
  --sqlite-image: an image with the sqlite3 CLI (or python3), e.g. the app image.
postgres: (with --dump: first runs pg-dump) restores the newest dump from `pg-dump` into a
  scratch database in the running accessory, compares the row counts of the largest tables with the live database, drops it.
  --s3: the dump comes from the bucket (stdin or the stored config, as for pg-dump --s3).
schedule: installs a cron entry (user crontab) that runs the drill and logs to the state dir;
  --id tells apart several entries of one kind (default: the kind). For a postgres drill with --s3,
  stdin (the litestream document) is stored for the cron run, which gets no stdin.
  Cron, not a systemd timer: it needs no root, and Ubuntu's cloud images ship it. A host without
  crontab gets a warning and no schedule (the deploy goes on).
--tolerance: percent of rows the restored copy may lag the live database (default 1; at least 10 rows).
EOF
}

pg_dump_usage() {
  cat <<'EOF'
Usage: railhead-host pg-dump --service S --name N --target DIR [--prefix P] [--keep 7]
       railhead-host pg-dump --service S --name N --s3 [--prefix P] [--keep 7] [< stdin]

Dumps the Postgres accessory <service>-<name> (pg_dump -Fc, as its POSTGRES_USER, of POSTGRES_DB)
to <prefix>/postgres/<name>/<UTC time>.dump, keeping the newest --keep dumps:
--target DIR: under DIR on the host (the file replica target).
--s3: in the bucket of the Litestream S3 replica. stdin: the same document as `litestream
  replicate` (litestream.yml, the separator line, the credentials env); without stdin the one
  stored by an earlier --s3 run is used (state dir, env 0600). The host's curl (--aws-sigv4) does
  the transfers; the credentials reach it through a config on a pipe, never its arguments.
  Path-style URLs for endpoints with force-path-style (the default for an endpoint).
EOF
}

cmd_litestream() {
  local sub=${1:-}
  [[ $# -gt 0 ]] && shift
  case $sub in
    replicate | restore) litestream_run "$sub" "$@" ;;
    remove) litestream_remove "$@" ;;
    status) litestream_status "$@" ;;
    -h | --help | help | "") litestream_usage ;;
    *) rh_usage_fail "unknown litestream subcommand \"$sub\"" ;;
  esac
}

cmd_drill() {
  local sub=${1:-}
  [[ $# -gt 0 ]] && shift
  case $sub in
    sqlite) drill_sqlite "$@" ;;
    postgres) drill_postgres "$@" ;;
    schedule) drill_schedule "$@" ;;
    unschedule) drill_unschedule "$@" ;;
    -h | --help | help | "") drill_usage ;;
    *) rh_usage_fail "unknown drill subcommand \"$sub\"" ;;
  esac
}

cmd_pg_dump() { pg_dump_run "$@"; }

# ---- config handling ------------------------------------------------------------------------

# Splits stdin into DIR/litestream.yml (0644: no secrets, read by the container's UID) and
# DIR/env (0600). Returns 1 when stdin is empty (the caller then uses what is stored).
ls_take_stdin() { # dir
  local dir=$1 raw
  mkdir -p "$dir"
  chmod 700 "$dir"
  raw="$dir/stdin.tmp"
  rh_env_file_from_stdin "$raw"
  if [[ ! -s $raw ]]; then rm -f "$raw"; return 1; fi
  grep -qxF "$LS_SEPARATOR" "$raw" || { rm -f "$raw"; rh_fail litestream "stdin has no line '$LS_SEPARATOR'" "send litestream.yml, that line, then the env file"; }
  awk -v sep="$LS_SEPARATOR" '$0 == sep { exit } { print }' "$raw" >"$dir/litestream.yml.next"
  (umask 077 && awk -v sep="$LS_SEPARATOR" 'found { print } $0 == sep { found = 1 }' "$raw" >"$dir/env.next")
  rm -f "$raw"
  chmod 644 "$dir/litestream.yml.next"
  chmod 600 "$dir/env.next"
  mv -f "$dir/litestream.yml.next" "$dir/litestream.yml"
  mv -f "$dir/env.next" "$dir/env"
}

ls_dir() { printf '%s/litestream/%s' "$(rh_state_dir)" "$1"; }

# Database paths (`  - path: "..."` lines, as components/litestream-render.ts writes them).
ls_db_paths() { sed -n 's/^  - path: "\(.*\)"$/\1/p' "$1"; }

# File replica directories (the `path:` after `type: file`), bind-mounted at the same path.
ls_file_replica_paths() { awk '/^        type: file$/ { f = 1; next } f && /^        path: / { sub(/^        path: "/, ""); sub(/"$/, ""); print; f = 0 }' "$1"; }

# The storage directory: every database must live directly in it (one volume holds them all).
ls_storage_dir() { # yml
  local storage="" p d
  while IFS= read -r p; do
    d=${p%/*}
    [[ -z $storage || $storage == "$d" ]] || rh_fail litestream "databases live in two directories ($storage, $d)" "keep every database directly under the storage directory"
    storage=$d
  done < <(ls_db_paths "$1")
  [[ -n $storage ]] || rh_fail litestream "litestream.yml lists no database" "render the config with components/litestream-render.ts"
  printf '%s' "$storage"
}

# Makes DIR (inside a mount) owned by UID, with a one-shot root container of IMAGE.
ls_chown() { # image uid mount-args... -- path
  local image=$1 uid=$2
  shift 2
  local -a mounts=()
  while [[ $1 != -- ]]; do mounts+=("$1"); shift; done
  shift
  docker run --rm --user 0 --network none --entrypoint chown "${mounts[@]}" "$image" "$uid:$uid" "$@" >/dev/null
}

# Common docker run arguments for a litestream container.
ls_run_args() { # dir volume storage uid network -> prints one arg per line
  local dir=$1 volume=$2 storage=$3 uid=$4 network=$5 r
  printf '%s\n' --user "$uid:$uid" --network "$network" --env-file "$dir/env" \
    --volume "$volume:$storage" --volume "$dir/litestream.yml:/etc/litestream.yml:ro" --entrypoint litestream
  while IFS= read -r r; do printf '%s\n' --volume "$r:$r"; done < <(ls_file_replica_paths "$dir/litestream.yml")
}

ls_prepare_mounts() { # dir volume storage uid image service
  local dir=$1 volume=$2 storage=$3 uid=$4 image=$5 service=$6 r
  dp_ensure_volume "$volume" "$service" "storage"
  local -a mounts=(--volume "$volume:$storage") paths=("$storage")
  while IFS= read -r r; do mounts+=(--volume "$r:$r"); paths+=("$r"); done < <(ls_file_replica_paths "$dir/litestream.yml")
  ls_chown "$image" "$uid" "${mounts[@]}" -- "${paths[@]}"
}

# ---- replicate / restore --------------------------------------------------------------------

litestream_run() {
  local action=$1
  shift
  local service="" volume="" image="" uid=1000 network=host
  while [[ $# -gt 0 ]]; do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --volume) rh_need_arg "$1" "$#"; volume=$2; shift 2 ;;
      --image) rh_need_arg "$1" "$#"; image=$2; shift 2 ;;
      --uid) rh_need_arg "$1" "$#"; uid=$2; shift 2 ;;
      --network) rh_need_arg "$1" "$#"; network=$2; shift 2 ;;
      --host-identity) rh_need_arg "$1" "$#"; shift 2 ;;
      -h | --help) litestream_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for litestream $action" ;;
    esac
  done
  [[ -n $service && -n $volume && -n $image ]] || rh_usage_fail "litestream $action needs --service, --volume and --image"
  rh_validate_name service "$service"
  [[ $uid =~ ^[0-9]+$ ]] || rh_usage_fail "--uid must be numeric"
  local dir step="litestream $service"
  dir=$(ls_dir "$service")
  ls_take_stdin "$dir" || [[ -f $dir/litestream.yml ]] || rh_fail "$step" "no config on stdin and none stored" "send the rendered litestream.yml on stdin"
  local storage
  storage=$(ls_storage_dir "$dir/litestream.yml")
  dp_ensure_image "$image"
  local -a args=()
  mapfile -t args < <(ls_run_args "$dir" "$volume" "$storage" "$uid" "$network")
  if [[ $action == restore ]]; then litestream_restore "$dir" "$volume" "$storage" "$uid" "$image" "$service" "${args[@]}"; return; fi

  local container="$service-litestream" spec
  spec=$( {
    printf '%s\n' "image=$image" "volume=$volume" "uid=$uid" "network=$network"
    dp_sha <"$dir/litestream.yml"
    dp_sha <"$dir/env"
  } | dp_sha)
  if dp_container_exists "$container" && [[ "$(rh_container_label "$container" railhead.spec)" == "$spec" ]]; then
    dp_container_running "$container" || docker start "$container" >/dev/null
    rh_log "$step" "replicator already current"
    return 0
  fi
  ls_prepare_mounts "$dir" "$volume" "$storage" "$uid" "$image" "$service"
  if dp_container_exists "$container"; then
    # SIGTERM makes litestream sync a last time; only then does the new one start.
    rh_log "$step" "config changed: stopping the old replicator"
    docker stop -t 30 "$container" >/dev/null || true
    docker rm -f "$container" >/dev/null
  fi
  local -a log_args=() && rh_log_args log_args
  docker run -d --name "$container" --restart unless-stopped --label railhead.managed=true \
    --label "railhead.service=$service" --label railhead.role=litestream --label "railhead.spec=$spec" \
    "${log_args[@]}" "${args[@]}" "$image" replicate -config /etc/litestream.yml -no-expand-env >/dev/null
  sleep 2
  if ! dp_container_running "$container"; then
    rh_print_container_logs "$container" 50
    rh_fail "$step" "the replicator exited" "read the log lines above (config, credentials, endpoint)"
  fi
  rh_log "$step" "replicating $(ls_db_paths "$dir/litestream.yml" | wc -l) database(s) from volume $volume as uid $uid"
}

litestream_restore() { # dir volume storage uid image service run-args...
  local dir=$1 volume=$2 storage=$3 uid=$4 image=$5 service=$6
  shift 6
  local step="litestream $service" db out restored=0
  ls_prepare_mounts "$dir" "$volume" "$storage" "$uid" "$image" "$service"
  while IFS= read -r db; do
    if ! out=$(docker run --rm "$@" "$image" restore -config /etc/litestream.yml -no-expand-env -if-db-not-exists -if-replica-exists "$db" 2>&1); then
      printf '%s\n' "$out" | sed 's/^/    /' >&2
      rh_fail "$step" "restore of $db failed" "check the replica with: litestream snapshots -config /etc/litestream.yml $db"
    fi
    case $out in
      *"already exists"*) rh_log "$step" "$db exists: left alone" ;;
      *"no matching backups"* | *"no backups"* | *"no replicas"* | "") rh_log "$step" "$db: no replica yet, starts empty" ;;
      *) rh_log "$step" "$db restored from the replica"; restored=$((restored + 1)) ;;
    esac
  done < <(ls_db_paths "$dir/litestream.yml")
  rh_log "$step" "restore done ($restored restored)"
}

litestream_remove() {
  local service=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      -h | --help) litestream_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for litestream remove" ;;
    esac
  done
  [[ -n $service ]] || rh_usage_fail "litestream remove needs --service"
  docker stop -t 30 "$service-litestream" >/dev/null 2>&1 || true
  docker rm -f "$service-litestream" >/dev/null 2>&1 || true
  rh_log "litestream $service" "replicator removed; the storage volume and the replicas are kept"
}

litestream_status() {
  local service=${2:-}
  [[ ${1:-} == --service && -n $service ]] || rh_usage_fail "litestream status needs --service"
  docker container inspect -f '{{.Name}} {{.State.Status}} restarts={{.RestartCount}} image={{.Config.Image}}' "$service-litestream" 2>/dev/null ||
    { echo "$service-litestream absent"; return 1; }
}

# ---- drills ---------------------------------------------------------------------------------

# Prints `integrity <result>` then `<table> <rows>` lines for a database, with sqlite3 or python3.
# shellcheck disable=SC2016 # runs in the container, which expands it
DRILL_SQLITE_SCRIPT='
db=$1
if command -v sqlite3 >/dev/null 2>&1; then
  printf "integrity %s\n" "$(sqlite3 -readonly "$db" "PRAGMA integrity_check;" 2>&1 | tr "\n" " ")"
  for t in $(sqlite3 -readonly "$db" "SELECT name FROM sqlite_master WHERE type=\"table\" AND name NOT LIKE \"sqlite_%\" AND name NOT LIKE \"_litestream%\";"); do
    printf "%s %s\n" "$t" "$(sqlite3 -readonly "$db" "SELECT count(*) FROM \"$t\";")"
  done
else
  python3 - "$db" <<PY
import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
print("integrity " + " ".join(r[0] for r in c.execute("PRAGMA integrity_check")))
for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type=\"table\" AND name NOT LIKE \"sqlite_%\" AND name NOT LIKE \"_litestream%\""):
    print(t, c.execute("SELECT count(*) FROM \"%s\"" % t).fetchone()[0])
PY
fi'

# Compares table counts: restored file vs live file ("table rows" lines). Prints the report;
# returns 1 on a failure. Largest N tables of the live database.
drill_compare() { # label tables tolerance restored-file live-file
  local label=$1 tables=$2 tol=$3 restored=$4 live=$5 failed=0 t n r allowed
  while read -r t n; do
    r=$(awk -v t="$t" '$1 == t { print $2 }' "$restored")
    allowed=$(awk -v n="$n" -v p="$tol" 'BEGIN { a = int(n * p / 100); if (a < 10) a = 10; print a }')
    if [[ -z $r ]]; then
      printf '  %s table=%s live=%s restored=missing FAIL\n' "$label" "$t" "$n"; failed=1
    elif ((r > n || n - r > allowed)); then
      printf '  %s table=%s live=%s restored=%s FAIL (allowed lag %s rows)\n' "$label" "$t" "$n" "$r" "$allowed"; failed=1
    else
      printf '  %s table=%s live=%s restored=%s ok\n' "$label" "$t" "$n" "$r"
    fi
  done < <(sort -k2,2nr "$live" | head -n "$tables")
  return "$failed"
}

drill_sqlite() {
  local service="" volume="" image="" sqlite_image="" uid=1000 network=host tables=3 tol=1
  while [[ $# -gt 0 ]]; do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --volume) rh_need_arg "$1" "$#"; volume=$2; shift 2 ;;
      --image) rh_need_arg "$1" "$#"; image=$2; shift 2 ;;
      --sqlite-image) rh_need_arg "$1" "$#"; sqlite_image=$2; shift 2 ;;
      --uid) rh_need_arg "$1" "$#"; uid=$2; shift 2 ;;
      --network) rh_need_arg "$1" "$#"; network=$2; shift 2 ;;
      --tables) rh_need_arg "$1" "$#"; tables=$2; shift 2 ;;
      --tolerance) rh_need_arg "$1" "$#"; tol=$2; shift 2 ;;
      --host-identity) rh_need_arg "$1" "$#"; shift 2 ;;
      -h | --help) drill_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for drill sqlite" ;;
    esac
  done
  [[ -n $service && -n $volume && -n $image && -n $sqlite_image ]] || rh_usage_fail "drill sqlite needs --service, --volume, --image and --sqlite-image"
  [[ $tables =~ ^[0-9]+$ && $tol =~ ^[0-9]+(\.[0-9]+)?$ && $uid =~ ^[0-9]+$ ]] || rh_usage_fail "--tables, --uid and --tolerance must be numbers"
  local dir step="drill $service" started=$SECONDS
  dir=$(ls_dir "$service")
  # A scheduled run has no stdin: it uses the config stored by the last `litestream replicate`.
  local cfg given="$dir/drill"
  if ls_take_stdin "$given"; then cfg=$given; elif [[ -f $dir/litestream.yml ]]; then cfg=$dir; else
    rm -rf "$given"
    rh_fail "$step" "no litestream config on stdin and none stored" "run litestream replicate first, or send the config on stdin"
  fi
  local storage scratch="$service-drill-$$" work
  storage=$(ls_storage_dir "$cfg/litestream.yml")
  dp_ensure_image "$image"
  dp_ensure_image "$sqlite_image"
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: the names are fixed for this run
  trap "docker volume rm -f '$scratch' >/dev/null 2>&1; rm -rf '$work' '$given'" EXIT
  docker volume create --label railhead.managed=true --label "railhead.service=$service" --label railhead.owner=drill "$scratch" >/dev/null
  ls_chown "$image" "$uid" --volume "$scratch:/drill" -- /drill
  local -a args=()
  mapfile -t args < <(ls_run_args "$cfg" "$volume" "$storage" "$uid" "$network")
  local db base failed=0 out
  rh_log "$step" "restoring the newest replica of each database into scratch volume $scratch"
  while IFS= read -r db; do
    base=${db##*/}
    if ! out=$(docker run --rm "${args[@]}" --volume "$scratch:/drill" "$image" restore -config /etc/litestream.yml -no-expand-env -o "/drill/$base" "$db" 2>&1); then
      printf '  %s restore FAIL: %s\n' "$base" "$(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
      failed=1
      continue
    fi
    docker run --rm --user "$uid:$uid" --network none --volume "$scratch:/drill" --entrypoint sh "$sqlite_image" -c "$DRILL_SQLITE_SCRIPT" drill "/drill/$base" >"$work/restored" 2>&1 || true
    docker run --rm --user "$uid:$uid" --network none --volume "$volume:$storage" --entrypoint sh "$sqlite_image" -c "$DRILL_SQLITE_SCRIPT" drill "$db" >"$work/live" 2>&1 || true
    local integrity
    integrity=$(sed -n 's/^integrity //p' "$work/restored")
    if [[ $integrity != "ok " && $integrity != ok ]]; then
      printf '  %s integrity_check FAIL: %s\n' "$base" "$(head -c 300 "$work/restored" | tr '\n' ' ')"
      failed=1
      continue
    fi
    printf '  %s integrity_check ok\n' "$base"
    grep -v '^integrity ' "$work/restored" >"$work/r" || true
    grep -v '^integrity ' "$work/live" >"$work/l" || true
    drill_compare "$base" "$tables" "$tol" "$work/r" "$work/l" || failed=1
  done < <(ls_db_paths "$cfg/litestream.yml")
  if [[ $failed == 1 ]]; then
    rh_fail "$step" "backup drill FAILED after $((SECONDS - started))s (report above)" "inspect the replica; a failed drill means a restore would fail or lose data"
  fi
  rh_log "$step" "backup drill passed in $((SECONDS - started))s"
}

pg_dump_run() {
  local service="" name="" target="" prefix="" keep=7 s3=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --name) rh_need_arg "$1" "$#"; name=$2; shift 2 ;;
      --target) rh_need_arg "$1" "$#"; target=$2; shift 2 ;;
      --s3) s3=1; shift ;;
      --prefix) rh_need_arg "$1" "$#"; prefix=$2; shift 2 ;;
      --keep) rh_need_arg "$1" "$#"; keep=$2; shift 2 ;;
      -h | --help) pg_dump_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for pg-dump" ;;
    esac
  done
  [[ -n $service && -n $name ]] || rh_usage_fail "pg-dump needs --service and --name"
  [[ ($s3 == 1 && -z $target) || ($s3 == 0 && $target == /*) ]] || rh_usage_fail "pg-dump needs either an absolute --target or --s3"
  [[ $keep =~ ^[1-9][0-9]*$ ]] || rh_usage_fail "--keep must be a positive number"
  local container="$service-$name" step="pg-dump $service-$name" started=$SECONDS
  if [[ $s3 == 1 ]]; then pg_s3_load "$service" "$name" "$step"; fi
  dp_container_running "$container" || rh_fail "$step" "$container is not running" "railhead-host accessory boot ..."
  local image dest stamp
  image=$(docker container inspect -f '{{.Config.Image}}' "$container")
  dest="${prefix:-$service}/postgres/$name"
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  if [[ $s3 == 1 ]]; then pg_dump_s3 "$container" "$dest" "$stamp" "$keep" "$step"; return; fi
  # The dump streams from the accessory into a one-shot container that owns the target mount:
  # the deploy user need not be able to write the replica directory.
  local err rc_dump rc_store
  err=$(mktemp)
  set +e
  docker exec "$container" sh -c 'pg_dump -Fc -U "$POSTGRES_USER" "${POSTGRES_DB:-$POSTGRES_USER}"' 2>"$err" |
    docker run --rm -i --user 0 --network none --volume "$target:/target" --entrypoint sh "$image" -c \
      'set -e; mkdir -p "/target/$1"; cat >"/target/$1/$2.dump.tmp"; mv "/target/$1/$2.dump.tmp" "/target/$1/$2.dump"; ls -1 "/target/$1"/*.dump | sort | head -n -"$3" | xargs -r rm -f' \
      dump "$dest" "$stamp" "$keep" 2>>"$err"
  local -a st=("${PIPESTATUS[@]}")
  set -e
  rc_dump=${st[0]} rc_store=${st[1]:-0}
  if [[ $rc_dump != 0 || $rc_store != 0 ]]; then
    sed 's/^/    /' "$err" >&2
    rm -f "$err"
    rh_fail "$step" "pg_dump exited $rc_dump, storing the dump exited $rc_store" "read the lines above; docker logs $container"
  fi
  rm -f "$err"
  rh_log "$step" "dumped to $target/$dest/$stamp.dump in $((SECONDS - started))s"
}

# ---- Postgres dumps in the S3 replica bucket --------------------------------------------------
# The config is the Litestream stdin document (its first s3 replica: bucket, region, endpoint,
# force-path-style; the credentials env), kept under the state dir per accessory for the cron
# run. Transfers use the host's curl with --aws-sigv4 (curl >= 7.75; Debian bookworm has 7.88,
# which signs a given x-amz-content-sha256 header as the payload hash, as S3 requires).

PG_S3_DIR="" PG_S3_BUCKET="" PG_S3_REGION="" PG_S3_ENDPOINT="" PG_S3_PATHSTYLE=""
PG_S3_EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

pg_s3_dir() { printf '%s/pg-dump/%s-%s' "$(rh_state_dir)" "$1" "$2"; }

# A field of the first `type: s3` replica in litestream.yml (as litestream-render.ts writes it).
pg_s3_field() { # yml key
  awk -v k="$2" '/^        type: s3$/ { f = 1; next } f && /^      - name: / { exit } f && $1 == k":" { v = $0; sub(/^[^:]*: /, "", v); gsub(/^"|"$/, "", v); print v; exit }' "$1"
}

# Takes stdin (or the stored config) and sets PG_S3_*; fails when there is no s3 replica.
pg_s3_load() { # service name step
  local dir
  dir=$(pg_s3_dir "$1" "$2")
  ls_take_stdin "$dir" || [[ -f $dir/litestream.yml ]] || rh_fail "$3" "no S3 config on stdin and none stored" "send the litestream document on stdin (litestream.yml, '$LS_SEPARATOR', the credentials env)"
  command -v curl >/dev/null 2>&1 || rh_fail "$3" "this host has no curl (needed for the S3 upload)" "apt-get install curl"
  PG_S3_DIR=$dir
  PG_S3_BUCKET=$(pg_s3_field "$dir/litestream.yml" bucket)
  PG_S3_REGION=$(pg_s3_field "$dir/litestream.yml" region)
  PG_S3_ENDPOINT=$(pg_s3_field "$dir/litestream.yml" endpoint)
  PG_S3_PATHSTYLE=$(pg_s3_field "$dir/litestream.yml" force-path-style)
  [[ -n $PG_S3_BUCKET && -n $PG_S3_REGION ]] || rh_fail "$3" "the stored litestream.yml has no s3 replica (bucket, region)" "use --target DIR for a file replica"
  [[ -z $PG_S3_ENDPOINT || $PG_S3_ENDPOINT =~ ^https?://[^/]+/?$ ]] || rh_fail "$3" "unsupported endpoint \"$PG_S3_ENDPOINT\"" "an endpoint is scheme://host[:port]"
}

# The bucket's base URL: path-style for an endpoint with force-path-style, else virtual-hosted.
pg_s3_base() {
  local ep=${PG_S3_ENDPOINT%/}
  [[ -n $ep ]] || ep="https://s3.$PG_S3_REGION.amazonaws.com"
  if [[ $PG_S3_PATHSTYLE == true ]]; then printf '%s/%s' "$ep" "$PG_S3_BUCKET"; else printf '%s://%s.%s' "${ep%%://*}" "$PG_S3_BUCKET" "${ep#*://}"; fi
}

# Percent-encodes for a query value (RFC 3986 unreserved kept), as SigV4 expects.
pg_s3_qenc() {
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in [A-Za-z0-9._~-]) out+=$c ;; *) out+=$(printf '%%%02X' "'$c") ;; esac
  done
  printf '%s' "$out"
}

# The curl config with the credentials (user = "ID:SECRET"), printed into a pipe for -K.
pg_s3_auth() {
  local k v id="" secret="" u
  while IFS='=' read -r k v; do
    case $k in
      LITESTREAM_ACCESS_KEY_ID | AWS_ACCESS_KEY_ID) id=$v ;;
      LITESTREAM_SECRET_ACCESS_KEY | AWS_SECRET_ACCESS_KEY) secret=$v ;;
    esac
  done <"$PG_S3_DIR/env"
  u="$id:$secret"
  u=${u//\\/\\\\}
  u=${u//\"/\\\"}
  printf 'user = "%s"\n' "$u"
}

# curl with SigV4; extra curl arguments, then the URL last.
pg_s3_curl() { # curl-args... url
  curl -sS --fail --retry 3 --connect-timeout 10 --aws-sigv4 "aws:amz:$PG_S3_REGION:s3" -K <(pg_s3_auth) "$@"
}

# Keys under a prefix (ListObjectsV2; one page: pg-dump keeps only --keep dumps there).
pg_s3_list() { # prefix
  local base out
  base=$(pg_s3_base)
  [[ $PG_S3_PATHSTYLE == true ]] || base+=/
  out=$(pg_s3_curl -H "x-amz-content-sha256: $PG_S3_EMPTY_SHA" "$base?list-type=2&prefix=$(pg_s3_qenc "$1")") || return 1
  grep -o '<Key>[^<]*</Key>' <<<"$out" | sed 's/^<Key>//; s/<\/Key>$//' || true
}

pg_dump_s3() { # container dest stamp keep step
  local container=$1 dest=$2 stamp=$3 keep=$4 step=$5 started=$SECONDS file err sha key
  file=$(umask 077 && mktemp "$PG_S3_DIR/dump.XXXXXX")
  err=$(mktemp)
  # shellcheck disable=SC2016 # expanded in the container
  if ! docker exec "$container" sh -c 'pg_dump -Fc -U "$POSTGRES_USER" "${POSTGRES_DB:-$POSTGRES_USER}"' >"$file" 2>"$err"; then
    sed 's/^/    /' "$err" >&2
    rm -f "$file" "$err"
    rh_fail "$step" "pg_dump failed" "read the lines above; docker logs $container"
  fi
  sha=$(sha256sum "$file" | cut -d' ' -f1)
  key="$dest/$stamp.dump"
  if ! pg_s3_curl -o /dev/null -T "$file" -H "x-amz-content-sha256: $sha" "$(pg_s3_base)/$key" 2>"$err"; then
    sed 's/^/    /' "$err" >&2
    rm -f "$file" "$err"
    rh_fail "$step" "uploading the dump to s3://$PG_S3_BUCKET/$key failed" "check the endpoint, the bucket and the credentials"
  fi
  rm -f "$file" "$err"
  local old
  while IFS= read -r old; do
    [[ -n $old ]] || continue
    pg_s3_curl -o /dev/null -X DELETE -H "x-amz-content-sha256: $PG_S3_EMPTY_SHA" "$(pg_s3_base)/$old" || rh_warn "$step" "could not delete the old dump $old"
  done < <(pg_s3_list "$dest/" | grep '\.dump$' | sort | head -n -"$keep")
  rh_log "$step" "dumped to s3://$PG_S3_BUCKET/$key in $((SECONDS - started))s"
}

drill_postgres() {
  local service="" name="" target="" prefix="" tables=3 tol=1 dump=0 s3=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --dump) dump=1; shift ;;
      --s3) s3=1; shift ;;
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --name) rh_need_arg "$1" "$#"; name=$2; shift 2 ;;
      --target) rh_need_arg "$1" "$#"; target=$2; shift 2 ;;
      --prefix) rh_need_arg "$1" "$#"; prefix=$2; shift 2 ;;
      --tables) rh_need_arg "$1" "$#"; tables=$2; shift 2 ;;
      --tolerance) rh_need_arg "$1" "$#"; tol=$2; shift 2 ;;
      -h | --help) drill_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for drill postgres" ;;
    esac
  done
  [[ -n $service && -n $name ]] || rh_usage_fail "drill postgres needs --service and --name"
  [[ ($s3 == 1 && -z $target) || ($s3 == 0 && $target == /*) ]] || rh_usage_fail "drill postgres needs either an absolute --target or --s3"
  local container="$service-$name" step="drill $service-$name" started=$SECONDS work image dest scratch where
  if [[ $s3 == 1 ]]; then pg_s3_load "$service" "$name" "$step"; fi
  dp_container_running "$container" || rh_fail "$step" "$container is not running" "railhead-host accessory boot ..."
  # pg-dump --s3 reads no stdin now: drill has stored it (or it was stored before).
  if [[ $dump == 1 && $s3 == 1 ]]; then pg_dump_run --service "$service" --name "$name" --s3 ${prefix:+--prefix "$prefix"} </dev/null; fi
  if [[ $dump == 1 && $s3 == 0 ]]; then pg_dump_run --service "$service" --name "$name" --target "$target" ${prefix:+--prefix "$prefix"}; fi
  image=$(docker container inspect -f '{{.Config.Image}}' "$container")
  dest="${prefix:-$service}/postgres/$name"
  scratch="railhead_drill_$$"
  work=$(umask 077 && mktemp -d)
  # shellcheck disable=SC2064
  trap "docker exec '$container' sh -c 'dropdb -U \"\$POSTGRES_USER\" --if-exists $scratch' >/dev/null 2>&1; rm -rf '$work'" EXIT
  local newest
  if [[ $s3 == 1 ]]; then
    where="s3://$PG_S3_BUCKET/$dest"
    local keys
    keys=$(pg_s3_list "$dest/") || rh_fail "$step" "listing $where failed" "check the endpoint, the bucket and the credentials"
    newest=$(grep '\.dump$' <<<"$keys" | sort | tail -n 1 || true)
  else
    where="$target/$dest"
    newest=$(docker run --rm --user 0 --network none --volume "$target:/target:ro" --entrypoint sh "$image" -c 'ls -1 "/target/$1"/*.dump 2>/dev/null | sort | tail -n 1' ls "$dest")
  fi
  [[ -n $newest ]] || rh_fail "$step" "no dump under $where" "railhead-host pg-dump --service $service --name $name ${target:+--target $target}${target:---s3}"
  rh_log "$step" "restoring ${newest##*/} into scratch database $scratch"
  if [[ $s3 == 1 ]]; then
    pg_s3_curl -o "$work/dump" -H "x-amz-content-sha256: $PG_S3_EMPTY_SHA" "$(pg_s3_base)/$newest" 2>"$work/get.log" ||
      rh_fail "$step" "downloading s3://$PG_S3_BUCKET/$newest failed: $(tr '\n' ' ' <"$work/get.log")" "check the endpoint, the bucket and the credentials"
  fi
  docker exec "$container" sh -c "createdb -U \"\$POSTGRES_USER\" $scratch"
  local failed=0
  if ! pg_dump_read "$s3" "$work/dump" "$target" "$image" "$newest" |
    docker exec -i "$container" sh -c "pg_restore --no-owner --exit-on-error -U \"\$POSTGRES_USER\" -d $scratch" >"$work/restore.log" 2>&1; then
    printf '  pg_restore FAIL: %s\n' "$(tail -n 3 "$work/restore.log" | tr '\n' ' ')"
    failed=1
  else
    printf '  pg_restore ok\n'
    local q="SELECT format('%s %s', c.relname, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'"
    docker exec "$container" sh -c "psql -qAt -U \"\$POSTGRES_USER\" -d \"\${POSTGRES_DB:-\$POSTGRES_USER}\" -c \"$q\"" >"$work/live"
    docker exec "$container" sh -c "psql -qAt -U \"\$POSTGRES_USER\" -d $scratch -c \"$q\"" >"$work/restored"
    drill_compare "${newest##*/}" "$tables" "$tol" "$work/restored" "$work/live" || failed=1
  fi
  [[ $failed == 0 ]] || rh_fail "$step" "postgres drill FAILED after $((SECONDS - started))s (report above)" "inspect the dumps under $where"
  rh_log "$step" "postgres drill passed in $((SECONDS - started))s"
}

# Prints the dump: the downloaded file (s3) or the file under the target (read by a container).
pg_dump_read() { # s3 file target image path
  if [[ $1 == 1 ]]; then cat "$2"; else docker run --rm --user 0 --network none --volume "$3:/target:ro" --entrypoint cat "$4" "$5"; fi
}

# ---- schedule -------------------------------------------------------------------------------

drill_schedule() {
  local service="" cron="" kind="" id=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --id) rh_need_arg "$1" "$#"; id=$2; shift 2 ;;
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --cron) rh_need_arg "$1" "$#"; cron=$2; shift 2 ;;
      --kind) rh_need_arg "$1" "$#"; kind=$2; shift 2 ;;
      --) shift; break ;;
      -h | --help) drill_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for drill schedule" ;;
    esac
  done
  [[ -n $service && -n $cron && $# -gt 0 ]] || rh_usage_fail "drill schedule needs --service, --cron, --kind and the drill arguments after --"
  [[ $kind == sqlite || $kind == postgres ]] || rh_usage_fail "--kind must be sqlite or postgres"
  [[ $cron =~ ^[0-9*/,-]+\ [0-9*/,-]+\ [0-9*/,-]+\ [0-9*/,a-zA-Z-]+\ [0-9*/,a-zA-Z-]+$ ]] || rh_usage_fail "--cron must be a 5-field cron expression"
  if [[ $kind == postgres ]] && printf '%s\n' "$@" | grep -qx -- --s3; then
    # The cron run gets no stdin: keep the S3 config where pg-dump/drill --s3 look for it.
    local a prev="" pg_name=""
    for a in "$@"; do
      [[ $prev == --name ]] && pg_name=$a
      prev=$a
    done
    [[ -n $pg_name ]] || rh_usage_fail "drill schedule --kind postgres needs --name in the drill arguments"
    pg_s3_load "$service" "$pg_name" "drill $service"
  fi
  if ! command -v crontab >/dev/null 2>&1; then
    # A deploy must not fail for want of cron; say loudly that nothing is scheduled.
    rh_warn "drill $service" "this host has no crontab, so the $kind drill is NOT scheduled; install cron (apt-get install cron) and re-run, or run it by hand: drill $kind $*"
    return 0
  fi
  local tool marker line logdir w
  tool=$(readlink -f "$0")
  marker="# railhead-drill $service ${id:-$kind}"
  logdir="$(rh_state_dir)/drill"
  mkdir -p "$logdir"
  line="$cron"
  [[ -n ${DOCKER_HOST:-} ]] && line+=" DOCKER_HOST=$(printf '%q' "$DOCKER_HOST")"
  [[ -n ${RAILHEAD_STATE_DIR:-} ]] && line+=" RAILHEAD_STATE_DIR=$(printf '%q' "$RAILHEAD_STATE_DIR")"
  line+=" bash $(printf '%q' "$tool") --host-label $(printf '%q' "$(rh_host_label)") drill $kind"
  for w in "$@"; do line+=" $(printf '%q' "$w")"; done
  line+=" </dev/null >>$(printf '%q' "$logdir/$service-${id:-$kind}.log") 2>&1 $marker"
  # The crontab is one file per user edited read-modify-write: the sqlite and postgres drills of
  # one host are scheduled (and unscheduled) by resources the engine runs concurrently, so every
  # edit holds the host's crontab lock (else one write drops the other's entry).
  if rh_with_lock crontab drill_crontab_put "$marker" "$line"; then
    rh_log "drill $service" "$kind drill scheduled ($cron, log $logdir/$service-${id:-$kind}.log)"
  else
    rh_log "drill $service" "$kind drill already scheduled ($cron)"
  fi
}

# Under the crontab lock: replaces the entry ending in MARKER by LINE. Returns 1 when LINE is
# already there (nothing written).
drill_crontab_put() {
  local marker=$1 line=$2 current
  current=$(crontab -l 2>/dev/null || true)
  grep -qxF -- "$line" <<<"$current" && return 1
  { grep -vF -- "$marker" <<<"$current" | sed '/^$/d' || true; printf '%s\n' "$line"; } | crontab -
}

# Under the crontab lock: removes the entries ending in MARKER.
drill_crontab_drop() {
  local marker=$1 current
  current=$(crontab -l 2>/dev/null || true)
  { grep -vF -- "$marker" <<<"$current" | sed '/^$/d' || true; } | crontab -
}

drill_unschedule() {
  local service="" kind="" id=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --id) rh_need_arg "$1" "$#"; id=$2; shift 2 ;;
      --service) rh_need_arg "$1" "$#"; service=$2; shift 2 ;;
      --kind) rh_need_arg "$1" "$#"; kind=$2; shift 2 ;;
      -h | --help) drill_usage; return 0 ;;
      *) rh_usage_fail "unknown option \"$1\" for drill unschedule" ;;
    esac
  done
  [[ -n $service && -n $kind ]] || rh_usage_fail "drill unschedule needs --service and --kind"
  command -v crontab >/dev/null 2>&1 || return 0
  rh_with_lock crontab drill_crontab_drop "# railhead-drill $service ${id:-$kind}"
  rh_log "drill $service" "$kind drill unscheduled"
}
