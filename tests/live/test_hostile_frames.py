"""Issue 12, finding 7: well-formed frames with wrong types (and nesting too deep) close only
their own session, at once, with a clear code and reason; its lease, the user's slot and its
upstream socket are freed at once (a new session for the same user works immediately, the
emulator holds no connection). Over the consumer against the emulator's real socket."""

import pytest

from assistant.live.limits import MAX_JSON_DEPTH
from tests.live.conftest import (
    MODEL,
    gemini_client,
    gemini_recv,
    gemini_until,
    receive_close,
    start_web,
    turn_complete,
    wait_for,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)

INVALID = "Request contains an invalid argument."


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": [value]}
    return value


DEEP = MAX_JSON_DEPTH + 200  # past orjson's 254 levels on the way out, too

# (setup extras, then the message that should close the session)
AFTER_SETUP = {
    "parts_not_a_list": {"clientContent": {"turns": [{"parts": 5}], "turnComplete": True}},
    "history_parts_not_a_list": {"clientContent": {"turns": [{"role": "model", "parts": 5}]}},
    "media_chunks_not_a_list": {"realtimeInput": {"mediaChunks": 5}},
    "tools_not_a_list": {"contextUpdate": {"tools": {"tools": 5}}},
    "declarations_not_a_list": {
        "contextUpdate": {"tools": {"tools": [{"functionDeclarations": 5}]}}
    },
    "instruction_parts_not_a_list": {"contextUpdate": {"systemInstruction": {"parts": 5}}},
    "tool_response_too_deep": {
        "toolResponse": {"functionResponses": [{"id": "x", "response": nested(DEEP)}]}
    },
    "client_content_too_deep": {
        "clientContent": {"turns": [{"parts": [{"text": "hi", "x": nested(DEEP)}]}]}
    },
    "realtime_too_deep": {"realtimeInput": {"activityStart": nested(DEEP)}},
}
IN_SETUP = {
    "speech_config_not_an_object": {"generationConfig": {"speechConfig": 5}},
    "voice_config_not_an_object": {"generationConfig": {"speechConfig": {"voiceConfig": 5}}},
    "instruction_parts_not_a_list": {"systemInstruction": {"parts": 5}},
    "declarations_not_a_list": {"tools": [{"functionDeclarations": 5}]},
    "setup_too_deep": {
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": nested(DEEP)}]}]
    },
    "setup_field_too_deep": {"realtimeInputConfig": nested(DEEP)},
}


@pytest.fixture
def one_slot(live_settings):
    """One live session per user: a slot not freed at once refuses the next session."""
    live_settings.PASTRA_MAX_SESSIONS_PER_USER = 1


async def closed_with(comm) -> dict:
    msg = await gemini_recv(comm)
    while "__close__" not in msg:
        msg = await gemini_recv(comm)
    return msg


async def upstream_connections(emulator) -> int:
    return len(emulator.stats()["connections"])


async def fresh_session_answers(token) -> None:
    comm = gemini_client(token)
    await comm.connect()
    await comm.send_json_to({"setup": {"model": f"models/{MODEL}", "outputAudioTranscription": {}}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to({"realtimeInput": {"text": "still here"}})
    await gemini_until(comm, turn_complete)
    await comm.disconnect()


@pytest.mark.parametrize("name", sorted(AFTER_SETUP))
async def test_gemini_bad_message_closes_1007_and_frees_everything(
    name, alice_token, emulator, one_slot, settled
):
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to({"setup": {"model": f"models/{MODEL}"}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to(AFTER_SETUP[name])
    msg = await closed_with(comm)
    assert (msg["__close__"], msg["reason"]) == (1007, INVALID)
    await wait_for(lambda: not emulator.stats()["connections"], seconds=3)
    await fresh_session_answers(alice_token)


@pytest.mark.parametrize("name", sorted(IN_SETUP))
async def test_gemini_bad_setup_closes_1007_before_any_upstream(
    name, alice_token, emulator, one_slot, settled
):
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to({"setup": {"model": f"models/{MODEL}", **IN_SETUP[name]}})
    msg = await closed_with(comm)
    assert (msg["__close__"], msg["reason"]) == (1007, INVALID)
    assert emulator.stats()["total"]["setups"] == 0
    assert not emulator.stats()["connections"]
    await fresh_session_answers(alice_token)


async def test_gemini_unexpected_error_closes_1011_at_once(
    alice_token, emulator, one_slot, settled, monkeypatch
):
    """A real bug while handling one message: 1011 "Internal error encountered." at once (not
    a dead socket with the session living on), and everything freed."""
    from assistant.live.session import LiveSession

    def broken(self, text):
        raise KeyError("a bug")

    monkeypatch.setattr(LiveSession, "text", broken)
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to({"setup": {"model": f"models/{MODEL}"}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to({"realtimeInput": {"text": "hi"}})
    msg = await closed_with(comm)
    assert (msg["__close__"], msg["reason"]) == (1011, "Internal error encountered.")
    await wait_for(lambda: not emulator.stats()["connections"], seconds=3)
    monkeypatch.undo()
    await fresh_session_answers(alice_token)


WEB_BAD = {
    "start_functions_too_deep": {
        "type": "start",
        "functions": [{"name": "f", "parameters": nested(DEEP)}],
    },
    "tool_result_too_deep": {"type": "tool.result", "id": "x", "response": nested(DEEP)},
}


@pytest.mark.parametrize("name", sorted(WEB_BAD))
async def test_web_bad_message_closes_4400_and_frees_everything(
    name, alice, emulator, one_slot, settled
):
    comm = web_client(alice)
    message = WEB_BAD[name]
    if message["type"] == "start":
        connected, _ = await comm.connect()
        assert connected
    else:
        await start_web(comm)
    await comm.send_json_to(message)
    events, code = await receive_close(comm)
    assert code == 4400
    error = [e for e in events if e["type"] == "error"][-1]
    assert f"nested more than {MAX_JSON_DEPTH} levels" in error["message"]
    await wait_for(lambda: not emulator.stats()["connections"], seconds=3)
    again = web_client(alice)
    await start_web(again)
    await web_turn(again, "still here")
    await again.disconnect()


async def test_web_unexpected_error_closes_4500_at_once(
    alice, emulator, one_slot, settled, monkeypatch
):
    from assistant.live.session import LiveSession

    def broken(self, text):
        raise KeyError("a bug")

    comm = web_client(alice)
    await start_web(comm)
    monkeypatch.setattr(LiveSession, "text", broken)
    await comm.send_json_to({"type": "text", "text": "hi"})
    events, code = await receive_close(comm)
    assert code == 4500
    assert [e["message"] for e in events if e["type"] == "error"] == [
        "Something went wrong on the server."
    ]
    await wait_for(lambda: not emulator.stats()["connections"], seconds=3)
    monkeypatch.undo()
    again = web_client(alice)
    await start_web(again)
    await web_turn(again, "still here")
    await again.disconnect()


async def test_a_setup_that_fails_after_connecting_closes_its_upstream_socket(emulator):
    """Anything raised between the upstream handshake and setupComplete (here a setup that
    cannot be serialised) closes the socket it opened, not leaving it to Google's timeout."""
    from assistant.live.upstream import Upstream

    with pytest.raises(TypeError):
        await Upstream.open({"setup": {"model": f"models/{MODEL}", "bad": object()}})
    await wait_for(lambda: not emulator.stats()["connections"], seconds=3)
