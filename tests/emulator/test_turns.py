"""Text turns: message order, reply styles per model, modalities, encodings, history."""

import asyncio
import base64
import time

import pytest
from google.genai import types

from tests.emulator.conftest import (
    MODEL_25,
    MODEL_31,
    MODEL_38,
    MODEL_TEXT,
    audio_parts,
    kinds,
    model_text,
    rms,
    sdk_audio,
    sdk_transcript,
    sdk_turn,
    squash,
    text_of,
    tone,
)


async def test_turn_order_in_2_5_style_is_one_field_per_message(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_25, outputAudioTranscription={}, sessionResumption={})
    await client.send(
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "hi"}]}],
                "turnComplete": True,
            }
        }
    )
    messages = await client.until(lambda m: "sessionResumptionUpdate" in m)
    shapes = kinds(messages)
    assert all("+" not in shape or shape == "turnComplete+usage" for shape in shapes)
    assert shapes[0] == "outputTranscription"
    assert shapes[-3:] == ["generationComplete", "turnComplete+usage", "sessionResumptionUpdate"]
    assert set(shapes[:-3]) == {"outputTranscription", "audio"}
    assert text_of(messages) == "You said: hi"
    update = messages[-1]["sessionResumptionUpdate"]
    assert update["resumable"] is True
    assert update["newHandle"]


async def test_turn_order_in_3_x_style_bundles_audio_and_transcription(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, outputAudioTranscription={}, sessionResumption={})
    await client.send({"realtimeInput": {"text": "hello there"}})
    messages = await client.until(lambda m: "sessionResumptionUpdate" in m)
    shapes = squash(kinds(messages))
    assert shapes[0] == "audio+outputTranscription"
    assert shapes[-3:] == [
        "generationComplete",
        "turnComplete+interactionStatus+usage",
        "sessionResumptionUpdate",
    ]
    assert text_of(messages) == "You said: hello there"


async def test_turn_without_transcription_config_sends_no_transcription(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_25)
    await client.send({"realtimeInput": {"text": "quiet please"}})
    messages = await client.turn()
    assert squash(kinds(messages)) == ["audio*", "generationComplete", "turnComplete+usage"]


async def test_turn_without_resumption_config_sends_no_update(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38)
    await client.send({"realtimeInput": {"text": "x"}})
    await client.turn()
    await client.nothing(0.2)


async def test_reply_audio_is_24khz_pcm_and_never_silence(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38)
    await client.send({"realtimeInput": {"text": "make some noise"}})
    parts = audio_parts(await client.turn())
    assert {part["mimeType"] for part in parts} == {"audio/pcm;rate=24000"}
    pcm = b"".join(base64.b64decode(part["data"]) for part in parts)
    assert len(pcm) % 2 == 0
    assert len(pcm) > 24000  # more than half a second of speech
    assert rms(pcm) > 500


async def test_reply_audio_is_sent_faster_than_real_time(start_emulator, raw_client):
    emu = await start_emulator(pace=10.0)
    client = await raw_client(emu)
    await client.setup(MODEL_38)
    started = time.monotonic()
    await client.send({"realtimeInput": {"text": "/long"}})
    messages = await client.turn()
    elapsed = time.monotonic() - started
    audio_seconds = sum(len(base64.b64decode(p["data"])) for p in audio_parts(messages)) / 48000
    assert audio_seconds == pytest.approx(10.0, abs=0.01)
    assert elapsed < audio_seconds / 4


async def test_usage_metadata_counts_prompt_and_response_tokens(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38)
    await client.send({"realtimeInput": {"text": "count my tokens"}})
    usage = (await client.turn())[-1]["usageMetadata"]
    assert usage["promptTokenCount"] == 4  # 15 characters of text
    assert usage["promptTokensDetails"] == [{"modality": "TEXT", "tokenCount": 4}]
    assert usage["responseTokensDetails"][0]["modality"] == "AUDIO"
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["responseTokenCount"]


async def test_text_modality_replies_with_text_parts(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_TEXT, generationConfig={"responseModalities": ["TEXT"]})
    await client.send(
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "write it"}]}],
                "turnComplete": True,
            }
        }
    )
    messages = await client.turn()
    assert model_text(messages) == "You said: write it"
    assert not audio_parts(messages)
    assert messages[-2] == {"serverContent": {"generationComplete": True}}


async def test_client_content_accepts_snake_case_envelope(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_25, output_audio_transcription={})
    await client.send(
        {
            "client_content": {
                "turns": [{"role": "user", "parts": [{"text": "snake"}]}],
                "turn_complete": True,
            }
        }
    )
    assert text_of(await client.turn()) == "You said: snake"


async def test_client_content_without_turn_complete_waits_for_more(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_25, outputAudioTranscription={})
    await client.send(
        {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "first"}]}]}}
    )
    await client.nothing(0.2)
    await client.send({"clientContent": {"turnComplete": True}})
    assert text_of(await client.turn()) == "You said: first"


async def test_client_content_on_3_1_needs_history_config(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_31)
    await client.send(
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "x"}]}],
                "turnComplete": True,
            }
        }
    )
    assert await client.closed() == (1007, "Request contains an invalid argument.")


async def test_client_content_on_3_1_works_with_history_config(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(
        MODEL_31, historyConfig={"initialHistoryInClientContent": True}, outputAudioTranscription={}
    )
    await client.send(
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "seeded"}]}],
                "turnComplete": True,
            }
        }
    )
    assert text_of(await client.turn()) == "You said: seeded"


