#!/bin/sh
# Installs the pinned componentize-js, exactly the tree package-lock.json records, into
# target/plugin-tools/js, where build.mjs looks for it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dest="$root/target/plugin-tools/js"
mkdir -p "$dest"
cp "$here/package.json" "$here/package-lock.json" "$dest/"
cd "$dest"
npm ci --no-audit --no-fund --silent
