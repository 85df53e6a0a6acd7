#!/bin/sh
# Installs the pinned componentize-py (requirements.txt) into a virtualenv under
# target/plugin-tools/py, where build.sh looks first.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/target/plugin-tools/py"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/componentize-py" --version
