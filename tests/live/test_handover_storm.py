"""Issue 12, finding 6: a goAway soon after connecting no longer starts a reconnect storm.
The emulator's connection lifetime (`connection_seconds`, EMULATOR_CONNECTION_SECONDS) is
shorter than its goAway notice, so every connection gets its goAway at once: the session
holds the handover back with a growing backoff, answers speech meanwhile, stores a bounded
record, and ends with a clear error once its (or the worker's) reconnect budget is spent."""

import asyncio
import time

import pytest

from assistant.live import limits
from assistant.models import ConversationEvent
from tests.live.conftest import (
    MODEL,
    frames,
    gemini_client,
    gemini_recv,
    gemini_until,
    receive_close,
    receive_until,
    said,
    setups,
    silence,
    start_web,
    tone,
    turn_complete,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_goaway_at_once_is_bounded_and_speech_is_answered(alice, start_emulator, settled):
    emulator = await start_emulator(connection_seconds=3.0)  # goAway at once, timeLeft 3 s
    comm = web_client(alice)
    ready = await start_web(comm)
    started = time.monotonic()
    await asyncio.sleep(3.0)  # idle: before the fix, hundreds of connections a second
    idle_setups = setups(emulator)
    print(f"idle: {idle_setups} upstream connections in 3 s")
    assert idle_setups <= 6, idle_setups
    # Speech and text still get their replies between handovers.
    for chunk in frames(tone(800) + silence(900)):
        await comm.send_to(bytes_data=chunk)
        await asyncio.sleep(0.02)
    got = await receive_until(
        comm, lambda e: e["type"] == "turn.complete" and not e.get("interrupted"), seconds=10
    )
    assert any(text.startswith("I heard") for text in got.finals("model")), got.events
    got = await web_turn(comm, "still there?")
    assert got.finals("model")[-1] == "You said: still there?"
    elapsed = time.monotonic() - started
    assert setups(emulator) / elapsed < 2.0, (setups(emulator), elapsed)
    await comm.disconnect()
    stored = await ConversationEvent.objects.filter(conversation_id=ready["conversation"]).acount()
    assert stored < 60, stored


async def test_the_session_budget_ends_it_with_a_clear_error(
    alice, alice_token, start_emulator, monkeypatch, settled
):
    monkeypatch.setattr(limits, "SESSION_RECONNECTS", (3, 60.0))
    monkeypatch.setattr(limits, "HANDOVER_BACKOFF", (0.05, 0.1))
    emulator = await start_emulator(connection_seconds=0.4)
    comm = web_client(alice)
    await start_web(comm)
    events, code = await receive_close(comm, seconds=10)
    assert code == 4502
    assert events[-1] == {
        "type": "error",
        "code": 4502,
        "message": "The assistant's connection keeps dropping (3 reconnects in 60 s). "
        "Try again in a moment.",
    }
    assert setups(emulator) == 4  # the first connection and 3 handovers
    # The Gemini path: Google's code and reason for an unavailable service.
    sdk = gemini_client(alice_token)
    await sdk.connect()
    await sdk.send_json_to({"setup": {"model": f"models/{MODEL}"}})
    assert await gemini_recv(sdk) == {"setupComplete": {}}
    msg = await gemini_recv(sdk, seconds=10)
    assert msg == {"__close__": 1011, "reason": "The service is currently unavailable."}


async def test_the_worker_budget_is_shared_by_its_sessions(
    alice, alice_token, start_emulator, monkeypatch, settled
):
    monkeypatch.setattr(limits, "_worker_reconnects", limits.TokenBucket(0.5, 2.0))
    monkeypatch.setattr(limits, "WORKER_RECONNECT_WAIT", 0.5)
    monkeypatch.setattr(limits, "HANDOVER_BACKOFF", (0.05, 0.1))
    await start_emulator(connection_seconds=0.4)
    first = gemini_client(alice_token)
    await first.connect()
    await first.send_json_to(
        {"setup": {"model": f"models/{MODEL}", "outputAudioTranscription": {}}}
    )
    assert await gemini_recv(first) == {"setupComplete": {}}
    second = web_client(alice)
    await start_web(second)
    # Two handovers in all, then both sessions end: the worker's budget is spent.
    events, code = await receive_close(second, seconds=10)
    assert code == 4502
    assert events[-1]["message"] == (
        "The server is reconnecting too many sessions at once. Try again in a moment."
    )
    got = await gemini_until(first, lambda m: "__close__" in m, seconds=10)
    assert got[-1] == {"__close__": 1011, "reason": "The service is currently unavailable."}
    assert not [m for m in got if turn_complete(m) and said([m])]
