"""Three fixes for daphne 4.2, installed once when the consumers are imported (no-ops where
daphne is not installed). docs/asgi-server.md has the reasons and the measurements.

1. Close codes and reasons. Daphne drops the ASGI `websocket.close` reason, and autobahn's
   `sendClose` refuses any code but 1000 and 3000-4999 (the application then dies with
   1011). Gemini clients need Google's codes and reasons (1007, 1008, 1009, 1011 + text: the
   SDK turns them into `APIError(code, reason)`), and the web UI is better off with a reason.
   The shim sends the close frame itself, with the reason cut to 123 bytes.
2. Shutdown (graceful drain). On SIGTERM daphne cancels every application and waits for
   them, so consumers can record what they hold; but its `kill_all_applications` raises
   KeyError as soon as one connection's application has already finished, and then waits
   for nothing; it also keeps accepting connections while it waits, and waits without a
   limit. The shim: stops listening first (new connections are refused, so a load balancer
   sends them to another worker), cancels every live application (the consumers close
   their sockets with "server restarting", web 4001 / Gemini 1012, and flush their
   transcripts), and waits at most `DRAIN_SECONDS` (Cloud Run kills 10 s after SIGTERM).
3. Backpressure. Daphne's ASGI `send` never waits: a frame goes straight into Twisted's
   write buffer, which grows without bound when a client reads slowly, so the bridge's own
   downlink policy (assistant/live/buffers.py: drop the oldest model audio beyond 2 MiB,
   drop queued audio on barge-in, end a client stalled for 10 s) would never engage. The
   shim registers a push producer on each WebSocket's transport and makes `websocket.send`
   wait while Twisted has more than its 64 KiB buffered (as uvicorn does), for at most
   `SEND_WAIT_SECONDS` per frame and never while draining.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pastra_site.env import env_float

logger = logging.getLogger(__name__)

# Everything after SIGTERM (close frames, transcript flushes) must fit in this many seconds;
# the process exits right after (Cloud Run and `docker stop` kill 10 s after SIGTERM).
# (PASTRA_DRAIN_SECONDS, parsed strictly like every setting: a bad value names the variable.)
DRAIN_SECONDS = env_float("PASTRA_DRAIN_SECONDS", 7.0, minimum=0.0)
# Longer than the session's stall limit (assistant/live/session.py STALL_SECONDS = 10): a
# stalled client is ended by the session (4433) before a frame is ever forced out.
SEND_WAIT_SECONDS = 15.0

_draining = False


class Writable:
    """A streaming producer on one WebSocket's transport: Twisted pauses it when its write
    buffer exceeds 64 KiB and resumes it once the buffer has drained."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.event.set()

    def pauseProducing(self) -> None:
        self.event.clear()

    def resumeProducing(self) -> None:
        self.event.set()

    def stopProducing(self) -> None:  # connection lost: never block a sender
        self.event.set()


def attach_writable(protocol) -> Writable | None:
    """Register a `Writable` on `protocol.transport` (replacing the HTTP channel that did
    the upgrade). None if the transport does not take producers."""
    from twisted.internet.interfaces import IPushProducer
    from zope.interface import directlyProvides

    writable = Writable()
    directlyProvides(writable, IPushProducer)
    try:
        protocol.transport.unregisterProducer()
        protocol.transport.registerProducer(writable, True)
    except Exception:
        logger.warning("no backpressure for this WebSocket", exc_info=True)
        return None
    protocol._pastra_writable = writable
    return writable


async def wait_writable(protocol) -> None:
    writable = getattr(protocol, "_pastra_writable", None)
    if writable is None or writable.event.is_set() or _draining:
        return
    try:
        async with asyncio.timeout(SEND_WAIT_SECONDS):
            await writable.event.wait()
    except TimeoutError:
        logger.info("a WebSocket send waited %.0fs for the client to read", SEND_WAIT_SECONDS)


def install() -> bool:
    try:
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketProtocol
        from twisted.internet import defer
    except ImportError:  # another ASGI server: it honours code and reason itself
        return False
    if getattr(WebSocketProtocol, "_pastra_compat", False):
        return True
    original_reply = WebSocketProtocol.handle_reply

    def handle_reply(self, message):
        if message.get("type") == "websocket.close" and self.state == self.STATE_OPEN:
            code = message.get("code") or 1000
            if 1000 <= code <= 4999:
                reason = (message.get("reason") or "").encode()[:123]
                self.sendCloseFrame(code=code, reasonUtf8=reason.decode(errors="ignore").encode())
                return
        original_reply(self, message)

    original_on_open = WebSocketProtocol.onOpen

    def on_open(self):
        attach_writable(self)
        return original_on_open(self)

    original_server_reply = Server.handle_reply

    async def server_reply(self, protocol, message):
        if message["type"] == "websocket.send":
            await wait_writable(protocol)
        await original_server_reply(self, protocol, message)

    original_listen_success = Server.listen_success

    def listen_success(self, port):
        self.__dict__.setdefault("_pastra_ports", []).append(port)
        return original_listen_success(self, port)

    def kill_all_applications(self):
        global _draining
        _draining = True
        started = time.monotonic()
        for port in self.__dict__.get("_pastra_ports", ()):
            port.stopListening()  # new connections are refused from now on
        wait_for = []
        for protocol, details in self.connections.items():
            if (writable := getattr(protocol, "_pastra_writable", None)) is not None:
                writable.event.set()  # senders stop waiting for slow clients
            instance = details.get("application_instance")
            if instance is not None and not instance.done():
                instance.cancel()
                wait_for.append(instance)
        logger.info(
            "shutdown: stopped listening; draining %d application instances (at most %.0fs)",
            len(wait_for),
            DRAIN_SECONDS,
        )

        async def drain() -> None:
            if not wait_for:
                return
            done, pending = await asyncio.wait(wait_for, timeout=DRAIN_SECONDS)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    logger.warning(
                        "shutdown: an application failed while draining: %r", task.exception()
                    )
            logger.info(
                "shutdown: drained %d application instances in %.2fs%s",
                len(done),
                time.monotonic() - started,
                f", {len(pending)} still running (abandoned)" if pending else "",
            )

        waiting = defer.Deferred.fromFuture(asyncio.ensure_future(drain()))
        waiting.addErrback(lambda failure: None)
        return waiting

    WebSocketProtocol.handle_reply = handle_reply
    WebSocketProtocol.onOpen = on_open
    Server.handle_reply = server_reply
    Server.listen_success = listen_success
    Server.kill_all_applications = kill_all_applications
    WebSocketProtocol._pastra_compat = True
    return True
