"""The Gemini-compatible socket through the consumer (communicator) against the emulator."""

import base64

import pytest

from assistant.models import Conversation, ConversationEvent
from tests.live.conftest import (
    GEMINI_WS,
    MODEL,
    TEXT_MODEL,
    frames,
    gemini_client,
    gemini_recv,
    gemini_until,
    said,
    silence,
    tone,
    turn_complete,
)

pytestmark = pytest.mark.django_db(transaction=True)
Kind = ConversationEvent.Kind


async def open_session(token, setup=None, *, path=GEMINI_WS):
    comm = gemini_client(token, path=path)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"setup": {"model": f"models/{MODEL}", **(setup or {})}})
    first = await gemini_recv(comm)
    assert first == {"setupComplete": {}}, first
    return comm


async def expect_close(comm, code, reason_part=""):
    msg = await gemini_recv(comm)
    while "__close__" not in msg:
        msg = await gemini_recv(comm)
    assert msg["__close__"] == code, msg
    assert reason_part in msg["reason"], msg
    return msg


async def test_text_turn_with_transcription_requested(alice_token, emulator):
    comm = await open_session(alice_token, {"outputAudioTranscription": {}})
    await comm.send_json_to({"realtimeInput": {"text": "hi"}})
    got = await gemini_until(comm, turn_complete)
    assert said(got) == "You said: hi"
    assert any("inlineData" in str(m) for m in got)
    assert all("inputTranscription" not in m.get("serverContent", {}) for m in got)
    await comm.disconnect()


async def test_transcripts_not_requested_are_not_forwarded(alice_token, emulator):
    comm = await open_session(alice_token)
    await comm.send_json_to({"realtimeInput": {"text": "hi"}})
    got = await gemini_until(comm, turn_complete)
    assert said(got) == ""
    assert all("outputTranscription" not in m.get("serverContent", {}) for m in got)
    assert all("sessionResumptionUpdate" not in m for m in got)
    await comm.disconnect()


async def test_legacy_tutorial_client_is_translated(alice_token, emulator):
    """snake_case, lower-case modality, clientContent text, mediaChunks audio+video,
    the per-chunk "continue signal" and the empty end-of-turn message."""
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to(
        {
            "setup": {
                "model": "models/gemini-2.0-flash-exp",  # retired: aliased to the default
                "generation_config": {
                    "response_modalities": ["text"],
                    "speech_config": {
                        "voice_config": {"prebuilt_voice_config": {"voice_name": "Puck"}}
                    },
                },
                "system_instruction": {"role": "user", "parts": [{"text": "Be brief."}]},
            }
        }
    )
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to(
        {
            "client_content": {
                "turns": [{"role": "user", "parts": [{"text": "hello"}]}],
                "turn_complete": True,
            }
        }
    )
    got = await gemini_until(comm, turn_complete)
    # TEXT was asked of an audio-only model: text parts, no audio.
    assert said(got) == "You said: hello"
    assert all("inlineData" not in str(m) for m in got)
    jpeg = base64.b64encode(b"\xff\xd8" + bytes(500)).decode()
    await comm.send_json_to(
        {"realtimeInput": {"mediaChunks": [{"mime_type": "image/jpeg", "data": jpeg}]}}
    )
    for frame in frames(tone(600) + silence(100)):
        data = base64.b64encode(frame).decode()
        await comm.send_json_to(
            {"realtime_input": {"media_chunks": [{"mime_type": "audio/pcm", "data": data}]}}
        )
        await comm.send_json_to(
            {"client_content": {"turns": [{"role": "user", "parts": []}], "turn_complete": False}}
        )
    await comm.send_json_to(
        {"client_content": {"turns": [{"role": "user", "parts": []}], "turn_complete": True}}
    )
    got = await gemini_until(comm, turn_complete)
    assert said(got) == "I heard 0.6 seconds of audio. (I saw 1 frame)"
    stats = emulator.stats()["total"]
    assert stats["video_frames"] == 1
    assert stats["audio_bytes"] == 22400
    await comm.disconnect()


