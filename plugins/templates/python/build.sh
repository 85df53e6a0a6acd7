#!/bin/sh
# Builds {{name}}.wasm beside {{name}}.toml (`portico plugin install {{name}}.toml` uploads both).
# Needs componentize-py: {{portico}}/plugins/sdk-python/install-tools.sh installs the pinned one.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/{{portico}}/plugins/sdk-python/build.sh" "$here" inspector "$here/{{name}}.wasm"
