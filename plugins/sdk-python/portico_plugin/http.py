"""Outbound HTTP to allow-listed hosts (capability `http`)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from wit_world.imports import http as host

from ._core import PluginError, _call


@dataclass
class Response:
    status: int
    headers: List[Tuple[str, str]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        """The first header `name` (any case)."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise PluginError.invalid(f"the response body is not UTF-8: {e}") from None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise PluginError.invalid(f"the response body is not JSON: {e}") from None


@dataclass
class Request:
    """A request to build up, then `send()`."""

    method: "host.Method"
    url: str
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: Optional[bytes] = None

    def header(self, name: str, value: str) -> "Request":
        self.headers.append((name, value))
        return self

    def bearer(self, token: str) -> "Request":
        return self.header("authorization", f"Bearer {token}")

    def basic(self, username: str, password: str) -> "Request":
        encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
        return self.header("authorization", f"Basic {encoded}")

    def send(self) -> Response:
        response = _call(
            host.send, host.Request(self.method, self.url, list(self.headers), self.body)
        )
        return Response(response.status, list(response.headers), bytes(response.body))


def get(url: str, headers: Optional[Dict[str, str]] = None) -> Request:
    """A GET of `url`."""
    return Request(host.Method.GET, url, list((headers or {}).items()))


def post(url: str, body: bytes | str, headers: Optional[Dict[str, str]] = None) -> Request:
    """A POST of `body` to `url`."""
    data = body.encode() if isinstance(body, str) else bytes(body)
    return Request(host.Method.POST, url, list((headers or {}).items()), data)
