#!/usr/bin/env bash
# The base image that deploy/docker/Dockerfile's FROM names (node:20-bookworm-slim), made locally
# for test/docker-real.test.ts where no image registry is reachable: the cached Debian bookworm
# root file system of scripts/systemd-rootfs.sh, through `docker import`, plus this machine's
# `node` (same glibc). Tagged with the FROM name so the Dockerfile stays the one users build. An
# image of that name that this script did not make (a real pull) is left alone and used.
#
# Usage: scripts/docker-base-image.sh [DOCKER]   (DOCKER: the docker CLI, default `docker`)
set -euo pipefail
DOCKER=${1:-docker}
here=$(dirname "$(readlink -f "$0")")
tag=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' "$here/../deploy/docker/Dockerfile" | head -n1)
node_bin=$(readlink -f "$(command -v node)")
# The image carries the rootfs and node it was made from: a new node or rootfs makes a new one.
stamp="$("$here/systemd-rootfs.sh" --path)|$(node -v)|$(sha256sum "$node_bin" | cut -c1-16)"

if "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
  made=$("$DOCKER" image inspect -f '{{index .Config.Labels "org.naaccord.base"}}' "$tag")
  if [ "$made" = "" ] || [ "$made" = "<no value>" ] || [ "$made" = "$stamp" ]; then echo "$tag"; exit 0; fi
fi
rootfs=$("$here/systemd-rootfs.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$node_bin" "$work/node"
# docker import: the root file system as one layer (its placeholder /usr/bin/node is replaced).
tar -C "$rootfs" --exclude=./usr/bin/node --exclude=./usr/bin/npm -c . | "$DOCKER" import - naaccord-ipc/bookworm-rootfs:local >/dev/null
cat >"$work/Dockerfile" <<DOCKERFILE
FROM naaccord-ipc/bookworm-rootfs:local
COPY node /usr/local/bin/node
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
LABEL org.naaccord.base="$stamp"
CMD ["node"]
DOCKERFILE
"$DOCKER" build -q -t "$tag" "$work" >/dev/null
echo "$tag"
