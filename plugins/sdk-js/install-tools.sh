#!/bin/sh
# Installs the pinned componentize-js (package.json) into target/plugin-tools/js, where
# build.mjs looks for it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dest="$root/target/plugin-tools/js"
mkdir -p "$dest"
cp "$here/package.json" "$dest/package.json"
cd "$dest"
npm install --no-audit --no-fund --silent
