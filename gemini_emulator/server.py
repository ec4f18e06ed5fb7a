"""The server: binding, routing (Live paths, GET /stats, POST /v1alpha/auth_tokens), TLS;
plus a thread runner for sync tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import threading
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from . import rest
from .config import EmulatorConfig
from .context import EmulatorContext
from .session import Session
from .stats import Counters

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 2**20
BACKLOG = 2048  # a burst of sessions connects at once (asyncio's default is 100)
LIVE_PATH = re.compile(
    r"^/+ws/google\.ai\.generativelanguage\.(v1beta|v1alpha|v1)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)$"
)


class EmulatorServer:
    """A Gemini Live emulator on one port; owns its live sessions and their shared context.

    `async with EmulatorServer(config).running() as emu:` binds (port 0 = any free port),
    and stops and closes every connection on exit.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.context = EmulatorContext(self.config)
        self.sessions: set[Session] = set()
        self._server: Server | None = None
        self.port = self.config.port

    # --- public API ---------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "wss" if self.config.tls else "ws"

    @property
    def url(self) -> str:
        """Base URL, e.g. ws://127.0.0.1:9100 (the bridge appends the /ws/... path)."""
        return f"{self.scheme}://{_host_for_url(self.config.host)}:{self.port}"

    @property
    def http_url(self) -> str:
        """The same as http(s)://, which is what google-genai's `base_url` wants."""
        return self.url.replace("ws", "http", 1)

    @property
    def api_key(self) -> str:
        """A key this emulator accepts."""
        return self.config.api_key or "emulator-key"

    def live_path(self, version: str = "v1beta") -> str:
        return f"/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"

    def stats(self) -> dict[str, Any]:
        """What GET /stats returns: totals (closed + live) and one entry per live connection."""
        total = Counters()
        total.add(self.context.closed)
        connections = []
        for session in sorted(self.sessions, key=lambda item: int(item.id.rsplit("-", 1)[1])):
            total.add(session.counters)
            connections.append(session.stats())
        return {"total": total.as_dict(), "connections": connections}

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            create_connection=rest.BodyConnection,
            compression=None,
            max_size=MAX_MESSAGE_BYTES,
            ssl=self._ssl_context(),
            server_header="gemini-emulator",
            backlog=BACKLOG,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info(
            "Gemini Live emulator on %s (mode %s, voice %s)",
            self.url,
            self.config.mode,
            self.context.speech.engine,
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close(close_connections=True)
            await server.wait_closed()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EmulatorServer]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    # --- internals ----------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.tls:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        if rest.AUTH_TOKENS_PATH.match(path):
            return rest.auth_tokens(connection, request, self.context.tokens, self.config.api_key)
        if request.method != "GET":
            return rest.not_found()
        if path.lstrip("/") == "stats":
            return rest.json_response(200, self.stats())
        if LIVE_PATH.match(path):
            return None
        return rest.not_found()

    async def _handle(self, ws: ServerConnection) -> None:
        match = LIVE_PATH.match(ws.request.path.partition("?")[0]) if ws.request else None
        version = match.group(1) if match else "v1beta"
        constrained = bool(match) and match.group(2) == "BidiGenerateContentConstrained"
        session = Session(self.context, ws, version, constrained=constrained)
        self.sessions.add(session)
        try:
            await session.run()  # gives back its handle, admission and counters on the way out
        finally:
            self.sessions.discard(session)
            logger.info("emulator connection %s closed", session.id)


def _host_for_url(host: str) -> str:
    if host in ("", "0.0.0.0"):  # noqa: S104 - only formats a URL
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class EmulatorThread:
    """Runs an EmulatorServer in its own thread and event loop, for sync and browser tests.

    `with EmulatorThread(config) as emu: ... emu.url ...` or `start()` / `stop()`.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.server = EmulatorServer(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def http_url(self) -> str:
        return self.server.http_url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def api_key(self) -> str:
        return self.server.api_key

    def start(self) -> EmulatorThread:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._main(ready, failure))
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="gemini-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    async def _main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        self._stopped = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as error:
            failure.append(error)
            ready.set()
            return
        ready.set()
        try:
            await self._stopped.wait()
        finally:
            await self.server.stop()

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if self._stopped is not None:
            loop.call_soon_threadsafe(self._stopped.set)
        thread.join(timeout=15)
        self._thread = None

    def stats(self) -> dict[str, Any]:
        if self._loop is None or self._thread is None:
            return self.server.stats()

        async def read() -> dict[str, Any]:
            return self.server.stats()

        return asyncio.run_coroutine_threadsafe(read(), self._loop).result(timeout=5)

    def audio_bytes_received(self) -> int:
        return self.stats()["total"]["audio_bytes"]

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
