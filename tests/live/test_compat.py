"""What assistant/live/compat.py relies on in Channels and daphne, pinned. Each test names the
fix to revisit when an upgrade changes the behaviour it works around or builds on."""

import asyncio
import inspect
import re

import channels
import channels.consumer
import channels.generic.websocket
import channels.utils
import daphne
import daphne.server
import daphne.ws_protocol
import pytest
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import InMemoryChannelLayer
from channels.testing import WebsocketCommunicator

from assistant.live import compat, control_hub
from assistant.live.compat import BridgeConsumer

VERIFIED = {"channels": "4.3.", "daphne": "4.2."}


def function_source(module, qualname: str) -> str:
    """A function's text as the installed package ships it (even if compat patched it)."""
    text = inspect.getsource(module)
    cls, name = qualname.split(".")
    body = text[text.index(f"class {cls}") :]
    start = body.index(f"    def {name}(") if f"    def {name}(" in body else None
    if start is None:
        start = body.index(f"    async def {name}(")
    rest = body[start + 1 :]
    end = re.search(r"\n    (async )?def |\nclass ", rest)
    return rest[: end.start()] if end else rest


def test_compat_was_verified_against_these_versions():
    for package, version in (("channels", channels.__version__), ("daphne", daphne.__version__)):
        assert version.startswith(VERIFIED[package]), (
            f"{package} {version}: assistant/live/compat.py was verified against "
            f"{VERIFIED[package]}x. Re-check each of its fixes against the new release (the "
            "tests below say which behaviour each needs), then update VERIFIED here."
        )


# --- Channels ---------------------------------------------------------------------------------


async def test_channels_hops_to_the_database_thread_per_message_and_the_bridge_does_not(
    monkeypatch,
):
    hops = []

    async def counting():
        hops.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting)
    monkeypatch.setattr(channels.generic.websocket, "aclose_old_connections", counting)

    class Plain(AsyncWebsocketConsumer):
        async def receive(self, text_data=None, bytes_data=None):
            pass

    await Plain().dispatch({"type": "websocket.receive", "text": "x"})
    assert hops == [1], (
        "Channels no longer runs aclose_old_connections() before every handler: "
        "compat fix 1 (BridgeConsumer.dispatch) may be dropped"
    )
    hops.clear()
    with pytest.raises(StopConsumer):
        await Plain().websocket_disconnect({"type": "websocket.disconnect", "code": 1000})
    assert hops == [1], (
        "Channels' websocket_disconnect no longer runs aclose_old_connections(): "
        "compat fix 1 (BridgeConsumer.websocket_disconnect) may be dropped"
    )

    seen = []

    class Bridge(BridgeConsumer):
        def receive_now(self, message):
            seen.append(message["text"])

        async def websocket_connect(self, message):
            seen.append("connected")

        async def disconnect(self, code):  # under BridgeConsumer's own websocket_disconnect
            seen.append("gone")

    hops.clear()
    bridge = Bridge()
    for message in ({"type": "websocket.connect"}, {"type": "websocket.receive", "text": "y"}):
        await bridge.dispatch(message)
    with pytest.raises(StopConsumer):
        await bridge.dispatch({"type": "websocket.disconnect", "code": 1000})
    assert (seen, hops) == (["connected", "y", "gone"], []), (
        "a connect or a close waited for Channels' one database thread"
    )


class FlakyLayer(InMemoryChannelLayer):
    """The first receive fails, as channels-redis does while Redis is down."""

    failed = False

    async def receive(self, channel):
        if not FlakyLayer.failed:
            FlakyLayer.failed = True
            raise ConnectionError("redis is down")
        return await super().receive(channel)


@pytest.fixture
def flaky_layer(settings):
    FlakyLayer.failed = False
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.live.test_compat.FlakyLayer"}}
    channels.layers.channel_layers.backends.clear()
    yield
    channels.layers.channel_layers.backends.clear()


