#!/usr/bin/env bash
# TEST EQUIPMENT (e2e VM host): the Debian bookworm disk image a VM "Hetzner server" boots
# (tests/e2e/engine/vm.ts). Built with debootstrap and packed with `mkfs.ext4 -d` (no loop mount),
# dist-upgraded so cloud-init's `packages:` step finds nothing to upgrade, cached by a hash of this
# file under $RH_VM_CACHE (default /var/cache/rh-vm/<hash>/: disk.img, vmlinuz, initrd.img); a
# changed recipe builds a new image. Needs root and the Debian packages debootstrap, e2fsprogs.
#   bash tests/vm/image.sh            build unless cached; prints the image directory
#   bash tests/vm/image.sh --rebuild  build even when cached
# The image is a plain Debian cloud host, plus only what the test network needs (see below): what
# Railhead's cloud-init sets up (the deploy user, sshd drop-in, Docker enabled...) is left to it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CACHE=${RH_VM_CACHE:-/var/cache/rh-vm}
hash=$(sha256sum "$here/image.sh" | cut -c1-16)
out="$CACHE/$hash"

if [[ ${1:-} != --rebuild && -f $out/ready ]]; then
  echo "$out"
  exit 0
fi
[[ $(id -u) == 0 ]] || { echo "tests/vm/image.sh: needs root (debootstrap, chroot)" >&2; exit 1; }

# The Debian mirror this machine's apt already uses (the only one reachable here).
mirror=$(grep -rhoE '^(URIs:|deb) *https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
  grep -oE 'https?://[^ ]+' | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
security=${mirror%/debian}/debian-security

# What the guest boots and what Railhead's cloud-init and host tool use. cloud-init's own
# `packages:` list (docker.io bash curl cron ca-certificates unattended-upgrades) is preinstalled so
# first boot does not download it; apparmor: the Debian kernel enables AppArmor and Docker refuses
# to start containers without its parser; locales: cloud-init's locale module needs them.
packages=(
  linux-image-cloud-amd64 initramfs-tools systemd systemd-sysv udev dbus kmod iproute2 netbase
  cloud-init openssh-server docker.io apparmor locales curl ca-certificates bash cron
  unattended-upgrades sudo less procps e2fsprogs
)

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
start=$(date +%s)
echo "tests/vm/image.sh: building $out from $mirror" >&2

debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
# No service starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" >"$root/etc/fstab"

# apt inside the chroot, in a private mount namespace (its /proc, /sys, /dev go away with it).
# shellcheck disable=SC2016 # the script is expanded by the inner bash, from its arguments
unshare --mount --propagation private bash -euo pipefail -c '
  root=$1; shift
  mount -t proc proc "$root/proc"
  mount -t sysfs sys "$root/sys"
  mount --bind /dev "$root/dev"
  mount -t devpts devpts "$root/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null || true
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  export DEBIAN_FRONTEND=noninteractive LC_ALL=C
  chroot "$root" apt-get update -q
  chroot "$root" apt-get -y -q dist-upgrade
  chroot "$root" apt-get install -y -q --no-install-recommends "$@"
  echo "en_US.UTF-8 UTF-8" >"$root/etc/locale.gen"
  chroot "$root" locale-gen
  chroot "$root" update-locale LANG=en_US.UTF-8
  chroot "$root" apt-get clean
' image "$root" "${packages[@]}" >"$work/apt.log" 2>&1 || { tail -n 40 "$work/apt.log" >&2; exit 1; }
rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"

# --- the test network (QEMU user networking, restrict=on; tests/e2e/engine/vm.ts) ---------------
# The guest's address is DHCP from QEMU (systemd-networkd); cloud-init does not render networking.
cat >"$root/etc/systemd/network/10-uplink.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
chroot "$root" systemctl enable systemd-networkd >/dev/null 2>&1
echo "network: {config: disabled}" >"$root/etc/cloud/cloud.cfg.d/90-rh-vm-network.cfg"
# Only the NoCloud seed (the `cidata` volume) is a datasource here.
echo "datasource_list: [NoCloud, None]" >"$root/etc/cloud/cloud.cfg.d/90-rh-vm-datasource.cfg"
# No DNS in the guest: Debian's mirror is reached through a QEMU guestfwd at a fixed address.
echo "nameserver 10.0.2.3" >"$root/etc/resolv.conf"
{
  echo "127.0.0.1 localhost"
  echo "10.0.2.100 ${mirror#*://}" | sed 's#/.*##'
  [[ ${security#*://} == "${mirror#*://}" ]] || echo "10.0.2.100 ${security#*://}" | sed 's#/.*##'
} >"$root/etc/hosts"
awk '!seen[$0]++' "$root/etc/hosts" >"$root/etc/hosts.new" && mv "$root/etc/hosts.new" "$root/etc/hosts"
# The test registry is plain HTTP on the rig gateway (10.x); Docker pulls over HTTP only from
# registries it is told are insecure. /etc/default/docker is read by Debian's docker.service.
echo 'DOCKER_OPTS="--insecure-registry 10.0.0.0/8"' >"$root/etc/default/docker"

# Every VM gets its own identity at first boot: machine-id and SSH host keys (cloud-init makes
# them and prints their fingerprints and keys on the serial console).
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
# apt's package lists stay: cloud-init's `package_update` then only checks them (decompressing
# fresh lists under TCG took minutes).
rm -rf "$root/var/lib/cloud" "$root/var/log/"*.log
echo "rh-vm" >"$root/etc/hostname"

mkdir -p "$work/img"
cp "$root"/boot/vmlinuz-* "$work/img/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/img/initrd.img"
truncate -s 8G "$work/img/disk.img"
mkfs.ext4 -q -F -L rhroot -d "$root" "$work/img/disk.img"
echo "$hash built $(date -u +%FT%TZ) in $(($(date +%s) - start)) s from $mirror" >"$work/img/ready"
rm -rf "$out"
mv "$work/img" "$out"
# Older recipes' images are not needed any more.
find "$CACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$hash" ! -name 'build.*' -exec rm -rf {} +
echo "tests/vm/image.sh: built in $(($(date +%s) - start)) s" >&2
echo "$out"
