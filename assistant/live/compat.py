"""Every reliance on Channels' or daphne's internals, in one module; tests/live/test_compat.py
pins each relied-on behaviour and fails with a clear message when an upgrade changes it.

Channels (used by subclassing `BridgeConsumer`, explicitly, in assistant/consumers.py):
1. `AsyncConsumer.dispatch` awaits `aclose_old_connections()` (a hop to the one database
   thread) before every handler since Channels 4.2, `websocket_disconnect` once more. Here
   neither does (each database call closes them on its own thread: `DatabaseSyncToAsync`,
   under live_db too), and `websocket.receive` goes to the sync `receive_now(message)`: no
   hop per frame, connect or close.
2. `AsyncConsumer.__call__` gives each consumer its own layer channel and waits on it and on
   the client with `await_many_dispatch`: a new task and an `asyncio.wait` per client
   message, and a layer error ends the connection. `_serve` handles the client's messages in
   the application's own task; control events come from the process's one listener
   (assistant/live/control_hub.py, which waits a layer outage out), handled one at a time
   with the client's. A live session must not depend on Redis.
3. daphne cancels every application on shutdown: `__call__` turns the CancelledError into
   `on_server_shutdown()`, awaited shielded, so the session records what it holds.

daphne 4.2 (patched by `install()`, called once from pastra_site/asgi.py; a no-op under
another ASGI server; docs/asgi-server.md has the reasons and the measurements):
4. Close codes and reasons: daphne drops the ASGI close `reason`, and autobahn's `sendClose`
   refuses codes other than 1000 and 3000-4999 (the application then dies with 1011). The
   shim sends the close frame itself, with the reason cut to 123 bytes.
5. Shutdown (drain): `kill_all_applications` raises KeyError once one connection's
   application has finished and then waits for nothing; it keeps accepting connections and
   waits without a limit. The shim stops listening first, then runs Pastra's drain
   (assistant/live/shutdown.py, shared with uvicorn's launcher, pastra_site/serve.py).
6. Oversize messages: autobahn drops the TCP connection (no close frame, the client sees
   1006) when a message exceeds `--websocket-max-message-size`. The shim closes with 1009
   and a reason instead, still without buffering what is over the limit.
7. Close races: once the connection has left OPEN (our Close is out, or the client's),
   autobahn raises on a send ("Attempt to send on a closed protocol") and on a reserved
   close code, and aborts the TCP connection (RST: the client may never read our Close and
   sees 1006) when a message over the limit then arrives, or when the client has not
   answered our Close within `closeHandshakeTimeout` (1 s, on a timer rounded down to the
   second: often a few milliseconds). The shim drops such sends and closes, discards the
   rest of such a message, and gives the client CLOSE_HANDSHAKE_SECONDS to answer.
8. Backpressure: daphne's `websocket.send` never waits, so Twisted buffers without bound for
   a slow reader. The shim registers a push producer on each WebSocket's transport and makes
   `websocket.send` wait while Twisted holds more than 64 KiB, for at most
   SEND_WAIT_SECONDS per frame and never while draining.

Channels, again:
9. `SessionMiddleware` wraps `send` to save a modified session with an HTTP response: on a
   socket it reads the session on every message sent, and saves nothing. `CookieSession`
   sets `cookies` and the lazy `session` alike, `send` left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib import import_module

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.cookie import parse_cookie

from assistant import origins
from assistant.live import control_hub, shutdown

logger = logging.getLogger(__name__)

# Longer than the session's stall limit (assistant/live/housekeeper.py STALL_SECONDS = 10): a
# stalled client is ended by the session (4433) before a frame is ever forced out.
SEND_WAIT_SECONDS = 15.0

# How long a client has to answer our Close before the TCP connection is dropped. autobahn's
# 1 s runs on a timer rounded down to the whole second (txaio's): it fired 0 to 1 s after the
# Close, often before a busy client had read it, and aborted (RST): the client saw 1006.
CLOSE_HANDSHAKE_SECONDS = 5.0

# A server's synchronous send, in the scope's extensions (pastra_site/serve.py's): a frame
# sent at once (True) where the ASGI send would not wait; BridgeConsumer.send_now.
SEND_NOW = "pastra.send_now"

# --- Channels -------------------------------------------------------------------------------


class BridgeConsumer(AsyncWebsocketConsumer):
    """A WebSocket consumer for live sessions. Subclasses implement `receive_now(message)`
    (sync; returns None or an awaitable for its slow path) and `on_server_shutdown()`, and
    join their control groups with `join_groups` (in memory: assistant/live/control_hub.py)."""

    _groups: tuple[str, ...] = ()
    _failure: BaseException | None = None

    async def __call__(self, scope, receive, send):
        try:
            await self._serve(scope, receive, send)
        except asyncio.CancelledError:  # daphne cancels every application on shutdown
            hook = asyncio.create_task(self.on_server_shutdown(), name="shutdown flush")
            with contextlib.suppress(Exception):
                await asyncio.shield(hook)
            raise

    async def _serve(self, scope, receive, send) -> None:
        """`AsyncConsumer.__call__` without a channel of its own (the hub delivers control
        events: `control`) and without a task per message: the client's messages are handled
        in this task, one at a time with control events (`_turn`)."""
        self.scope, self.base_send = scope, send
        self.send_now = (scope.get("extensions") or {}).get(SEND_NOW)
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self._turn, self._serving = asyncio.Lock(), asyncio.current_task()
        try:
            with contextlib.suppress(StopConsumer):
                while True:
                    message = await receive()
                    async with self._turn:  # receive_now paces a burst (Uplink.pace)
                        await self.dispatch(message)
        except asyncio.CancelledError:
            if self._failure is None:
                raise
            self._serving.uncancel()  # a control handler failed (`_control`): its error ends it
            raise self._failure from None
        finally:
            self.leave_groups()  # the hub keeps no socket that is gone

    def control(self, event: dict) -> None:
        """A control event for this socket (control_hub.Hub.deliver): handled in turn."""
        task = asyncio.get_running_loop().create_task(self._control(event), name="control event")
        _CONTROLS.add(task)
        task.add_done_callback(_CONTROLS.discard)

    async def _control(self, event: dict) -> None:
        if self._serving.done():
            return  # the socket is gone already
        try:
            async with self._turn:
                await self.dispatch(event)
        except Exception as error:  # a handler's error ends the connection, as under Channels
            if self._failure is None:
                self._failure = error
                self._serving.cancel()

    async def dispatch(self, message):
        if message["type"] != "websocket.receive":
            await getattr(self, get_handler_name(message))(message)  # no hop (fix 1)
        elif (pending := self.receive_now(message)) is not None:
            await pending

    async def websocket_disconnect(self, message):  # Channels' own, less its hop (fix 1)
        await self.disconnect(message["code"])  # the hub's groups: `_serve`'s leave_groups
        raise StopConsumer()

    def receive_now(self, message):
        raise NotImplementedError

    async def on_server_shutdown(self) -> None:
        raise NotImplementedError

    async def join_groups(self, groups: tuple[str, ...]) -> None:
        """Join control groups: in this process's memory (no layer round trip but the
        process's first, control_hub.Hub.join)."""
        self.leave_groups()
        self._groups = groups
        await control_hub.hub().join(self, groups)

    def leave_groups(self) -> None:
        groups, self._groups = self._groups, ()
        control_hub.hub().leave(self, groups)


