"""Portico plugin SDK for Python: typed helpers over the bindings `componentize-py` generates
from `wit/` (module `wit_world`, generated at build time by `build.sh`).

The same surface as the Rust SDK (`plugins/sdk`):

- `kube.get` / `kube.list` / `kube.pod_logs` (objects as dicts; `kube.DEPLOYMENT` and friends
  name the common kinds, `kube.Kind(api_version, kind)` any other),
- `Finding.fail(check, Severity.LOW, message)` / `Finding.pass_(check, message)`, then
  `.on(obj)`, `.target(kind, namespace, name)`, `.extra(value)`,
- `config.get()`, `log.info(...)` and the other levels, `http.get(url)` / `http.post(...)`,
- `export_inspector(fn)`, `export_lifecycle_hook(on_connect, on_disconnect)` turn plain
  functions into the `WitWorld` class componentize-py exports.

Every host call raises `PluginError` on failure; an export that raises it returns it to the
gateway as the call's error (any other exception becomes an `internal` error).
"""

from ._core import (
    Cluster,
    ErrorKind,
    Finding,
    PluginError,
    Severity,
    export_inspector,
    export_lifecycle_hook,
)
from . import config, http, kube, log

__all__ = [
    "Cluster",
    "ErrorKind",
    "Finding",
    "PluginError",
    "Severity",
    "config",
    "export_inspector",
    "export_lifecycle_hook",
    "http",
    "kube",
    "log",
]
