"""`plugins/examples/connect-logger` in Python: a lifecycle hook using kube, log, config and
http through the SDK (built and run by tests/e2e/tests/plugins_languages.rs)."""

import json

from portico_plugin import ErrorKind, PluginError, config, export_lifecycle_hook, http, kube, log


def notify(cluster, event, nodes):
    url = config.get().get("webhook-url")
    if url is None:
        return
    body = json.dumps({"event": event, "cluster": cluster.id, "nodes": nodes})
    response = http.post(url, body).header("content-type", "application/json").send()
    if not response.is_success():
        raise PluginError(ErrorKind.UNAVAILABLE, f"webhook answered HTTP {response.status}")


def on_connect(cluster):
    nodes = kube.list(kube.NODE)
    log.info(f"connected to {cluster.id} ({len(nodes)} nodes)")
    notify(cluster, "connected", len(nodes))


def on_disconnect(cluster):
    log.info(f"disconnected from {cluster.id}")
    notify(cluster, "disconnected", 0)


WitWorld = export_lifecycle_hook(on_connect, on_disconnect)
