"""Findings, errors and the exports: the parts every world shares."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Dict, List, Optional

from componentize_py_types import Err
from wit_world.imports import types as wit


class Severity(Enum):
    """How serious a failed check is (WIT `severity`)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    def _wit(self) -> wit.Severity:
        return wit.Severity[self.name]


class ErrorKind(Enum):
    """Why a host call or an export failed (WIT `error-kind`)."""

    DENIED = "denied"
    NOT_FOUND = "not-found"
    TIMEOUT = "timeout"
    TOO_LARGE = "too-large"
    INVALID = "invalid"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class PluginError(Exception):
    """A failed host call, or the error an export returns."""

    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind
        self.message = message

    @staticmethod
    def invalid(message: str) -> "PluginError":
        return PluginError(ErrorKind.INVALID, message)

    @staticmethod
    def internal(message: str) -> "PluginError":
        return PluginError(ErrorKind.INTERNAL, message)

    def _wit(self) -> wit.Error:
        return wit.Error(kind=wit.ErrorKind[self.kind.name], message=self.message)


def _call(function: Callable[..., Any], *args: Any) -> Any:
    """Calls a host function, turning its `Err(error)` into a `PluginError`."""
    try:
        return function(*args)
    except Err as e:
        error = e.value
        raise PluginError(ErrorKind[error.kind.name], error.message) from None


@dataclass
class Cluster:
    """The cluster a plugin is called for."""

    id: str
    name: str
    labels: Dict[str, str]

    @staticmethod
    def _from_wit(cluster: wit.Cluster) -> "Cluster":
        return Cluster(cluster.id, cluster.name, dict(cluster.labels))


@dataclass
class Finding:
    """One result of one check on one object (or on the whole cluster)."""

    check_id: str
    severity: Severity
    passed: bool
    message: str
    target_ref: Optional[wit.ObjectRef] = None
    extra_json: str = field(default="null")

    @staticmethod
    def fail(check_id: str, severity: Severity, message: str) -> "Finding":
        """A failed check."""
        return Finding(check_id, severity, False, message)

    @staticmethod
    def pass_(check_id: str, message: str) -> "Finding":
        """A passed check (severity `info`). (`pass` is a Python keyword.)"""
        return Finding(check_id, Severity.INFO, True, message)

    def on(self, obj: Dict[str, Any]) -> "Finding":
        """About `obj`, a Kubernetes object as `kube.get`/`kube.list` return it."""
        meta = obj.get("metadata") or {}
        return self.target(obj.get("kind", ""), meta.get("namespace"), meta.get("name", ""))

    def target(self, kind: str, namespace: Optional[str], name: str) -> "Finding":
        """About the object `kind` `namespace`/`name`."""
        self.target_ref = wit.ObjectRef(kind=kind, namespace=namespace, name=name)
        return self

    def extra(self, value: Any) -> "Finding":
        """With extra data (anything `json.dumps` takes)."""
        self.extra_json = json.dumps(value)
        return self

    def _wit(self) -> wit.Finding:
        return wit.Finding(
            check_id=self.check_id,
            severity=self.severity._wit(),
            passed=self.passed,
            message=self.message,
            target=self.target_ref,
            extra=self.extra_json,
        )


def _guard(run: Callable[[], Any]) -> Any:
    """Runs an export's body: a `PluginError` becomes the WIT error, any other exception an
    `internal` one carrying its traceback (a trap would only say "unreachable")."""
    try:
        return run()
    except PluginError as e:
        raise Err(e._wit()) from None
    except Err:
        raise
    except Exception as e:  # noqa: BLE001 - every failure must reach the gateway as an error
        message = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"
        raise Err(wit.Error(kind=wit.ErrorKind.INTERNAL, message=message)) from None


def export_inspector(inspect: Callable[[Cluster], List[Finding]]) -> type:
    """The `WitWorld` class of an `inspector`: `WitWorld = export_inspector(inspect)`."""

    class WitWorld:
        def inspect(self, target: wit.Cluster) -> List[wit.Finding]:
            return _guard(lambda: [f._wit() for f in inspect(Cluster._from_wit(target))])

    return WitWorld


def export_lifecycle_hook(
    on_connect: Callable[[Cluster], None], on_disconnect: Callable[[Cluster], None]
) -> type:
    """The `WitWorld` class of a `lifecycle-hook`."""

    class WitWorld:
        def on_connect(self, target: wit.Cluster) -> None:
            _guard(lambda: on_connect(Cluster._from_wit(target)))

        def on_disconnect(self, target: wit.Cluster) -> None:
            _guard(lambda: on_disconnect(Cluster._from_wit(target)))

    return WitWorld
