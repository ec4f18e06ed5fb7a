"""Paths, authentication, setup validation and the close codes a client sees (raw sockets)."""

import json

import pytest
from websockets.exceptions import InvalidStatus

from tests.emulator.conftest import KEY, MODEL_25, MODEL_31, MODEL_38, MODEL_TEXT

NOT_FOUND = (
    "models/{model} is not found for API version {version}, or is not supported for "
    "bidiGenerateContent. Call ListModels to see the list of available models and their "
    "supported methods."
)


@pytest.mark.parametrize("version", ["v1beta", "v1alpha", "v1"])
@pytest.mark.parametrize("slashes", ["/", "//", "///"])
async def test_path_accepts_every_version_and_leading_slashes(
    emulator, raw_client, version, slashes
):
    path = (
        slashes + f"ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
    )
    client = await raw_client(emulator, path=path)
    await client.setup()


async def test_constrained_method_wants_a_token_not_an_api_key(emulator, raw_client):
    """Ephemeral tokens only (tests/emulator/test_tokens.py); a plain key gets 1008
    unregistered callers, as a rejected access_token did at Google [OBS protocol doc 1.2]."""
    path = (
        "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained"
    )
    client = await raw_client(emulator, path=path, query=f"access_token={KEY}")
    await client.send({"setup": {"model": "models/gemini-3.8-live"}})
    code, reason = await client.closed()
    assert (code, reason[:40]) == (1008, "Method doesn't allow unregistered caller")


async def test_unknown_path_is_refused_with_http_404(emulator, raw_client):
    with pytest.raises(InvalidStatus) as refused:
        await raw_client(emulator, path="/ws/google.ai.generativelanguage.v1beta.Other")
    assert refused.value.response.status_code == 404


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        (f"key={KEY}", None),
        ("", {"x-goog-api-key": KEY}),
        (f"access_token={KEY}", None),
        ("", {"Authorization": f"Token {KEY}"}),
        ("", {"Authorization": f"Bearer {KEY}"}),
    ],
    ids=["key-query", "x-goog-api-key", "access_token", "authorization-token", "bearer"],
)
async def test_auth_accepts_every_credential_form(emulator, raw_client, query, headers):
    client = await raw_client(emulator, query=query, headers=headers)
    await client.setup()


async def test_auth_bad_key_closes_1007_after_the_first_message(emulator, raw_client):
    client = await raw_client(emulator, key="wrong")
    await client.send({"setup": {"model": f"models/{MODEL_38}"}})
    assert await client.closed() == (1007, "API key not valid. Please pass a valid API key.")


async def test_auth_missing_key_closes_1008_unregistered_caller(emulator, raw_client):
    client = await raw_client(emulator, key=None)
    await client.send({"setup": {"model": f"models/{MODEL_38}"}})
    code, reason = await client.closed()
    assert code == 1008
    assert reason.startswith("Method doesn't allow unregistered callers")
    assert len(reason.encode()) <= 123


async def test_auth_without_configured_key_accepts_any_key(start_emulator, raw_client):
    emu = await start_emulator(api_key="")
    client = await raw_client(emu, key="anything-at-all")
    await client.setup()


