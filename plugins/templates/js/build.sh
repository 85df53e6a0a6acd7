#!/bin/sh
# Builds {{name}}.wasm beside {{name}}.toml (`portico plugin install {{name}}.toml` uploads both).
# Needs Node and componentize-js: {{portico}}/plugins/sdk-js/install-tools.sh installs the pinned one.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec node "$here/{{portico}}/plugins/sdk-js/build.mjs" "$here/app.js" inspector "$here/{{name}}.wasm"
