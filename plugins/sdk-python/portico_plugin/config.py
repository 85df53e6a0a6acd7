"""The plugin's configuration (capability `config`)."""

import json
from typing import Any

from wit_world.imports import config as host

from ._core import PluginError, _call


def get() -> Any:
    """The configuration as decoded JSON: the installation's, else the manifest's default."""
    text = _call(host.get)
    try:
        return json.loads(text)
    except ValueError as e:
        raise PluginError.invalid(f"the configuration is not JSON: {e}") from None