_CONTROLS: set[asyncio.Task] = set()  # control events being handled (a strong reference)


# --- daphne -----------------------------------------------------------------------------------


class OriginGuard:
    """A cookie-authenticated WebSocket route: its handshake is refused (HTTP 403, Channels'
    WebsocketDenier) unless `origins.origin_allowed(scope)` (assistant/origins.py)."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if origins.origin_allowed(scope):
            return await self.application(scope, receive, send)
        logger.info(
            "websocket refused: path=%s origin=%r", scope.get("path"), origins.refused_origin(scope)
        )
        return await WebsocketDenier()(scope, receive, send)


class CookieSession:
    """The scope's `cookies` and its (lazily loaded) `session`, as Channels' CookieMiddleware
    and SessionMiddleware set them for AuthMiddleware, `send` not wrapped (9 above)."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        raw = next((value for name, value in scope.get("headers", ()) if name == b"cookie"), b"")
        cookies = parse_cookie(raw.decode("latin1"))  # {} for no cookie
        session = import_module(settings.SESSION_ENGINE).SessionStore(
            cookies.get(settings.SESSION_COOKIE_NAME)
        )
        return await self.application(dict(scope, cookies=cookies, session=session), receive, send)


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
    if writable is None or writable.event.is_set() or shutdown.draining:
        return
    try:
        async with asyncio.timeout(SEND_WAIT_SECONDS):
            await writable.event.wait()
    except TimeoutError:
        logger.info("a WebSocket send waited %.0fs for the client to read", SEND_WAIT_SECONDS)


