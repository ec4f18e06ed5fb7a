"""Every task of a live session is named for its conversation and role, has one owner (the
session's task group), and none outlives the session; the shutdown runs in its stated order;
the upstream is the one settings decided on (the built-in emulator only when they say so)."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.core.exceptions import ImproperlyConfigured

from assistant.live import session as session_module
from assistant.live import upstream
from assistant.models import ConversationEvent, SessionLease
from tests.live.conftest import (
    receive_close,
    receive_until,
    spy_sessions,
    start_web,
    wait_for,
    web_client,
)
from tests.live.test_tools_bridge import GEOCODE_KEY, hanging

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = ("recorder", "downlink", "upstream writer", "upstream reader")  # housekeeper: a timer


@pytest.fixture
def sessions(monkeypatch):
    """The LiveSession objects created during the test (a spy: behaviour unchanged)."""
    return spy_sessions(monkeypatch)


def task_names() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks()}


async def test_tasks_are_named_for_their_conversation_and_none_outlives_the_session(
    alice, emulator, sessions
):
    comm = web_client(alice)
    ready = await start_web(comm)
    owner = f"conv={ready['conversation']}"
    names = task_names()
    assert {f"{owner} {role}" for role in ROLES} <= names
    assert f"user={alice.pk} web socket" in names
    assert "event-loop watcher" in names  # the loop's lag reaches /metrics (loopwatch.py)
    (session,) = sessions
    assert session.tasks.names() == sorted(f"{owner} {role}" for role in ROLES)
    await comm.send_json_to({"type": "stop"})
    await receive_close(comm)
    await wait_for(lambda: not [n for n in task_names() if n.startswith(owner)])
    assert session.tasks.names() == []
    assert not [n for n in task_names() if n.startswith(f"user={alice.pk} ")]


async def test_tool_call_tasks_belong_to_the_session_and_are_named_for_the_call(
    alice, emulator, sessions, http_routes, live_settings
):
    live_settings.PASTRA_TOOLS = ["get_weather"]
    live_settings.PASTRA_WEATHER_GEOCODE_URL = "https://geocoding-api.open-meteo.com/v1/search"
    abandoned = asyncio.Event()
    http_routes[GEOCODE_KEY] = hanging(abandoned)
    comm = web_client(alice)
    ready = await start_web(comm)
    await comm.send_json_to({"type": "text", "text": "weather in Paris"})
    started = (await receive_until(comm, lambda e: e["type"] == "tool")).events[-1]
    (session,) = sessions
    tool_task = f"conv={ready['conversation']} tool get_weather {started['id']}"
    assert tool_task in session.tasks.names()
    await comm.disconnect()
    assert abandoned.is_set()
    assert tool_task not in task_names()


async def test_shutdown_runs_in_its_stated_order(alice, emulator, sessions, http_routes):
    comm = web_client(alice)
    ready = await start_web(comm)
    await comm.send_json_to({"type": "text", "text": "hello"})
    await receive_until(comm, lambda e: e["type"] == "turn.complete")
    await comm.send_json_to({"type": "stop"})
    await receive_close(comm)
    (session,) = sessions
    await wait_for(lambda: session.shutdown_trace[-1:] == ["output"])
    assert tuple(session.shutdown_trace) == session_module.SHUTDOWN

    # The records step came after the workers stopped and before the writers did: the end is
    # the last event written, and the lease is gone.
    @database_sync_to_async
    def recorded():
        events = ConversationEvent.objects.filter(conversation_id=ready["conversation"])
        return [e.text for e in events.order_by("seq")], SessionLease.objects.count()

    texts, leases = await recorded()
    assert texts[-1] == "ended"
    assert "You said: hello" in texts
    assert leases == 0


async def test_a_client_that_is_gone_gets_no_drain(alice, emulator, sessions):
    comm = web_client(alice)
    await start_web(comm)
    await comm.disconnect()
    (session,) = sessions
    await wait_for(lambda: session.shutdown_trace[-1:] == ["output"])
    assert session.shutdown_trace == [step for step in session_module.SHUTDOWN if step != "drain"]


async def test_no_upstream_configured_starts_no_emulator(settings):
    settings.PASTRA_UPSTREAM_URL = ""
    settings.PASTRA_BUILTIN_EMULATOR = False
    with pytest.raises(ImproperlyConfigured, match="GEMINI_API_KEY or PASTRA_UPSTREAM_URL"):
        await upstream.base_url()
    from assistant.live import builtin

    assert asyncio.get_running_loop() not in builtin._servers


async def test_the_built_in_emulator_starts_when_settings_chose_it(settings):
    settings.PASTRA_UPSTREAM_URL = ""
    settings.PASTRA_BUILTIN_EMULATOR = True
    from assistant.live import builtin

    url = await upstream.base_url()
    try:
        assert url.startswith("ws://127.0.0.1:")
        assert await upstream.base_url() == url  # one per event loop
    finally:
        server = await builtin._servers.pop(asyncio.get_running_loop())
        await server.stop()
