#!/bin/sh
# Builds this plugin: build.sh [OUT.wasm] (default target/plugin-examples/require-labels-js.wasm)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
exec node "$root/plugins/sdk-js/build.mjs" "$here/app.js" inspector \
    "${1:-$root/target/plugin-examples/require-labels-js.wasm}"