def client_gone_errors() -> tuple[type[BaseException], ...]:
    """What a send to a client that has gone may raise (a backstop: daphne's shim drops them)."""
    try:
        from autobahn.exception import Disconnected
    except ImportError:
        return (ConnectionError,)
    return (ConnectionError, Disconnected)


def too_big_reason(limit: int) -> str:
    """The close reason of a message over the server's hard limit (both paths; the bridge's
    own per-kind limits, below it, say more)."""
    return f"Request payload size exceeds the limit: {limit} bytes."


_SENDS = ("websocket.close", "websocket.send")


def install() -> bool:
    """Patch daphne (idempotent). False when daphne is not installed."""
    try:
        from daphne.server import Server
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # another ASGI server: it honours code and reason itself
        return False
    if getattr(WebSocketProtocol, "_pastra_compat", False):
        return True
    original_reply = WebSocketProtocol.handle_reply

    def handle_reply(self, message):
        kind = message.get("type")
        if kind in _SENDS and self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            # The connection left OPEN (our Close is out, the oversize shim closed it, or
            # the client went) while the application had more to say: autobahn refuses it
            # (a send raises Disconnected, a reserved close code raises). Drop it.
            logger.debug("%s after the WebSocket left OPEN: dropped", kind)
            return
        if kind == "websocket.close" and self.state == self.STATE_OPEN:
            code = message.get("code") or 1000
            if 1000 <= code <= 4999:
                reason = (message.get("reason") or "").encode()[:123]
                self.sendCloseFrame(code=code, reasonUtf8=reason.decode(errors="ignore").encode())
                return
        original_reply(self, message)

    def max_size_exceeded(self, size, limit, reason):
        # autobahn drops the TCP connection here (failByDrop: the client sees 1006). Close
        # with 1009 and a reason instead; `failedByMe` makes autobahn discard the rest of the
        # message as it arrives, so nothing over the limit is ever buffered.
        if self.state == self.STATE_CLOSING:
            # Our Close is already out (the application closed, then more frames came):
            # autobahn would now abort the TCP connection (RST) with the client's frames
            # unread, and the client could lose our Close (1006). Discard the rest instead;
            # the client's Close reply (or the close handshake timeout) ends the connection.
            self.failedByMe = True
            return
        if self.state != self.STATE_OPEN:
            return original_max_size(self, size, limit, reason)
        self.failedByMe = True
        logger.info("a WebSocket message over %d bytes was refused (1009)", limit)
        self.sendCloseFrame(code=1009, reasonUtf8=too_big_reason(limit).encode(), isReply=False)

    original_max_size = WebSocketProtocol._max_message_size_exceeded
    original_on_open = WebSocketProtocol.onOpen

    def on_open(self):
        attach_writable(self)
        self.closeHandshakeTimeout = CLOSE_HANDSHAKE_SECONDS
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

    WebSocketProtocol.handle_reply = handle_reply
    WebSocketProtocol._max_message_size_exceeded = max_size_exceeded
    WebSocketProtocol.onOpen = on_open
    Server.handle_reply = server_reply
    Server.listen_success = listen_success
    Server.kill_all_applications = _kill_all_applications
    WebSocketProtocol._pastra_compat = True
    return True


def _kill_all_applications(self):
    """daphne's shutdown, replaced: stop listening, then Pastra's drain
    (assistant/live/shutdown.py) of every live application, at most PASTRA_DRAIN_SECONDS."""
    from twisted.internet import defer

    for port in self.__dict__.get("_pastra_ports", ()):
        port.stopListening()  # new connections are refused from now on
    instances = []
    for protocol, details in self.connections.items():
        if (writable := getattr(protocol, "_pastra_writable", None)) is not None:
            writable.event.set()  # senders stop waiting for slow clients
        if (instance := details.get("application_instance")) is not None:
            instances.append(instance)
    return defer.Deferred.fromFuture(shutdown.begin(instances)).addErrback(lambda failure: None)