class Grouped(BridgeConsumer):
    async def connect(self):
        await self.join_groups(("pinned",))  # before accept: listening once connected
        await self.accept()

    def receive_now(self, message):
        return None

    async def on_server_shutdown(self):
        pass

    async def note(self, event):
        await self.send(text_data=event["text"])


class PlainGrouped(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await self.channel_layer.group_add("pinned", self.channel_name)


async def test_a_layer_error_ends_a_plain_consumer_but_not_the_bridge(flaky_layer):
    plain = WebsocketCommunicator(PlainGrouped.as_asgi(), "/")
    assert (await plain.connect())[0]
    with pytest.raises(ConnectionError):
        await plain.receive_output(timeout=2)
    # If this fails, Channels itself now survives a layer error: compat fix 2 may be dropped.

    FlakyLayer.failed = False
    bridge = WebsocketCommunicator(Grouped.as_asgi(), "/")
    assert (await bridge.connect())[0]
    await asyncio.sleep(0.5)  # the failed receive, the back-off, the rejoin
    await control_hub.send("pinned", {"type": "note", "text": "still here"})
    assert await bridge.receive_from(timeout=3) == "still here"
    await bridge.disconnect()


async def test_a_cancelled_application_runs_its_shutdown_hook_first():
    hooks = []

    class Hooked(Grouped):
        async def on_server_shutdown(self):
            await asyncio.sleep(0.05)  # it may await: it is shielded
            hooks.append("flushed")

    comm = WebsocketCommunicator(Hooked.as_asgi(), "/")
    assert (await comm.connect())[0]
    comm.future.cancel()  # what daphne does to every application on SIGTERM
    with pytest.raises(asyncio.CancelledError):
        await comm.future
    assert hooks == ["flushed"]


def test_channels_still_makes_a_task_per_message_and_sets_what_serve_sets():
    """BridgeConsumer._serve stands in for AsyncConsumer.__call__ (compat fix 2): it must set
    what Channels sets (but the channel of its own: control_hub.py), and it exists because
    Channels waits with a task per message."""
    source = function_source(channels.consumer, "AsyncConsumer.__call__")
    for needed in (
        "await_many_dispatch",
        "self.scope = scope",
        "self.channel_layer = get_channel_layer(self.channel_layer_alias)",
        "self.channel_name = await self.channel_layer.new_channel()",
        "self.channel_receive = functools.partial(",
        "self.base_send = send",
        "except StopConsumer",
    ):
        assert needed in source, f"AsyncConsumer.__call__ changed ({needed!r}): re-check _serve"
    waits = inspect.getsource(channels.utils.await_many_dispatch)
    assert "asyncio.ensure_future(consumer_callables[i]())" in waits


class Ordered(Grouped):
    """Client messages and layer events: each handler runs alone, a slow one included."""

    log: list[str] = []

    def receive_now(self, message):
        Ordered.log.append(f"client {message['text']}")

    async def note(self, event):
        Ordered.log.append(f"layer {event['text']} start")
        await asyncio.sleep(0.1)
        Ordered.log.append(f"layer {event['text']} end")

    async def fail(self, event):
        raise RuntimeError("a handler's bug")


async def test_the_bridge_runs_handlers_one_at_a_time_without_a_task_per_message():
    Ordered.log = []
    comm = WebsocketCommunicator(Ordered.as_asgi(), "/")
    assert (await comm.connect())[0]
    await control_hub.send("pinned", {"type": "note", "text": "A"})
    await asyncio.sleep(0.02)  # the layer handler is running (asleep inside)
    loop, made = asyncio.get_running_loop(), []

    def counting(loop, coro, **kwargs):
        made.append(getattr(coro, "__qualname__", ""))
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        for i in range(50):
            await comm.send_to(text_data=str(i))
        await asyncio.sleep(0.3)
    finally:
        loop.set_task_factory(None)
    assert len(made) < 5, made  # Channels makes one per message (and one per layer event)
    assert Ordered.log[:2] == ["layer A start", "layer A end"], Ordered.log
    assert Ordered.log[2:] == [f"client {i}" for i in range(50)]
    # A handler's exception ends the connection, as under Channels.
    await control_hub.send("pinned", {"type": "fail"})
    with pytest.raises(RuntimeError, match="a handler's bug"):
        await comm.wait(timeout=2)


# --- daphne and autobahn -------------------------------------------------------------------------


def test_autobahn_still_refuses_gemini_close_codes():
    with pytest.raises(Exception, match="invalid close code 1007"):
        AutobahnProtocol.sendClose(object(), code=1007, reason="bad")
    # If this fails, autobahn accepts any close code: compat fix 4's own close frame may go.


def test_daphne_still_drops_the_close_reason():
    source = function_source(daphne.ws_protocol, "WebSocketProtocol.handle_reply")
    assert "serverClose(code=" in source
    assert "reason" not in source, (
        "daphne now passes the close reason on: compat fix 4 may be dropped"
    )


def test_daphne_shutdown_still_cancels_applications_as_compat_expects():
    source = function_source(daphne.server, "Server.kill_all_applications")
    assert 'details["application_instance"]' in source, (
        "daphne's kill_all_applications changed: re-check compat fix 5 (_kill_all_applications "
        "replaces it and reads self.connections[...]['application_instance'])"
    )
    assert "listen_success" in inspect.getsource(daphne.server)


def test_daphne_sends_without_waiting_for_the_transport():
    source = function_source(daphne.server, "Server.handle_reply")
    assert "protocol.handle_reply(message)" in source
    assert "await" not in source.split("protocol.handle_reply(message)")[0].split('"""')[-1], (
        "daphne's handle_reply now awaits something before writing: re-check whether it has "
        "backpressure of its own (compat fix 6)"
    )


def test_install_patches_daphne_once_and_explicitly():
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol

    assert compat.install() is True
    patched = (WebSocketProtocol.handle_reply, Server.handle_reply, Server.kill_all_applications)
    assert compat.install() is True  # idempotent
    assert (
        WebSocketProtocol.handle_reply,
        Server.handle_reply,
        Server.kill_all_applications,
    ) == patched
    assert Server.kill_all_applications is compat._kill_all_applications


@pytest.mark.django_db(transaction=True)
async def test_channels_session_middleware_wraps_send_and_cookie_session_does_not(
    django_user_model, settings
):
    """Fix 9: Channels' SessionMiddleware hands the application a wrapper around `send` (it
    reads the session on every message); CookieSession hands it the server's own `send`,
    with the same `cookies` and the cookie's session, which AuthMiddleware signs in from."""
    from channels.auth import AuthMiddleware
    from channels.sessions import CookieMiddleware, SessionMiddleware
    from django.test import Client

    user = await django_user_model.objects.acreate(username="cookie-session")
    client = Client()
    await asyncio.to_thread(client.force_login, user)
    name = settings.SESSION_COOKIE_NAME
    headers = [(b"cookie", f"{name}={client.cookies[name].value}; theme=dark".encode())]
    seen = {}

    async def inner(scope, receive, send):
        seen.update(send=send, cookies=scope["cookies"], key=scope["session"].session_key)

    async def send(message):
        pass

    scope = {"type": "websocket", "path": "/ws/live/", "headers": headers}
    await CookieMiddleware(SessionMiddleware(inner))(scope, None, send)
    assert seen["send"] is not send  # the wrapper this fix removes from every message
    await compat.CookieSession(inner)(scope, None, send)
    assert seen["send"] is send
    assert seen["cookies"]["theme"] == "dark"
    assert seen["key"] == client.cookies[name].value

    users = {}

    async def signed_in(scope, receive, send):
        users["id"] = scope["user"].id

    await compat.CookieSession(AuthMiddleware(signed_in))(scope, None, send)
    assert users["id"] == user.id
