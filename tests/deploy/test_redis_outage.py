"""Redis (the channel layer) unavailable for a while does not kill live sessions: a worker on
a private redis-server keeps streaming turns while Redis is down, a session may even start
then, and control events (`live.end`) reach both sessions again once Redis is back (the
consumers rejoin their groups: a restarted Redis has forgotten them)."""

import asyncio
import contextlib
import uuid

import pytest
from channels_redis.core import RedisChannelLayer

from assistant import control
from assistant.live import control_hub
from assistant.models import ConversationEvent
from tests.deploy.conftest import (
    gemini_session,
    gemini_turn,
    in_thread,
    until_closed,
    web_session,
)
from tests.live.conftest import said

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("settled"),
]


async def end_until_closed(layer, group: str, closed: asyncio.Task, *, seconds: float = 15.0):
    """Send `live.end` every 0.3 s until `closed` finishes (the worker rejoins its groups
    within a few seconds of Redis coming back)."""
    async with asyncio.timeout(seconds):
        while not closed.done():
            with contextlib.suppress(Exception):  # Redis still starting
                await layer.group_send(
                    control_hub.BROADCAST,
                    {"type": control.END_EVENT, "reason": "back", control_hub.GROUP_KEY: group},
                )
            await asyncio.wait({closed}, timeout=0.3)
    return closed.result()


async def test_sessions_survive_redis_going_away_and_control_works_again(
    start_worker, own_redis, alice, bob, login_cookie, make_token
):
    prefix = f"pastra-outage-{uuid.uuid4().hex[:8]}"
    worker = start_worker("outage", REDIS_URL=own_redis.url, PASTRA_CHANNEL_PREFIX=prefix)
    web = await web_session(worker, await login_cookie(alice), modality="text")
    assert await web.turn("before the outage") == "You said: before the outage"

    await in_thread(own_redis.stop)
    for i in range(3):
        assert await web.turn(f"during the outage {i}") == f"You said: during the outage {i}"
        await asyncio.sleep(0.2)
    # A session may also start while Redis is down (it joins its groups later).
    token = await in_thread(make_token, bob)
    sdk = await gemini_session(worker, token, {"outputAudioTranscription": {}})
    assert said(await gemini_turn(sdk, "hello")) == "You said: hello"

    await in_thread(own_redis.start)
    assert await web.turn("after the outage") == "You said: after the outage"
    layer = RedisChannelLayer(hosts=[{"address": own_redis.url}], prefix=prefix)
    web_closed = asyncio.ensure_future(web.closed())
    sdk_closed = asyncio.ensure_future(until_closed(sdk))
    assert await end_until_closed(layer, control.user_group(alice.pk), web_closed) == (4410, "back")
    assert await end_until_closed(layer, control.user_group(bob.pk), sdk_closed) == (1008, "back")
    await layer.flush()
    log = worker.stop()
    assert "channel layer unavailable: control events paused" in log
    assert "channel layer back: control events resumed" in log

    texts = [
        e.text
        async for e in ConversationEvent.objects.filter(
            conversation__user=alice, kind=ConversationEvent.Kind.USER_TEXT
        ).order_by("seq")
    ]
    assert texts == [
        "before the outage",
        "during the outage 0",
        "during the outage 1",
        "during the outage 2",
        "after the outage",
    ]
