"""Serve Pastra with uvicorn, configured as production needs: `python -m pastra_site.serve
[--host H] [--port P]` is the image's and compose's server (docs/asgi-server.md has why, the
settings and the figures). `make run` and runserver stay daphne.

What it changes in uvicorn 0.54's `websockets-sansio` protocol and server, so that Pastra
behaves as it does under daphne with assistant/live/compat.py (tests/deploy run the drain,
backpressure, close and oversize tests against both; tests/deploy/test_uvicorn.py pins what
is relied on here):
1. Drain (SIGTERM): uvicorn closes every WebSocket at once with a bare 1012, before the
   application can end its sessions. `PastraServer.shutdown` stops listening, runs Pastra's
   drain (assistant/live/shutdown.py, as daphne's shim does: each session ends with "server
   restarting" and flushes its transcript), and only then lets uvicorn close what is left;
   a drained worker exits 0 (uvicorn re-raises the signal: exit -15).
2. Backpressure: uvicorn's send waits, without a limit, while the transport holds more than
   64 KiB. Here a frame waits at most compat.SEND_WAIT_SECONDS and never while draining; a
   Close never waits.
3. Close: the reason is cut to 123 bytes (websockets refuses a longer one), sends and closes
   after the socket left OPEN are dropped (uvicorn raises), a reserved code becomes 1011, and
   a client has compat.CLOSE_HANDSHAKE_SECONDS to answer our Close.
4. Oversize (over 1 MiB): websockets closes 1009 with its own reason, then uvicorn closes the
   TCP connection with the rest of the message unread (RST: the client may lose the Close and
   see 1006). Here the reason is Pastra's (compat.too_big_reason), and the rest of the message
   and what follows are read and dropped (never buffered) until the client's Close, which
   ends the connection; or compat.CLOSE_HANDSHAKE_SECONDS.
And one addition: each socket's scope carries a synchronous send (`compat.SEND_NOW`, a frame
written at once where `send` would not wait, else refused) that the session's downlink uses
while its writer task waits idle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import struct
import sys

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.frames import Close, CloseCode, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from assistant.live import compat, shutdown

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1048576  # as daphne's --websocket-max-message-size (docs/asgi-server.md)
MAX_REASON_BYTES = 123
SENDS = ("websocket.send", "websocket.close")


class _Connection(ServerProtocol):
    """websockets' sans-I/O server; a message over max_size is refused with 1009 and Pastra's
    reason, then the rest of it and every frame after it are read and dropped (never
    buffered) until the client's Close (`client_closed`), not discarded up to EOF."""

    client_closed = False

    def fail(self, code: CloseCode | int, reason: str = "") -> None:
        if code != CloseCode.MESSAGE_TOO_BIG or self.max_message_size is None:
            super().fail(code, reason)
            return
        if self.state is State.OPEN:  # else our Close is out already
            self.send_close(code, compat.too_big_reason(self.max_message_size))
        self.parser = self._hold()  # until the protocol starts `discard_until_close`

    def _hold(self):
        while True:
            yield

    def discard_until_close(self, skip: int):
        """The parser after a refused message (`skip`: the rest of its frame)."""
        reader = self.reader
        while True:
            while skip:
                if not reader.buffer:
                    yield
                    continue
                taken = min(skip, len(reader.buffer))
                del reader.buffer[:taken]
                skip -= taken
            head = yield from reader.read_exact(2)
            length = head[1] & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", (yield from reader.read_exact(2)))
            elif length == 127:
                (length,) = struct.unpack("!Q", (yield from reader.read_exact(8)))
            if head[0] & 0x0F == Opcode.CLOSE:
                self.client_closed = True
                while True:
                    yield
            skip = (4 if head[1] & 0x80 else 0) + length


class PastraWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol with fixes 2-4 above, and the application's
    task kept (`application`) for the drain."""

    application: asyncio.Task | None = None
    _refused = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        plain = self.conn
        self.conn = _Connection(
            extensions=plain.available_extensions,
            max_size=plain.max_message_size,
            logger=logging.getLogger("uvicorn.error"),
        )
        self.close_timeout = compat.CLOSE_HANDSHAKE_SECONDS
        self.send_wait = compat.SEND_WAIT_SECONDS
        inner = self.app

        async def app(scope, receive, send) -> None:
            self.application = asyncio.current_task()
            try:
                await inner(scope, receive, send)
            except asyncio.CancelledError:
                if not shutdown.draining:
                    raise
                # Cancelled by the drain: a live consumer has ended its session its own way
                # (compat.BridgeConsumer); any other socket still open gets uvicorn's 1012.
                asyncio.current_task().uncancel()
                if self.conn.state is State.OPEN and not self.close_sent:
                    await self.send({"type": "websocket.close", "code": 1012})

        self.app = app

    def handle_connect(self, event) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:  # the application's task has not run yet
            self.scope["extensions"][compat.SEND_NOW] = self.send_now

    def send_now(self, payload: bytes | str) -> bool:
        """A frame written at once where `send` would not wait (the socket open, the transport
        writable), else False: `send` it. No coroutine, no task switch: the session's
        Downlink sends through it while its writer task waits idle."""
        if not self.writable.is_set() or not self._open():
            return False
        self._write(payload)
        return True

    def _open(self) -> bool:
        return not (self.close_sent or self.disconnected) and self.conn.state is State.OPEN

    def _write(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            self.conn.send_text(payload.encode())
        else:
            self.conn.send_binary(payload)
        self.transport.write(b"".join(self.conn.data_to_send()))

    # --- 2 and 3: sends and closes once the socket is open ------------------------------------

    async def send(self, message) -> None:
        kind = message["type"]
        if kind not in SENDS or self.conn.state is State.CONNECTING:
            await super().send(message)  # the handshake: accept, or refuse (HTTP 403)
            return
        if kind == "websocket.send" and not self.writable.is_set():
            await self._until_writable()
        if not self._open():
            logger.debug("%s after the WebSocket left OPEN: dropped", kind)
            return
        if kind == "websocket.send":
            if (data := message.get("bytes")) is None:
                data = message.get("text")
            if data is not None:
                self._write(data)
            return
        code = message.get("code") or 1000
        reason = (message.get("reason") or "").encode()[:MAX_REASON_BYTES]
        reason = reason.decode(errors="ignore")
        try:
            Close(code, reason).check()
        except ProtocolError:
            logger.warning("close code %s cannot be sent: 1011 instead", code)
            code, reason = CloseCode.INTERNAL_ERROR, ""
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self._read_on()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    async def _until_writable(self) -> None:
        if shutdown.draining:
            return
        try:
            async with asyncio.timeout(self.send_wait):
                await self.writable.wait()
        except TimeoutError:
            logger.info("a WebSocket send waited %.0fs for the client to read", self.send_wait)

    def _read_on(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    # --- 4: a message over the limit -----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        if self._refused:
            if self.conn.client_closed:  # the reply to our Close: the handshake is complete
                self._end()
            return
        self.handle_events()  # frames before a refused one still reach the application
        if self.conn.parser_exc is not None:
            self.handle_parser_exception()

    def handle_parser_exception(self) -> None:
        exc = self.conn.parser_exc
        if not isinstance(exc, PayloadTooBig) or exc.size is None:
            super().handle_parser_exception()  # a protocol error: uvicorn's way
            return
        self._refused = True
        logger.info("a WebSocket message over %s bytes was refused (1009)", exc.max_size)
        close = self.conn.close_sent
        if not self.close_sent and close is not None:
            self.queue.put_nowait(
                {"type": "websocket.disconnect", "code": close.code, "reason": close.reason}
            )
        self.transport.write(b"".join(self.conn.data_to_send()))  # our Close, if not out yet
        self.close_sent = True
        self._read_on()
        self.conn.parser = self.conn.discard_until_close(4 + exc.size)  # its mask and payload
        next(self.conn.parser)
        if self.conn.client_closed:
            self._end()
        elif self.close_timer is None:
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    def _end(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        self.transport.close()


class PastraServer(uvicorn.Server):
    """uvicorn's server with Pastra's drain first on SIGTERM (fix 1 above)."""

    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:
            server.close()  # new connections are refused from now on
        live = [c for c in self.server_state.connections if isinstance(c, PastraWebSocket)]
        for connection in live:
            connection.writable.set()  # senders stop waiting for slow clients
        await shutdown.begin(c.application for c in live if c.application is not None)
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self):
        """uvicorn's, without raising the signal again at the end: a drained worker exits 0."""
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def config(host: str, port: int, app: str = "pastra_site.asgi:application") -> uvicorn.Config:
    """The production configuration (docs/asgi-server.md, "Settings, and why")."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ws=PastraWebSocket,
        ws_max_size=MAX_MESSAGE_BYTES,
        ws_per_message_deflate=False,
        ws_ping_interval=20.0,
        ws_ping_timeout=30.0,
        proxy_headers=False,  # Pastra reads X-Forwarded-For itself (PASTRA_TRUSTED_PROXIES)
        lifespan="off",
        access_log=False,
        server_header=False,
        log_config=None,  # Django's LOGGING (pastra_site/settings.py) formats every line
        timeout_graceful_shutdown=1,  # after Pastra's drain: what is left is closed
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pastra_site.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--app", default="pastra_site.asgi:application", help="for the bench")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pastra_site.settings")
    server = PastraServer(config(args.host, args.port, args.app))
    server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE


if __name__ == "__main__":
    main()
