"""Lines in the gateway's log, attributed to the plugin (capability `log`).

Lines from a plugin without the capability are dropped by the host; the volume is capped per
call by `max-log-bytes` (stdout and stderr count too)."""

from wit_world.imports import log as host
from componentize_py_types import Err


def _log(level: "host.Level", message: str) -> None:
    try:
        host.log(level, str(message))
    except Err:
        # As in the Rust SDK: a log line that cannot be written is not the plugin's failure.
        pass


def trace(message: str) -> None:
    _log(host.Level.TRACE, message)


def debug(message: str) -> None:
    _log(host.Level.DEBUG, message)


def info(message: str) -> None:
    _log(host.Level.INFO, message)


def warn(message: str) -> None:
    _log(host.Level.WARN, message)


def error(message: str) -> None:
    _log(host.Level.ERROR, message)
