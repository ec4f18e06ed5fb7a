"""The HTTP and DNS seams, faked for every test: no test reaches the internet or a real DNS server.

- `http_routes` (autouse in tests/conftest.py) replaces `assistant.tools.http._transport` with an
  `httpx.MockTransport`. Tests route `(method, host, path)` to a handler returning an
  `httpx.Response` (sync or async); any other request fails the test, even when the code under
  test swallowed the error.
- `resolver` (autouse) replaces the SSRF guard's resolver; tests map host names to addresses, and
  any other lookup fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "external-apis"


def load_fixture(name: str) -> Any:
    """A recorded provider response from tests/fixtures/external-apis/."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class HttpRoutes(dict):
    """`routes["GET", "host", "/path"] = handler`; records every request it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []
        self.unexpected: list[str] = []

    def json(
        self, method: str, url: str, payload: Any, *, status: int = 200
    ) -> Callable[[httpx.Request], httpx.Response]:
        """Route `url` (host and path) to a canned JSON response."""
        parsed = httpx.URL(url)

        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, json=payload)

        self[method, parsed.host, parsed.path] = handler
        return handler

    def sent(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.host, request.url.path)
        handler = self.get(key)
        if handler is None:
            self.unexpected.append(f"{request.method} {request.url}")
            raise AssertionError(f"unexpected HTTP request {request.method} {request.url}")
        response = handler(request)
        if not isinstance(response, httpx.Response):
            response = await response
        return response


class Resolver(dict):
    """`resolver["example.com"] = ["93.184.216.34"]`; other names fail the test."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups: list[str] = []
        self.unexpected: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self:
            self.unexpected.append(host)
            raise AssertionError(f"unexpected DNS lookup of {host}")
        answer = self[host]
        if isinstance(answer, BaseException):
            raise answer
        return list(answer)
