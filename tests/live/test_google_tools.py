"""Google-run tools as Google documents them per model (issue 11), through Pastra against the
emulator: the deployment's are added only where the model supports them, a client's are
forwarded or refused by name (never dropped), and a setup Gemini refuses because of a tool
Pastra added goes on without it. Also NON_BLOCKING `willContinue` answers, all forwarded."""

import pytest

from assistant.live.gemini import models
from assistant.models import ConversationEvent
from tests.live.conftest import (
    MODEL,
    TEXT_MODEL,
    gemini_client,
    gemini_recv,
    gemini_until,
    said,
    start_web,
    turn_complete,
    web_client,
    web_turn,
)
from tests.live.test_gemini_socket import expect_close, open_session
from tests.live.test_web_socket import events_of

pytestmark = pytest.mark.django_db(transaction=True)

Kind = ConversationEvent.Kind
MODEL_31 = "gemini-3.1-flash-live-preview"


@pytest.fixture
def builtins_on(live_settings):
    live_settings.PASTRA_CODE_EXECUTION = True
    live_settings.PASTRA_GOOGLE_SEARCH = True
    live_settings.PASTRA_URL_CONTEXT = False
    return live_settings


def tool_kinds(setup: dict) -> list[str]:
    return [kind for tool in setup.get("tools", []) for kind in tool]


# --- the deployment's own ------------------------------------------------------------------------


async def test_on_3_8_search_is_added_and_code_execution_is_not(
    alice, emulator, builtins_on, upstream_setups
):
    comm = web_client(alice)
    await start_web(comm)
    (setup,) = upstream_setups
    assert "googleSearch" in tool_kinds(setup)
    assert "codeExecution" not in tool_kinds(setup)  # "Not supported" (3.8 page, Sept 2026)
    grounded = await web_turn(comm, "search for fresh pasta")
    assert grounded.of("grounding"), grounded.types()
    plain = await web_turn(comm, "compute 6*7")
    assert not plain.of("code")
    assert plain.finals("model") == ["You said: compute 6*7"]
    await comm.disconnect()


# --- a Gemini client's own -----------------------------------------------------------------------


async def test_a_client_tool_the_model_lacks_is_refused_by_name(alice_token, emulator, builtins_on):
    comm = gemini_client(alice_token)
    assert (await comm.connect())[0]
    await comm.send_json_to(
        {"setup": {"model": f"models/{MODEL}", "tools": [{"code_execution": {}}]}}
    )
    close = await expect_close(comm, 1008, "codeExecution is not supported by models/")
    assert "Operation is not implemented, or supported, or enabled" in close["reason"]
    assert emulator.stats()["total"]["setups"] == 0


async def test_a_client_tool_the_deployment_does_not_offer_is_refused_by_name(
    alice_token, emulator, builtins_on
):
    builtins_on.PASTRA_GOOGLE_SEARCH = False
    comm = gemini_client(alice_token)
    assert (await comm.connect())[0]
    await comm.send_json_to(
        {"setup": {"model": f"models/{MODEL}", "tools": [{"googleSearch": {}}]}}
    )
    await expect_close(comm, 1008, "googleSearch is not enabled on this Pastra server.")
    assert emulator.stats()["total"]["setups"] == 0


async def test_a_client_tool_offered_and_supported_is_forwarded(
    alice_token, emulator, builtins_on, upstream_setups
):
    builtins_on.PASTRA_URL_CONTEXT = True
    setup = {"model": f"models/{TEXT_MODEL}", "tools": [{"urlContext": {}}]}
    comm = await open_session(alice_token, setup)
    (sent,) = upstream_setups
    assert {"urlContext": {}} in sent["tools"]
    await comm.send_json_to({"realtimeInput": {"text": "search for the tallest tower"}})
    got = await gemini_until(comm, turn_complete)
    assert any("groundingMetadata" in m.get("serverContent", {}) for m in got)
    await comm.disconnect()


async def test_a_client_tool_in_a_context_update_is_refused_by_name(
    alice_token, emulator, builtins_on
):
    comm = await open_session(alice_token)
    await comm.send_json_to({"contextUpdate": {"tools": {"tools": [{"codeExecution": {}}]}}})
    await expect_close(comm, 1008, "codeExecution is not supported")


# --- a refused setup: once more without what Pastra added -----------------------------------