async def test_history_counts_earlier_user_turns(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, outputAudioTranscription={})
    await client.send(
        {
            "clientContent": {
                "turns": [
                    {"role": "user", "parts": [{"text": "one"}]},
                    {"role": "model", "parts": [{"text": "ok"}]},
                    {"role": "user", "parts": [{"text": "two"}]},
                ]
            }
        }
    )
    await client.send({"realtimeInput": {"text": "three"}})
    await client.turn()
    await client.send({"realtimeInput": {"text": "/history"}})
    assert text_of(await client.turn()) == "history: 3 user turns"


async def test_audio_input_accepts_urlsafe_and_unpadded_base64(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38)
    pcm = b"\xff\xfb\xfe\xff" * 100 + b"\xfb\xff"  # '-' and '_' in URL-safe form, needs padding
    urlsafe = base64.urlsafe_b64encode(pcm).decode().rstrip("=")
    assert "-" in urlsafe or "_" in urlsafe
    await client.send(
        {"realtime_input": {"audio": {"mime_type": "audio/pcm;rate=16000", "data": urlsafe}}}
    )
    standard = base64.b64encode(pcm).decode()
    await client.send(
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": standard}}}
    )
    await client.send({"realtimeInput": {"text": "/history"}})
    await client.turn()
    assert emulator.stats()["total"]["audio_bytes"] == 2 * len(pcm)


async def test_bad_base64_closes_1007(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38)
    await client.send(
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": "@@@"}}}
    )
    code, reason = await client.closed()
    assert code == 1007
    assert "Base64 decoding failed" in reason


async def test_unknown_field_in_realtime_input_closes_1007(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38)
    await client.send(
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm", "data": "", "rate": 1}}}
    )
    assert await client.closed() == (
        1007,
        "Invalid JSON payload received. Unknown name \"rate\" at 'realtime_input.audio': "
        "Cannot find field.",
    )


async def test_function_args_keep_their_own_key_spelling(start_emulator, raw_client):
    emu = await start_emulator()
    client = await raw_client(emu)
    tools = [{"functionDeclarations": [{"name": "f", "behavior": "BLOCKING"}]}]
    await client.setup(MODEL_38, tools=tools, outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": 'call f {"city_name": "Oslo", "maxDays": 2}'}})
    (call_message,) = await client.until(lambda m: "toolCall" in m)
    call = call_message["toolCall"]["functionCalls"][0]
    assert call["args"] == {"city_name": "Oslo", "maxDays": 2}
    await client.send(
        {
            "tool_response": {
                "function_responses": [
                    {"id": call["id"], "name": "f", "response": {"snake_key": 1}}
                ]
            }
        }
    )
    assert text_of(await client.turn()) == 'f returned {"snake_key":1}'


# --- the official SDK ------------------------------------------------------------------


async def test_sdk_text_turn_over_tls(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(
        response_modalities=["AUDIO"], output_audio_transcription=types.AudioTranscriptionConfig()
    )
    async with client.aio.live.connect(model=MODEL_38, config=config) as session:
        assert session.setup_complete is not None
        await session.send_realtime_input(text="Hello emulator")
        messages = await sdk_turn(session)
    assert sdk_transcript(messages) == "You said: Hello emulator"
    assert len(sdk_audio(messages)) > 0
    assert messages[-1].server_content.turn_complete
    assert messages[-1].usage_metadata.total_token_count > 0


async def test_sdk_client_content_and_text_modality(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(response_modalities=["TEXT"])
    async with client.aio.live.connect(model=MODEL_TEXT, config=config) as session:
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="in writing")]),
            turn_complete=True,
        )
        messages = await sdk_turn(session)
    text = "".join(m.text for m in messages if m.text)
    assert text == "You said: in writing"


async def test_sdk_default_api_version_v1_is_served(tls_emulator):
    from tests.emulator.conftest import sdk_client

    emu = await tls_emulator()
    client = sdk_client(emu, version="v1")
    async with client.aio.live.connect(model=MODEL_38) as session:
        await session.send_realtime_input(text="v1 works")
        assert sdk_audio(await sdk_turn(session))


async def test_sdk_works_through_the_plain_ws_connect_patch(emulator, monkeypatch):
    """Recipe B of the protocol doc: the test-only shim that turns wss:// into ws://."""
    from google import genai
    from google.genai import live as genai_live

    original = genai_live.ws_connect

    def plain(uri, **kwargs):
        kwargs.pop("ssl", None)
        return original(uri.replace("wss://", "ws://", 1), **kwargs)

    monkeypatch.setattr(genai_live, "ws_connect", plain)
    client = genai.Client(
        api_key="test-key",
        http_options=types.HttpOptions(base_url=emulator.http_url, api_version="v1beta"),
    )
    async with client.aio.live.connect(model=MODEL_25) as session:
        await session.send_realtime_input(text="plain")
        assert sdk_audio(await sdk_turn(session))


async def test_sdk_mixed_case_audio_messages_are_counted(sdk):
    emu, client = sdk
    async with client.aio.live.connect(model=MODEL_38) as session:
        await session.send_realtime_input(
            audio=types.Blob(data=tone(0.1), mime_type="audio/pcm;rate=16000")
        )
        await session.send_realtime_input(text="/history")
        await sdk_turn(session)
    await asyncio.sleep(0.05)
    assert emu.stats()["total"]["audio_bytes"] == 3200
