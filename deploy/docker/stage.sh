#!/bin/sh
# The files the image's runtime stage copies to /opt/naaccord, made from the packed packages the
# way a user installs them (npm, the addon's prebuilt binary, no compiler):
#   STAGE/services  @naaccord/ipc-server + @naaccord/ipc-cli (naaccord-ipc run, doctor) + express, server.js
#   STAGE/web       @naaccord/ipc-client + @naaccord/ipc-cli (doctor, for probes), server.js
# server.js/app.js are examples/ compiled to JavaScript (esbuild, no bundling); replace them with
# your apps. Run by the Dockerfile's build stage, or outside the image by a pipeline (and by
# test/docker-real.test.ts) where the image build cannot reach the registry.
# Usage: deploy/docker/stage.sh TARBALL_DIR STAGE_DIR   (TARBALL_DIR from: node scripts/pack.mjs DIR)
set -eu
tarballs=$(cd "$1" && pwd)
mkdir -p "$2"
stage=$(cd "$2" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
tgz() { for n in "$@"; do ls "$tarballs"/naaccord-ipc-"$n"-*.tgz; done; }
npm_install() { npm install --no-audit --no-fund --loglevel=error --omit=dev "$@"; }
mkdir -p "$stage/services" "$stage/web"
(cd "$stage/services" && echo '{"private":true,"type":"module"}' >package.json \
  && npm_install $(tgz shared peercred server certs cli) express@5) & services=$!
(cd "$stage/web" && echo '{"private":true,"type":"module"}' >package.json \
  && npm_install $(tgz shared peercred client server certs cli) express@5) & web=$!
wait $services && wait $web
for app in services web; do
  "$root/node_modules/.bin/esbuild" --log-level=warning --platform=node --format=esm --target=node20 \
    --outdir="$stage/$app" "$root/examples/$app/server.ts" "$root/examples/$app/app.ts"
done
