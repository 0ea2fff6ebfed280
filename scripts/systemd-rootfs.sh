#!/usr/bin/env bash
# The Debian bookworm root file system in which test/systemd-real.test.ts boots a real systemd
# (252) as PID 1 of a new pid/mount namespace. Built once by debootstrap (Debian package
# `debootstrap`, packages from Debian's mirror, about 2-3 minutes) and cached OUTSIDE the checkout,
# so later runs take seconds. The folder's name carries a hash of this script: change the package
# list and the next run builds a new one. The test never writes into it (it mounts an overlay).
#
# Usage: scripts/systemd-rootfs.sh            build if missing, print the folder
#        scripts/systemd-rootfs.sh --path     print the folder only (built or not)
# Environment: NAACCORD_ROOTFS_CACHE (default /var/cache/naaccord-ipc), DEBIAN_MIRROR.
set -euo pipefail

SUITE=bookworm
# systemd + systemd-sysv: PID 1 and systemctl; dbus: systemctl talks to PID 1 over its private
# socket, but units (logind...) want the bus; procps/psmisc: ps and kill for the operator's view;
# ca-certificates: npm inside the root file system reaches the registry.
INCLUDE=systemd,systemd-sysv,dbus,procps,ca-certificates
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${NAACCORD_ROOTFS_CACHE:-/var/cache/naaccord-ipc}

self=$(readlink -f "$0")
hash=$(sha256sum "$self" | cut -c1-12)
dir="$CACHE/rootfs-$SUITE-$hash"

if [ "${1:-}" = "--path" ]; then echo "$dir"; exit 0; fi
if [ -x "$dir/lib/systemd/systemd" ]; then echo "$dir"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "systemd-rootfs: root is needed to debootstrap $dir" >&2; exit 1; fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "systemd-rootfs: installing debootstrap" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.rootfs-$SUITE-$hash.XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT
started=$(date +%s)
echo "systemd-rootfs: debootstrap $SUITE into $tmp (from $MIRROR)" >&2
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$tmp" "$MIRROR" >"$tmp.log" 2>&1 || {
  tail -n 30 "$tmp.log" >&2; rm -f "$tmp.log"; exit 1; }
rm -f "$tmp.log"
# Units that cannot work in a namespace without its own kernel, devices or a full cgroup tree:
# masked so that `systemctl is-system-running` reports what the test starts, not their failures.
for unit in systemd-logind.service e2scrub_reap.service e2scrub_all.timer apt-daily.timer \
  apt-daily-upgrade.timer fstrim.timer systemd-timesyncd.service getty@tty1.service \
  console-getty.service systemd-networkd-wait-online.service; do
  ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
done
rm -rf "$tmp/var/cache/apt/archives"/*.deb "$tmp/var/lib/apt/lists"/*
# The mount points the test binds the host's node and npm onto.
mkdir -p "$tmp/usr/lib/node_modules/npm"
: >"$tmp/usr/bin/node"
chmod 755 "$tmp/usr/bin/node"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$tmp/usr/bin/npm"
echo "$SUITE $(date -u +%FT%TZ) $INCLUDE" >"$tmp/etc/naaccord-rootfs"
mv -T "$tmp" "$dir"
trap - EXIT
echo "systemd-rootfs: built $dir in $(( $(date +%s) - started )) s" >&2
echo "$dir"