@pytest.fixture
def table_without_3_1(monkeypatch, builtins_on):
    """A model the bridge's table does not know yet (here 3.1, hidden from it): Pastra adds
    every tool it offers, and the emulator (as Google) refuses code execution with 1008."""
    monkeypatch.delitem(models.MODELS, MODEL_31)
    builtins_on.PASTRA_ALLOWED_MODELS = [MODEL, MODEL_31]
    return builtins_on


async def test_a_setup_refused_for_a_tool_pastra_added_goes_on_without_it_web(
    alice, emulator, table_without_3_1, upstream_setups
):
    comm = web_client(alice)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "start", "model": MODEL_31})
    got = await web_turn(comm, "hello", seconds=10)
    (notice,) = got.of("notice")
    assert notice["code"] == "features_unavailable"
    assert notice["features"] == ["codeExecution", "googleSearch"]
    assert notice["message"] == (
        f"Code execution and Google Search are not available with {MODEL_31}: the "
        "conversation goes on without them."
    )
    assert got.finals("model") == ["You said: hello"]
    assert [tool_kinds(s) for s in upstream_setups] == [
        ["functionDeclarations", "codeExecution", "googleSearch"],
        ["functionDeclarations"],
    ]
    ready = next(e for e in got.events if e["type"] == "session" and e["state"] == "ready")
    await comm.disconnect()
    recorded = [e for e in await events_of(ready["conversation"]) if e.kind == Kind.SESSION]
    (left_out,) = [e for e in recorded if e.text == "features_unavailable"]
    assert left_out.data["features"] == ["codeExecution", "googleSearch"]
    assert left_out.data["code"] == 1008


async def test_a_setup_refused_for_a_tool_pastra_added_goes_on_without_it_gemini(
    alice_token, emulator, table_without_3_1
):
    setup = {"model": f"models/{MODEL_31}", "outputAudioTranscription": {}}
    comm = await open_session(alice_token, setup)  # setupComplete: the session lives
    await comm.send_json_to({"realtimeInput": {"text": "hello"}})
    assert said(await gemini_until(comm, turn_complete)) == "You said: hello"
    await comm.disconnect()


async def test_a_refusal_of_the_clients_own_request_still_closes_with_googles_code(
    alice_token, emulator, table_without_3_1
):
    comm = gemini_client(alice_token)
    assert (await comm.connect())[0]
    setup = {"model": f"models/{MODEL_31}", "proactivity": {"proactiveAudio": True}}
    await comm.send_json_to({"setup": setup})  # 3.1 has no proactive audio: the client's
    msg = await gemini_recv(comm)
    assert msg == {"__close__": 1007, "reason": "Request contains an invalid argument."}
    assert emulator.stats()["total"]["setups"] == 0


# --- NON_BLOCKING: every willContinue answer forwarded --------------------------------------------


async def test_every_will_continue_answer_reaches_the_model_and_the_record(alice_token, emulator):
    watch = {"name": "watch", "behavior": "NON_BLOCKING"}
    setup = {"outputAudioTranscription": {}, "tools": [{"functionDeclarations": [watch]}]}
    comm = await open_session(alice_token, setup)
    await comm.send_json_to({"realtimeInput": {"text": "call watch {}"}})
    first = await gemini_until(comm, turn_complete)
    (call,) = [c for m in first if "toolCall" in m for c in m["toolCall"]["functionCalls"]]
    for tick, more in ((1, True), (2, True), (3, False)):
        response = {"id": call["id"], "name": "watch", "response": {"tick": tick}}
        if more:
            response["will_continue"] = True
        await comm.send_json_to({"toolResponse": {"functionResponses": [response]}})
        reply = await gemini_until(comm, turn_complete)
        assert said(reply) == f'watch returned {{"tick":{tick}}}'
    await comm.disconnect()
    conversation = await ConversationEvent.objects.filter(kind=Kind.TOOL_CALL).afirst()
    results = [
        e.data
        async for e in ConversationEvent.objects.filter(
            conversation_id=conversation.conversation_id, kind=Kind.TOOL_RESULT
        ).order_by("seq")
    ]
    assert [(r["response"], r.get("will_continue", False)) for r in results] == [
        ({"tick": 1}, True),
        ({"tick": 2}, True),
        ({"tick": 3}, False),
    ]
