"""NON_BLOCKING `scheduling` on the Gemini path (issue 11), through Pastra against the emulator:
a client's answer keeps the scheduling it chose, and the model honours it (Live API tool use
page, asynchronous function calling, Sept 2026): SILENT is not said, WHEN_IDLE is said after
the current turn, INTERRUPT cuts a running reply short and is said at once."""

import asyncio

import pytest

from tests.live.conftest import gemini_recv, gemini_until, said, turn_complete
from tests.live.test_gemini_socket import open_session

pytestmark = pytest.mark.django_db(transaction=True)

LIGHTS = {"name": "lights", "parameters": {"type": "OBJECT", "properties": {}}}


async def client_call(comm) -> dict:
    """Ask for a call of `lights` (NON_BLOCKING: 3.8's default); the calling turn ends."""
    await comm.send_json_to({"realtimeInput": {"text": "call lights {}"}})
    first = await gemini_until(comm, turn_complete)
    (call,) = [c for m in first if "toolCall" in m for c in m["toolCall"]["functionCalls"]]
    return call


def answer(call: dict, scheduling: str) -> dict:
    response = {"id": call["id"], "name": "lights", "response": {"on": True}}
    return {"toolResponse": {"functionResponses": [{**response, "scheduling": scheduling}]}}


@pytest.fixture
async def session(alice_token, emulator):
    setup = {"outputAudioTranscription": {}, "tools": [{"functionDeclarations": [LIGHTS]}]}
    comm = await open_session(alice_token, setup)
    yield comm
    await comm.disconnect()


async def test_silent_results_are_not_said(session):
    call = await client_call(session)
    await session.send_json_to(answer(call, "SILENT"))
    await session.send_json_to({"realtimeInput": {"text": "next"}})
    got = await gemini_until(session, turn_complete)
    assert said(got) == "You said: next"  # nothing about the lights came first


async def test_when_idle_results_are_said_in_a_turn_of_their_own(session):
    call = await client_call(session)
    await session.send_json_to(answer(call, "WHEN_IDLE"))
    got = await gemini_until(session, turn_complete)
    assert said(got) == 'lights returned {"on":true}'


async def test_interrupt_results_cut_a_running_reply_short(session):
    call = await client_call(session)
    await session.send_json_to({"realtimeInput": {"text": "/long"}})
    first = await gemini_recv(session)  # the long reply has begun
    assert "serverContent" in first, first
    await asyncio.sleep(0.2)
    await session.send_json_to(answer(call, "INTERRUPT"))
    cut = await gemini_until(session, turn_complete)
    assert any(m.get("serverContent", {}).get("interrupted") for m in cut)
    got = await gemini_until(session, turn_complete)
    assert said(got) == 'lights returned {"on":true}'
