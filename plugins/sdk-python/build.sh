#!/bin/sh
# Builds a Python plugin into a component: build.sh APP_DIR WORLD OUT.wasm
#
# APP_DIR holds `app.py`, which defines `WitWorld` (see portico_plugin.export_inspector);
# WORLD is `inspector` or `lifecycle-hook`. componentize-py comes from $COMPONENTIZE_PY, else
# target/plugin-tools/py (install-tools.sh), else the PATH.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 APP_DIR WORLD OUT.wasm" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tool=${COMPONENTIZE_PY:-}
if [ -z "$tool" ]; then
    if [ -x "$root/target/plugin-tools/py/bin/componentize-py" ]; then
        tool="$root/target/plugin-tools/py/bin/componentize-py"
    else
        tool=componentize-py
    fi
fi
command -v "$tool" >/dev/null 2>&1 || {
    echo "componentize-py not found: run plugins/sdk-python/install-tools.sh" >&2
    exit 127
}
mkdir -p "$(dirname "$3")"
exec "$tool" -d "$root/wit" -w "$2" componentize -p "$1" -p "$here" app -o "$3"