async def test_client_function_round_trip_and_server_tool_hidden(
    alice_token, emulator, weather_http
):
    declaration = {
        "name": "lights",
        "parameters": {"type": "OBJECT", "properties": {"room_name": {"type": "STRING"}}},
        "behavior": "BLOCKING",
    }
    clash = {"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {}}}
    comm = await open_session(
        alice_token,
        {
            "tools": [{"function_declarations": [declaration, clash]}],
            "outputAudioTranscription": {},
        },
    )
    # A server tool: executed by Pastra, never shown to the client.
    await comm.send_json_to({"realtimeInput": {"text": "What is the weather in Paris?"}})
    got = await gemini_until(comm, turn_complete)  # NON_BLOCKING on 3.8: it says it is looking
    assert said(got) == "Calling get_weather."
    result = await gemini_until(comm, turn_complete)  # then the result, in a turn of its own
    assert all("toolCall" not in m for m in got + result)
    assert said(result).startswith('get_weather returned {"location":')
    # A client function: forwarded, answered by the client (snake_case, args untouched).
    await comm.send_json_to({"realtimeInput": {"text": 'call lights {"room_name": "hall"}'}})
    msg = await gemini_recv(comm)
    while "toolCall" not in msg:
        msg = await gemini_recv(comm)
    (call,) = msg["toolCall"]["functionCalls"]
    assert call["args"] == {"room_name": "hall"}
    await comm.send_json_to(
        {
            "tool_response": {
                "function_responses": [
                    {"id": call["id"], "name": "lights", "response": {"is_on": True}}
                ]
            }
        }
    )
    got = await gemini_until(comm, turn_complete)
    assert said(got) == 'lights returned {"is_on":true}'
    await comm.disconnect()
    conversation = await Conversation.objects.aget(user__username="alice")
    assert conversation.has_tool_calls
    events = [
        e async for e in ConversationEvent.objects.filter(conversation=conversation).order_by("seq")
    ]
    calls = [(e.data["name"], e.data["executor"]) for e in events if e.kind == Kind.TOOL_CALL]
    assert calls == [("get_weather", "server"), ("lights", "client")]
    results = [e for e in events if e.kind == Kind.TOOL_RESULT]
    assert results[0].data["ok"] is True
    assert results[0].duration_ms is not None
    assert results[1].data["response"] == {"is_on": True}


async def test_code_execution_parts_are_forwarded(alice_token, emulator):
    # A model with code execution: the emulator's test model (see the web test's note).
    setup = {"model": f"models/{TEXT_MODEL}", "outputAudioTranscription": {}}
    comm = await open_session(alice_token, setup)
    await comm.send_json_to({"realtimeInput": {"text": "compute 6*7"}})
    got = await gemini_until(comm, turn_complete)
    parts = [
        p for m in got for p in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    ]
    assert {"executableCode": {"language": "PYTHON", "code": "print(6*7)"}} in parts
    assert any(p.get("codeExecutionResult", {}).get("output") == "42\n" for p in parts)
    await comm.disconnect()
    conversation = await Conversation.objects.aget(user__username="alice")
    kinds = [e.kind async for e in ConversationEvent.objects.filter(conversation=conversation)]
    assert Kind.CODE_EXECUTION in kinds
    assert Kind.CODE_RESULT in kinds


async def test_model_not_allowed_is_refused_before_upstream(alice_token, emulator):
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to({"setup": {"model": "models/gemini-9-ultra"}})
    await expect_close(comm, 1008, "models/gemini-9-ultra is not found")
    assert emulator.stats()["total"]["setups"] == 0
    await comm.disconnect()


async def test_text_model_gives_text(alice_token, emulator):
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to(
        {"setup": {"model": TEXT_MODEL, "generationConfig": {"responseModalities": ["TEXT"]}}}
    )
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to({"realtimeInput": {"text": "hey"}})
    assert said(await gemini_until(comm, turn_complete)) == "You said: hey"
    await comm.disconnect()


@pytest.mark.parametrize(
    ("token", "code", "reason"),
    [("", 1008, "unregistered callers"), ("pst_not-a-token", 1007, "API key not valid")],
)
async def test_bad_or_missing_token_never_opens_upstream(emulator, token, code, reason):
    comm = gemini_client(token)
    connected, _ = await comm.connect()
    assert connected  # like Google: the upgrade succeeds, the first message is refused
    await comm.send_json_to({"setup": {"model": MODEL}})
    await expect_close(comm, code, reason)
    assert emulator.stats()["total"]["setups"] == 0
    await comm.disconnect()


async def test_token_in_header_and_double_slash_path(alice_token, emulator):
    from channels.testing import WebsocketCommunicator

    from tests.live.conftest import router as make_router

    router = make_router()

    async def double_slash(scope, receive, send):  # what the SDKs send: //ws/...
        return await router({**scope, "path": "/" + scope["path"]}, receive, send)

    headers = [(b"x-goog-api-key", alice_token.encode())]
    comm = WebsocketCommunicator(double_slash, GEMINI_WS, headers=headers)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"setup": {"model": MODEL}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.disconnect()


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        ("{not json", 1007, "Invalid JSON payload"),
        ('{"bogus": {}}', 1007, 'Unknown name "bogus"'),
        ('{"realtimeInput": {"sound": {}}}', 1007, 'Unknown name "sound"'),
        ('{"setup": {"model": "gemini-3.8-live"}}', 1007, "invalid argument"),
    ],
)
async def test_malformed_messages_close_1007(alice_token, emulator, message, code, reason):
    comm = await open_session(alice_token)
    await comm.send_to(text_data=message)
    await expect_close(comm, code, reason)
    await comm.disconnect()


@pytest.mark.parametrize(
    "tools",
    [["not-a-tool"], [{"functionDeclarations": [{"description": "no name"}]}]],
)
async def test_a_setup_with_malformed_tools_closes_1007_before_upstream(
    alice_token, emulator, tools
):
    comm = gemini_client(alice_token)
    assert (await comm.connect())[0]
    await comm.send_json_to({"setup": {"model": f"models/{MODEL}", "tools": tools}})
    await expect_close(comm, 1007, "invalid argument")
    await comm.disconnect()
    assert emulator.stats()["total"]["setups"] == 0


async def test_oversize_audio_closes_1009_and_other_sessions_go_on(alice_token, emulator):
    other = await open_session(alice_token)
    comm = await open_session(alice_token)
    big = base64.b64encode(bytes(40_000)).decode()
    await comm.send_json_to(
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": big}}}
    )
    await expect_close(comm, 1009, "Audio message too large")
    await comm.disconnect()
    await other.send_json_to({"realtimeInput": {"text": "still here"}})
    assert turn_complete((await gemini_until(other, turn_complete))[-1])
    await other.disconnect()


async def test_message_before_setup_is_invalid(alice_token, emulator):
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to({"realtimeInput": {"text": "too early"}})
    await expect_close(comm, 1007, "invalid argument")
    await comm.disconnect()
    assert emulator.stats()["total"]["setups"] == 0


async def test_audio_rate_limit_closes_1008(alice_token, emulator):
    comm = await open_session(alice_token)
    chunk = base64.b64encode(silence(20)).decode()
    message = {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": chunk}}}
    for _ in range(60):
        await comm.send_json_to(message)
    await expect_close(comm, 1008, "Too many audio messages")
    await comm.disconnect()
