"""NON_BLOCKING `scheduling` on both paths (issue 11), through Pastra against the emulator: a
client's answer (a Gemini client's `toolResponse`, a page's `tool.result`) keeps the scheduling
it chose, and the model honours it (Live API tool use page, asynchronous function calling,
Sept 2026): SILENT is not said, WHEN_IDLE is said after the current turn, INTERRUPT cuts a
running reply short and is said at once; `willContinue` answers all arrive."""

import asyncio

import pytest

from tests.live.conftest import (
    gemini_recv,
    gemini_until,
    receive_until,
    said,
    start_web,
    turn_complete,
    web_client,
    web_turn,
)
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


# --- the web path: a page's own function ----------------------------------------------------


@pytest.fixture
async def page(alice, emulator):
    comm = web_client(alice)
    await start_web(comm, functions=[LIGHTS])
    yield comm
    await comm.disconnect()


async def page_call(comm) -> dict:
    await comm.send_json_to({"type": "text", "text": "call lights {}"})
    got = await receive_until(comm, lambda e: e["type"] == "tool.call")
    return got.events[-1]


async def test_a_page_answer_keeps_silent(page):
    call = await page_call(page)
    await receive_until(page, lambda e: e["type"] == "turn.complete")
    result = {"type": "tool.result", "id": call["id"], "response": {"on": True}}
    await page.send_json_to({**result, "scheduling": "SILENT"})
    assert (await web_turn(page, "next")).finals("model") == ["You said: next"]


async def test_a_page_answer_keeps_when_idle(page):
    call = await page_call(page)
    await receive_until(page, lambda e: e["type"] == "turn.complete")
    result = {"type": "tool.result", "id": call["id"], "response": {"on": True}}
    await page.send_json_to({**result, "scheduling": "WHEN_IDLE"})
    got = await receive_until(page, lambda e: e["type"] == "turn.complete")
    assert got.finals("model") == ['lights returned {"on":true}']


async def test_a_page_can_answer_a_call_more_than_once(page):
    call = await page_call(page)
    await receive_until(page, lambda e: e["type"] == "turn.complete")
    for tick, more in ((1, True), (2, False)):
        result = {"type": "tool.result", "id": call["id"], "response": {"tick": tick}}
        await page.send_json_to({**result, "willContinue": more})
        got = await receive_until(page, lambda e: e["type"] == "turn.complete")
        assert got.finals("model") == [f'lights returned {{"tick":{tick}}}']


async def test_a_bad_scheduling_value_is_refused_by_name(page):
    call = await page_call(page)
    result = {"type": "tool.result", "id": call["id"], "response": {}, "scheduling": "LATER"}
    await page.send_json_to(result)
    got = await receive_until(page, lambda e: e["type"] in ("error", "__close__"))
    assert "`scheduling` is one of SILENT, WHEN_IDLE, INTERRUPT" in str(got.events[-1])
