"""Read-only access to the target cluster (capability `kube`).

Objects are dicts decoded from the JSON the host returns (`apiVersion` and `kind` set). A
`Kind` names what to read; the common ones are constants here."""

from __future__ import annotations

import builtins
import json
from typing import Any, Dict, List, NamedTuple, Optional

from wit_world.imports import kube as host

from ._core import PluginError, _call


class Kind(NamedTuple):
    """An apiVersion and kind, such as `Kind("apps/v1", "Deployment")`."""

    api_version: str
    kind: str


POD = Kind("v1", "Pod")
SERVICE = Kind("v1", "Service")
CONFIG_MAP = Kind("v1", "ConfigMap")
SECRET = Kind("v1", "Secret")
NAMESPACE = Kind("v1", "Namespace")
NODE = Kind("v1", "Node")
PERSISTENT_VOLUME = Kind("v1", "PersistentVolume")
PERSISTENT_VOLUME_CLAIM = Kind("v1", "PersistentVolumeClaim")
SERVICE_ACCOUNT = Kind("v1", "ServiceAccount")
EVENT = Kind("v1", "Event")
DEPLOYMENT = Kind("apps/v1", "Deployment")
STATEFUL_SET = Kind("apps/v1", "StatefulSet")
DAEMON_SET = Kind("apps/v1", "DaemonSet")
REPLICA_SET = Kind("apps/v1", "ReplicaSet")
JOB = Kind("batch/v1", "Job")
CRON_JOB = Kind("batch/v1", "CronJob")
INGRESS = Kind("networking.k8s.io/v1", "Ingress")
NETWORK_POLICY = Kind("networking.k8s.io/v1", "NetworkPolicy")
HORIZONTAL_POD_AUTOSCALER = Kind("autoscaling/v2", "HorizontalPodAutoscaler")
STORAGE_CLASS = Kind("storage.k8s.io/v1", "StorageClass")
ROLE = Kind("rbac.authorization.k8s.io/v1", "Role")
ROLE_BINDING = Kind("rbac.authorization.k8s.io/v1", "RoleBinding")
CLUSTER_ROLE = Kind("rbac.authorization.k8s.io/v1", "ClusterRole")
CLUSTER_ROLE_BINDING = Kind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")


def _decode(kind: Kind, text: str) -> Dict[str, Any]:
    try:
        return json.loads(text)
    except ValueError as e:
        raise PluginError.invalid(f"decoding a {kind.kind}: {e}") from None


def list(
    kind: Kind,
    namespace: Optional[str] = None,
    labels: Optional[str] = None,
    fields: Optional[str] = None,
) -> builtins.list[Dict[str, Any]]:
    """The objects of `kind`: in `namespace` (all when None), matching the label selector
    `labels` (`app=web,tier!=db`) and the field selector `fields`."""
    options = host.ListOptions(namespace=namespace, label_selector=labels, field_selector=fields)
    return [_decode(kind, item) for item in _call(host.list, kind.api_version, kind.kind, options)]


def get(kind: Kind, namespace: Optional[str], name: str) -> Optional[Dict[str, Any]]:
    """One object, `None` when it does not exist (`namespace` None for cluster-scoped kinds)."""
    text = _call(host.get, kind.api_version, kind.kind, namespace, name)
    return None if text is None else _decode(kind, text)


def pod_logs(
    namespace: str, pod: str, container: Optional[str] = None, tail_lines: Optional[int] = None
) -> str:
    """The log of a pod's container (its only one when `container` is None), the last
    `tail_lines` lines when given."""
    return _call(host.pod_logs, namespace, pod, container, tail_lines)
