"""The one place an httpx client is built, and the JSON GET every tool uses.

- `client()` builds a fresh `httpx.AsyncClient` per call: timeouts from
  `PASTRA_HTTP_TIMEOUT_SECONDS`, a fixed User-Agent, redirects never followed. A client per
  call avoids a global client bound to one event loop (Daphne workers, pytest-asyncio loops);
  tool calls are rare, so the lost connection reuse does not matter.
- `_transport` is the test seam: tests replace it with `httpx.MockTransport` (see
  tests/tools/conftest.py, which denies every request a test did not route).
- `get_json()` turns every transport/HTTP/JSON failure into a `ToolError` the model can
  explain, caps the body size, and never follows a redirect.

Trust: URLs from settings (`PASTRA_WEATHER_*`, `PASTRA_SEARCH_URL`) are operator-configured
and trusted, so a compose-internal SearXNG or a local test server works; the model only
contributes query parameters to them. A URL that comes from the model, the user or a
provider's response must be fetched with `untrusted=True`: it then passes the SSRF guard
(`assistant.tools.ssrf`) and the connection is pinned to the address the guard checked.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from django.conf import settings

from assistant.tools import ssrf
from assistant.tools.base import ToolError

logger = logging.getLogger(__name__)

USER_AGENT = "Pastra/1.0 (+self-hosted assistant)"
MAX_BODY_BYTES = 2 * 1024 * 1024

_transport: httpx.AsyncBaseTransport | None = None  # tests: httpx.MockTransport(handler)


def client() -> httpx.AsyncClient:
    seconds = float(settings.PASTRA_HTTP_TIMEOUT_SECONDS)
    return httpx.AsyncClient(
        transport=_transport,
        timeout=httpx.Timeout(seconds, connect=min(seconds, 4.0)),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
    )


class ProviderError(ToolError):
    """The provider answered with a non-2xx status; `payload` is its JSON body, if any."""

    def __init__(self, message: str, *, status: int, payload: Any = None):
        # 429 and 5xx: the provider may answer the same request a little later.
        super().__init__(message, retryable=status == 429 or status >= 500)
        self.status = status
        self.payload = payload


async def get_json(
    url: str | httpx.URL,
    *,
    params: dict | None = None,
    headers: dict | None = None,
    service: str = "the service",
    untrusted: bool = False,
) -> Any:
    """GET `url` with `params` merged into its query and return the parsed JSON body.

    Raises `ProviderError` for a non-2xx answer (with the JSON error body when there is one)
    and `ToolError` for timeouts, network failures, redirects, oversized or non-JSON bodies.
    """
    target = httpx.URL(str(url))
    if params:
        # httpx 0.28 replaces the URL's query with `params`; merge so a configured URL may
        # carry its own parameters (e.g. ?language=de).
        target = target.copy_merge_params({k: v for k, v in params.items() if v is not None})
    request_headers = dict(headers or {})
    extensions: dict = {}
    if untrusted:
        checked = await ssrf.check_url(str(target))
        request_headers["Host"] = checked.host_header
        if checked.url.scheme == "https":
            extensions["sni_hostname"] = checked.hostname
        target = checked.pinned_url
    try:
        async with (
            client() as http,
            http.stream("GET", target, headers=request_headers, extensions=extensions) as resp,
        ):
            body = await _read_capped(resp, service)
    except httpx.TimeoutException:
        raise ToolError(f"{service} did not answer in time", retryable=True) from None
    except httpx.HTTPError as exc:
        logger.warning("http request to %s failed: %s", target.host, type(exc).__name__)
        raise ToolError(f"{service} could not be reached", retryable=True) from None

    if resp.is_redirect:
        raise ToolError(f"{service} answered with a redirect, which is not followed")
    payload = _parse(body)
    if not resp.is_success:
        raise ProviderError(
            f"{service} answered with HTTP {resp.status_code}",
            status=resp.status_code,
            payload=payload,
        )
    if payload is None:
        raise ToolError(f"{service} sent an answer that is not JSON")
    return payload


async def _read_capped(resp: httpx.Response, service: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ToolError(f"{service} sent too much data")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
