"""Drives the official Python `kubernetes` client against a cluster and prints what happened
as JSON. Reads the cluster from $KUBECONFIG; the namespace is the first argument."""

import json
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def error_of(exc):
    body = json.loads(exc.body) if exc.body else {}
    return {"status": exc.status, "reason": body.get("reason"), "message": body.get("message")}


def main():
    ns = sys.argv[1] if len(sys.argv) > 1 else "default"
    config.load_kube_config()
    core = client.CoreV1Api()
    coord = client.CoordinationV1Api()
    report = {}

    pods = core.list_namespaced_pod(ns)
    report["pods"] = [p.metadata.name for p in pods.items]
    report["all_pods"] = len(core.list_pod_for_all_namespaces(label_selector="app=app-1").items)

    cm = core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-cm"), data={"k": "1"})
    )
    report["created"] = {"name": cm.metadata.name, "uid": cm.metadata.uid}
    try:
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-cm")))
    except ApiException as e:
        report["create_again"] = error_of(e)

    stale = cm
    cm.data = {"k": "2"}
    updated = core.replace_namespaced_config_map("py-cm", ns, cm)
    report["replaced_data"] = updated.data
    stale.metadata.resource_version = cm.metadata.resource_version
    stale.data = {"k": "3"}
    try:
        core.replace_namespaced_config_map("py-cm", ns, stale)
        report["stale_replace"] = "accepted"
    except ApiException as e:
        report["stale_replace"] = error_of(e)

    lease = coord.create_namespaced_lease(
        ns,
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="py-lease"),
            spec=client.V1LeaseSpec(holder_identity="py", lease_duration_seconds=10),
        ),
    )
    lease.metadata.resource_version = None
    try:
        coord.replace_namespaced_lease("py-lease", ns, lease)
    except ApiException as e:
        report["lease_unconditional"] = error_of(e)

    # Watch: replayed history first, then live events the loop itself causes.
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w1")))
    events = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=30):
        name = ev["object"].metadata.name
        events.append([ev["type"], name])
        if ev["type"] == "ADDED" and name == "w1":
            core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w2")))
        elif ev["type"] == "ADDED" and name == "w2":
            core.delete_namespaced_config_map("w1", ns)
        elif ev["type"] == "DELETED":
            w.stop()
    report["watch"] = events

    # A version older than the server's history: 410 Gone.
    try:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version="1", timeout_seconds=5):
            pass
        report["old_watch"] = "no error"
    except ApiException as e:
        report["old_watch"] = {"status": e.status, "reason": e.reason}

    print(json.dumps(report))


if __name__ == "__main__":
    main()