async def test_setup_complete_is_the_first_message_in_a_binary_frame(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send({"setup": {"model": f"models/{MODEL_38}"}})
    raw = await client.ws.recv()
    assert isinstance(raw, bytes)
    assert json.loads(raw) == {"setupComplete": {}}


async def test_frames_knob_sends_text_frames(start_emulator, raw_client):
    emu = await start_emulator(frames="text")
    client = await raw_client(emu, frames="text")
    await client.setup()
    await client.send({"realtimeInput": {"text": "hi"}})
    await client.turn()


async def test_setup_accepts_model_without_models_prefix(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send({"setup": {"model": MODEL_38}})
    assert await client.recv() == {"setupComplete": {}}


async def test_setup_accepts_snake_case_fields_everywhere(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send(
        {
            "setup": {
                "model": f"models/{MODEL_25}",
                "generation_config": {
                    "response_modalities": ["AUDIO"],
                    "speech_config": {
                        "voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}
                    },
                },
                "system_instruction": {"parts": [{"text": "Be brief."}], "role": "user"},
                "realtime_input_config": {
                    "automatic_activity_detection": {
                        "silence_duration_ms": 300,
                        "prefix_padding_ms": 20,
                    }
                },
                "context_window_compression": {
                    "trigger_tokens": 1000,
                    "sliding_window": {"target_tokens": 500},
                },
                "input_audio_transcription": {},
                "output_audio_transcription": {},
                "session_resumption": {},
                "tools": [
                    {
                        "function_declarations": [
                            {
                                "name": "get_weather",
                                "parameters": {
                                    "type": "OBJECT",
                                    "properties": {"city_name": {"type": "STRING"}},
                                },
                            }
                        ]
                    }
                ],
            }
        }
    )
    assert await client.recv() == {"setupComplete": {}}


async def test_setup_must_be_the_first_message(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send({"realtimeInput": {"text": "hello"}})
    assert await client.closed() == (1007, "Request contains an invalid argument.")


async def test_setup_sent_twice_closes_1007(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup()
    await client.send({"setup": {"model": f"models/{MODEL_38}"}})
    assert await client.closed() == (1007, "Request contains an invalid argument.")


async def test_setup_unparsable_json_closes_1007(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send("{not json")
    code, reason = await client.closed()
    assert code == 1007
    assert reason.startswith("Invalid JSON payload received.")


@pytest.mark.parametrize("version", ["v1beta", "v1alpha"])
async def test_setup_unknown_model_closes_1008_not_found_with_path_version(
    emulator, raw_client, version
):
    client = await raw_client(emulator, version=version)
    await client.send({"setup": {"model": "models/gemini-9-imaginary"}})
    code, reason = await client.closed()
    assert code == 1008
    expected = NOT_FOUND.format(model="gemini-9-imaginary", version=version)
    assert reason == expected.encode()[:123].decode()


@pytest.mark.parametrize(
    "model", ["gemini-2.0-flash-exp", "gemini-2.0-flash-live-001", "gemini-live-2.5-flash-preview"]
)
async def test_setup_retired_model_closes_1008_not_found(emulator, raw_client, model):
    client = await raw_client(emulator)
    await client.send({"setup": {"model": f"models/{model}"}})
    code, reason = await client.closed()
    assert code == 1008
    assert reason.startswith(f"models/{model} is not found for API version v1beta")


async def test_setup_unknown_field_in_generation_config_closes_1007_like_google(
    emulator, raw_client
):
    client = await raw_client(emulator)
    await client.send(
        {
            "setup": {
                "model": f"models/{MODEL_38}",
                "generationConfig": {"inputAudioTranscription": {}},
            }
        }
    )
    assert await client.closed() == (
        1007,
        'Invalid JSON payload received. Unknown name "inputAudioTranscription" at '
        "'setup.generation_config': Cannot find field.",
    )


async def test_setup_wrong_nesting_of_voice_closes_1007(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send(
        {
            "setup": {
                "model": f"models/{MODEL_38}",
                "generationConfig": {
                    "speechConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}
                },
            }
        }
    )
    code, reason = await client.closed()
    assert code == 1007
    expected = (
        'Invalid JSON payload received. Unknown name "prebuiltVoiceConfig" at '
        "'setup.generation_config.speech_config': Cannot find field."
    )
    assert reason == expected.encode()[:123].decode()  # close reasons are cut at 123 bytes


async def test_setup_unknown_top_level_field_closes_1007(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send({"setup": {"model": f"models/{MODEL_38}", "turbo": True}})
    assert await client.closed() == (
        1007,
        "Invalid JSON payload received. Unknown name \"turbo\" at 'setup': Cannot find field.",
    )


async def test_setup_system_instruction_as_bare_string_closes_1007(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send({"setup": {"model": f"models/{MODEL_38}", "systemInstruction": "Be nice"}})
    code, reason = await client.closed()
    assert code == 1007
    assert reason.startswith(
        "Invalid JSON payload received. Invalid value at 'setup.system_instruction'"
    )


@pytest.mark.parametrize("model", [MODEL_38, MODEL_31, MODEL_25])
async def test_setup_native_audio_model_refuses_text_modality(emulator, raw_client, model):
    client = await raw_client(emulator)
    await client.send(
        {
            "setup": {
                "model": f"models/{model}",
                "generationConfig": {"responseModalities": ["TEXT"]},
            }
        }
    )
    assert await client.closed() == (1007, "Cannot extract voices from a non-audio request.")


async def test_setup_text_test_model_accepts_text_modality(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_TEXT, generationConfig={"responseModalities": ["TEXT"]})


async def test_setup_two_modalities_close_1007(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send(
        {
            "setup": {
                "model": f"models/{MODEL_TEXT}",
                "generationConfig": {"responseModalities": ["TEXT", "AUDIO"]},
            }
        }
    )
    assert await client.closed() == (1007, "Request contains an invalid argument.")


@pytest.mark.parametrize(
    ("model", "tool"),
    [
        (MODEL_31, {"codeExecution": {}}),
        (MODEL_25, {"codeExecution": {}}),
        (MODEL_38, {"urlContext": {}}),
        (MODEL_38, {"codeExecution": {}}),  # "Not supported" (gemini-3.8-live page, Sept 2026)
    ],
)
async def test_setup_tool_the_model_lacks_closes_1008(emulator, raw_client, model, tool):
    client = await raw_client(emulator)
    await client.send({"setup": {"model": f"models/{model}", "tools": [tool]}})
    assert await client.closed() == (
        1008,
        "Operation is not implemented, or supported, or enabled.",
    )


@pytest.mark.parametrize(
    ("model", "tools"),
    [
        (
            MODEL_38,
            [{"googleSearch": {}}, {"functionDeclarations": [{"name": "f"}]}],
        ),
        (MODEL_31, [{"googleSearch": {}}, {"functionDeclarations": [{"name": "f"}]}]),
        (MODEL_TEXT, [{"codeExecution": {}}, {"urlContext": {}}]),
    ],
)
async def test_setup_tools_the_model_supports_are_accepted(emulator, raw_client, model, tools):
    client = await raw_client(emulator)
    await client.setup(model, tools=tools)


async def test_setup_proactivity_off_is_refused_by_3_8(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send(
        {"setup": {"model": f"models/{MODEL_38}", "proactivity": {"proactiveAudio": False}}}
    )
    assert await client.closed() == (1007, "Request contains an invalid argument.")


async def test_concurrency_limit_closes_1011_resource_exhausted(start_emulator, raw_client):
    emu = await start_emulator(max_sessions=1)
    first = await raw_client(emu)
    await first.setup()
    second = await raw_client(emu)
    await second.send({"setup": {"model": f"models/{MODEL_38}"}})
    code, reason = await second.closed()
    assert code == 1011
    assert "RESOURCE_EXHAUSTED" in reason
    assert len(reason.encode()) <= 123
    await first.close()
    third = await raw_client(emu)
    await third.setup()  # the slot is free again


async def test_stats_endpoint_answers_plain_http_get(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup()
    reader, writer = await __import__("asyncio").open_connection("127.0.0.1", emulator.port)
    writer.write(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"application/json" in head
    stats = json.loads(body)
    assert stats == emulator.stats()
    assert stats["total"]["setups"] == 1
    assert stats["connections"][0]["model"] == MODEL_38
