"""One upstream Gemini Live connection: open (headers, setup, await setupComplete), send,
receive, close. The only module that imports the websockets client."""

from __future__ import annotations

import asyncio
import functools
import logging

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import State
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from assistant.live import builtin
from assistant.live.close_codes import GeminiCode
from assistant.live.gemini.wire import dumps, loads

logger = logging.getLogger(__name__)

PATH = "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
# Any non-empty key satisfies an emulator that does not require one.
EMULATOR_KEY = "pastra-emulator"
MAX_SIZE = 16 * 2**20
# Google's pongs can take 8-30 s: ping rarely, wait long (websockets' 20 s kills sessions).
PING_INTERVAL = 30.0
PING_TIMEOUT = 90.0
SETUP_TIMEOUT = 10.0
ABNORMAL = GeminiCode.ABNORMAL


class UpstreamClosed(Exception):
    """The upstream connection ended (or never opened) with this close code and reason."""

    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{code} {reason}")

    @property
    def rejected(self) -> bool:
        """1007/1008: Gemini refused what we sent; retrying the same request will not help."""
        return self.code in (GeminiCode.INVALID_ARGUMENT, GeminiCode.POLICY)


def _closed(exc: ConnectionClosed) -> UpstreamClosed:
    if exc.rcvd is not None:
        return UpstreamClosed(exc.rcvd.code, exc.rcvd.reason)
    return UpstreamClosed(ABNORMAL, "connection lost")


async def base_url() -> str:
    """The upstream settings decided on at start (pastra_site/settings.py): Google, an explicit
    URL, or (DEBUG only) the built-in emulator."""
    if settings.PASTRA_UPSTREAM_URL:
        return settings.PASTRA_UPSTREAM_URL
    if settings.PASTRA_BUILTIN_EMULATOR:
        return await builtin.url()
    raise ImproperlyConfigured("no upstream: set GEMINI_API_KEY or PASTRA_UPSTREAM_URL")


@functools.cache
def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY`, `NO_PROXY`…), as websockets
    would choose it, looked up once per URL and process: websockets' own lookup walks the
    environment on every connect, a few percent of a session's connect CPU."""
    return get_proxy(parse_uri(url))


class Upstream:
    """An open, set-up upstream connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    @classmethod
    async def open(cls, setup: dict, *, limit: float = SETUP_TIMEOUT) -> Upstream:
        """Connect, send `setup`, wait for setupComplete. Raises UpstreamClosed."""
        url = (await base_url()).rstrip("/") + PATH.format(
            version=settings.PASTRA_UPSTREAM_API_VERSION
        )
        key = settings.GEMINI_API_KEY or EMULATOR_KEY
        ws = None
        try:
            async with asyncio.timeout(limit):
                ws = await connect(
                    url,
                    additional_headers={"x-goog-api-key": key},
                    compression=None,
                    max_size=MAX_SIZE,
                    ping_interval=PING_INTERVAL,
                    ping_timeout=PING_TIMEOUT,
                    close_timeout=2,
                    open_timeout=limit,
                    user_agent_header="pastra",
                    proxy=proxy_for(url),
                )
                await ws.send(dumps(setup), text=True)
                first = await ws.recv(decode=False)
        except ConnectionClosed as exc:
            raise _closed(exc) from None
        except TimeoutError:
            if ws is not None:
                await ws.close()
            raise UpstreamClosed(ABNORMAL, "setup timed out") from None
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            raise UpstreamClosed(ABNORMAL, type(exc).__name__) from None
        except BaseException:
            # Anything else (a setup that cannot be serialised, a cancellation): the socket
            # is ours to close, or it stays open upstream until Google's idle timeout.
            if ws is not None:
                await asyncio.shield(ws.close())
            raise
        try:
            ok = "setupComplete" in loads(first)
        except ValueError:
            ok = False
        if not ok:
            await ws.close(1002, "expected setupComplete")
            raise UpstreamClosed(ABNORMAL, "unexpected first message")
        return cls(ws)

    async def send(self, payload: bytes) -> None:
        """Raises UpstreamClosed."""
        try:
            await self._ws.send(payload, text=True)
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    def send_now(self, payload: bytes) -> bool:
        """Send a text message at once where websockets' `send` would not wait either (the
        connection open, its transport not paused, no fragmented send in progress); else,
        or if the transport fails, False: `send` it. `send` less its async context manager,
        a few µs a message (docs/performance.md); tests/live/test_upstream_send.py pins the
        websockets attributes it reads."""
        ws = self._ws
        if (
            ws.protocol.state is not State.OPEN
            or ws.paused
            or ws.send_in_progress is not None
            or ws.transport.is_closing()
        ):
            return False
        ws.protocol.send_text(payload)
        try:
            ws.send_data()
        except Exception as exc:  # as `send` would: the connection is lost, the item is not
            ws.set_connection_exc(exc)
            ws.transport.abort()
            return False
        return True

    async def recv(self) -> bytes:
        """The next message (raw JSON). Raises UpstreamClosed."""
        try:
            return await self._ws.recv(decode=False)
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        try:
            await self._ws.close(code, reason)
        except Exception:  # already gone: nothing to release
            logger.debug("upstream close failed", exc_info=True)
