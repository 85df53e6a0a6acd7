#!/bin/sh
# Builds this plugin: build.sh [OUT.wasm] (default target/plugin-examples/require-labels-py.wasm)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
exec "$root/plugins/sdk-python/build.sh" "$here" inspector \
    "${1:-$root/target/plugin-examples/require-labels-py.wasm}"
