"""The process's control hub (assistant/live/control_hub.py): a live socket joins and leaves its
control groups without a channel-layer round trip, an event reaches only its group's sockets,
and a closed socket is not kept."""

import asyncio

import pytest
from channels.layers import get_channel_layer

from assistant import control
from assistant.live import control_hub
from tests.live.conftest import (
    MODEL,
    gemini_client,
    gemini_recv,
    receive_close,
    start_web,
    wait_for,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def layer_calls(monkeypatch) -> list[str]:
    """The channel layer's calls that cost a round trip on Redis, by name."""
    layer, calls = get_channel_layer(), []
    for name in ("new_channel", "group_add", "group_discard", "group_send"):
        real = getattr(layer, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls.append(_name if _name != "group_send" else f"group_send {args[0]}")
            return _real(*args, **kwargs)

        monkeypatch.setattr(layer, name, counted)
    return calls


async def test_sessions_start_and_end_without_a_channel_layer_round_trip(
    alice, alice_token, emulator, layer_calls
):
    first = web_client(alice)
    await start_web(first)  # the process's first session starts the hub's listener
    await first.disconnect()
    assert layer_calls.count("new_channel") == 1
    assert layer_calls.count("group_add") == 1  # the hub's channel joins the broadcast
    layer_calls.clear()

    for _ in range(3):
        web = web_client(alice)
        await start_web(web)
        await web_turn(web, "hello")
        await web.disconnect()
        sdk = gemini_client(alice_token)
        await sdk.connect()
        await sdk.send_json_to({"setup": {"model": MODEL}})
        assert await gemini_recv(sdk) == {"setupComplete": {}}
        await sdk.disconnect()
    # What is left is the admin live view's broadcast of what was recorded (live_view.py).
    assert all(c.startswith("group_send ") and c.endswith(".watch") for c in layer_calls)


async def test_an_event_reaches_only_its_groups_sockets_and_closed_ones_are_dropped(
    alice, bob, emulator
):
    alices, bobs = web_client(alice), web_client(bob)
    ready = await start_web(alices)
    await start_web(bobs)
    hub = control_hub.hub()
    assert len(hub.members(control.user_group(alice.pk))) == 1
    assert len(hub.members(control.conversation_group(ready["conversation"]))) == 1

    await control.aend_sessions(conversation_id=ready["conversation"], reason="Enough")
    events, code = await receive_close(alices)
    assert code == 4410
    assert events[-1]["message"] == "Enough"
    await bobs.receive_nothing(timeout=0.2)
    await web_turn(bobs, "still here")
    await alices.disconnect()

    await wait_for(lambda: not hub.members(control.user_group(alice.pk)))
    assert hub.members(control.conversation_group(ready["conversation"])) == []
    await bobs.disconnect()
    await wait_for(lambda: not hub.members(control.user_group(bob.pk)))


async def test_the_listener_outlives_a_failing_receive(alice, emulator, monkeypatch):
    """The listener survives a failing receive (Redis down): it backs off, rejoins the
    broadcast and delivers the next event."""
    layer = get_channel_layer()
    real_receive, failures = layer.receive, []

    async def flaky(channel):
        if not failures:
            failures.append(channel)
            raise ConnectionError("redis is down")
        return await real_receive(channel)

    await control_hub.hub().stop()
    monkeypatch.setattr(layer, "receive", flaky)
    comm = web_client(alice)
    ready = await start_web(comm)
    await wait_for(lambda: failures and not control_hub.hub().layer_down, seconds=5)
    await asyncio.sleep(0.05)
    await control.aend_sessions(conversation_id=ready["conversation"], reason="Back")
    _, code = await receive_close(comm)
    assert code == 4410
    await comm.disconnect()


@pytest.mark.redis
async def test_on_redis_the_hub_shares_the_processs_receive_loop(settings):
    """channels_redis serves a process's local channels from one receive loop on one prefix:
    the hub's channel must not hold it on a key of its own while another consumer of the same
    process (an admin live-view watcher) waits for a message."""
    import os
    import uuid

    import channels.layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]], "prefix": f"hub-{uuid.uuid4().hex}"},
        }
    }
    channels.layers.channel_layers.backends.clear()
    got, hub = [], control_hub.hub()

    class Member:
        def control(self, event):
            got.append(event)

    member = Member()
    try:
        await hub.join(member, ("g",))  # the listener is receiving from here on
        await asyncio.sleep(0.2)
        layer = get_channel_layer()
        watcher = await layer.new_channel()
        await layer.send(watcher, {"type": "conversation.events"})
        message = await asyncio.wait_for(layer.receive(watcher), 2.0)
        assert message["type"] == "conversation.events"
        await control_hub.send("g", {"type": "live.end", "reason": "x"})
        await wait_for(lambda: got, seconds=2)
        assert got == [{"type": "live.end", "reason": "x"}]
    finally:
        hub.leave(member, ("g",))
        await hub.stop()
        channels.layers.channel_layers.backends.clear()
