"""Talking to one MCP tool server with the official `mcp` SDK over Streamable HTTP: list its
tools, call one; every failure a `ToolError` with one plain sentence.

Each listing and each call is one short connection (`mcp.Client` over
`streamable_http_client`): tool calls are rare, and a connection per call survives a server
restart, needs no keep-alive task and cannot leak between event loops. Listings are cached by
`mcp_tools.py`, so a session start costs at most one listing per server per TTL, a turn none.

Outbound safety, as for every other tool request: the URL passes `ssrf.check_url` (loopback,
private and link-local addresses refused unless staff set `allow_private` for that server) and
every request of the connection is pinned to the addresses checked there (`_Pinned`: the
`Host` header and TLS SNI keep the name), so DNS rebinding cannot move it. The SDK follows a
redirect only within the server's own origin. A bearer secret goes in the `Authorization`
header, never in a URL or a log line; logs carry the server's name, never arguments or results.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import Implementation

from assistant.tools import ssrf
from assistant.tools.base import ToolError
from assistant.tools.http import USER_AGENT

logger = logging.getLogger(__name__)

MAX_TOOLS = 64  # per server; more are left out
MAX_PAGES = 10
MAX_RESULT_CHARS = 8000


@dataclass(frozen=True)
class Endpoint:
    name: str  # the server's name, for messages and logs
    url: str
    secret: str = field(default="", repr=False)  # bearer token; "" for none; never shown
    timeout: float = 8.0
    allow_private: bool = False


@dataclass(frozen=True)
class Listed:
    """One tool as the server lists it."""

    name: str
    description: str
    input_schema: dict | None


class _Pinned(httpx2.AsyncBaseTransport):
    """Sends each request to the checked address, keeping the name for Host and SNI."""

    def __init__(self, checked: ssrf.CheckedURL) -> None:
        self._checked = checked
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.host.rstrip(".").lower() != self._checked.hostname:
            raise httpx2.ConnectError("a request left the checked server")
        request.url = request.url.copy_with(host=self._checked.addresses[0])
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": self._checked.hostname}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def _connect(endpoint: Endpoint, statuses: list[int]) -> AsyncIterator[Client]:
    """A connected client; `statuses` collects the HTTP statuses of failed requests (the SDK
    reports a 401 only as "an error response")."""

    async def note(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            statuses.append(response.status_code)

    checked = await ssrf.check_url(endpoint.url, allow_private=endpoint.allow_private)
    headers = {"User-Agent": USER_AGENT}
    if endpoint.secret:
        headers["Authorization"] = f"Bearer {endpoint.secret}"
    timeout = httpx2.Timeout(endpoint.timeout, connect=min(endpoint.timeout, 4.0))
    http = httpx2.AsyncClient(
        transport=_Pinned(checked),
        headers=headers,
        timeout=timeout,
        follow_redirects=False,
        event_hooks={"response": [note]},
    )
    async with http:
        client = Client(
            streamable_http_client(endpoint.url, http_client=http, terminate_on_close=False),
            read_timeout_seconds=endpoint.timeout,
            client_info=Implementation(name="pastra", version="1.0"),
            cache=None,
        )
        async with client:
            yield client


async def list_tools(endpoint: Endpoint) -> list[Listed]:
    """Every tool the server lists (at most MAX_TOOLS), or ToolError."""
    found: list[Listed] = []
    statuses: list[int] = []
    try:
        async with _connect(endpoint, statuses) as client:
            cursor = None
            for _ in range(MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                for tool in page.tools:
                    found.append(Listed(tool.name, tool.description or "", tool.input_schema))
                cursor = page.next_cursor
                if not cursor or len(found) >= MAX_TOOLS:
                    break
    except Exception as exc:  # ExceptionGroups from the SDK's task groups included
        raise _failure(endpoint, exc, statuses) from None
    return found[:MAX_TOOLS]


async def call_tool(endpoint: Endpoint, tool: str, arguments: dict) -> dict:
    """The tool's answer as a dict for the model, or ToolError (the tool's own error text
    when it reports one)."""
    statuses: list[int] = []
    try:
        async with _connect(endpoint, statuses) as client:
            result = await client.call_tool(tool, arguments)
    except Exception as exc:
        raise _failure(endpoint, exc, statuses) from None
    texts = [item.text for item in result.content if getattr(item, "type", "") == "text"]
    if result.is_error:  # the tool's own words (the SDK's MCPServer prefixes them)
        detail = " ".join(" ".join(texts).split())
        detail = detail.removeprefix(f"Error executing tool {tool}: ")[:300]
        raise ToolError(detail or f"{tool} on {endpoint.name} failed without saying why")
    answer: dict[str, Any]
    if isinstance(result.structured_content, dict):
        answer = dict(result.structured_content)
    else:
        answer = _from_texts(texts)
    others = len(result.content) - len(texts)
    if others:
        answer["note"] = f"{others} non-text item(s) of the answer were left out"
    if len(json.dumps(answer, default=str)) > MAX_RESULT_CHARS:
        raise ToolError(f"{tool} on {endpoint.name} sent an answer that is too long")
    return answer


def _from_texts(texts: list[str]) -> dict:
    if len(texts) == 1:
        try:
            parsed = json.loads(texts[0])
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"result": "\n".join(texts)}


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _failure(endpoint: Endpoint, exc: BaseException, statuses: list[int]) -> ToolError:
    """One plain sentence for what went wrong (the first telling leaf of an ExceptionGroup)."""
    server = f"The {endpoint.name} tool server"
    if any(status in (401, 403) for status in statuses):
        return ToolError(f"{server} refused Pastra's credentials")
    for leaf in _leaves(exc):
        if isinstance(leaf, ssrf.UnsafeURLError):
            return ToolError(f"{server} has an address that is not allowed: {leaf}")
        if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
            return ToolError(f"{server} did not answer in time", retryable=True)
        if isinstance(leaf, httpx2.HTTPStatusError):
            status = leaf.response.status_code
            if status in (401, 403):
                return ToolError(f"{server} refused Pastra's credentials")
            return ToolError(f"{server} answered with HTTP {status}", retryable=status >= 500)
        if isinstance(leaf, httpx2.RemoteProtocolError | httpx2.ReadError):
            return ToolError(f"{server} stopped answering in mid-call", retryable=True)
        if isinstance(leaf, MCPError):
            message = " ".join(str(leaf.message).split())[:200]
            return ToolError(f"{server} refused the request: {message}")
        if isinstance(leaf, ToolError):
            return leaf
    if statuses:
        status = statuses[-1]
        return ToolError(f"{server} answered with HTTP {status}", retryable=status >= 500)
    first = _leaves(exc)[0]
    logger.warning("mcp server %s failed: %s", endpoint.name, type(first).__name__)
    return ToolError(f"{server} could not be reached", retryable=True)
