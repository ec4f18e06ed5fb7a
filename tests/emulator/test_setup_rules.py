"""Per-model setup rules through the official SDK: thinking, affective dialog, proactivity,
SDK-only fields, voices, mediaResolution and turnCoverage (with their token accounting)."""

import typing

import pydantic
import pytest
from google.genai import errors, types

from gemini_emulator import schema
from gemini_emulator.protocol import to_camel
from tests.emulator.conftest import (
    MODEL_25,
    MODEL_31,
    MODEL_38,
    sdk_transcript,
    sdk_turn,
    silence,
    tone,
)

MODEL_38_THINKING = "gemini-3.8-live-extended-thinking"
INVALID = "Request contains an invalid argument."
JPEG = b"\xff\xd8\xff\xe0fake\xff\xd9"


async def refused(client, model, config) -> errors.APIError:
    with pytest.raises(errors.APIError) as caught:  # noqa: PT012 - connect, then the turn
        async with client.aio.live.connect(model=model, config=config) as session:
            await session.send_realtime_input(text="hello")
            await sdk_turn(session)
    return caught.value


async def answered(client, model, config, text="hello") -> list:
    async with client.aio.live.connect(model=model, config=config) as session:
        await session.send_realtime_input(text=text)
        return await sdk_turn(session)


TRANSCRIBE = {"output_audio_transcription": types.AudioTranscriptionConfig()}


# --- thinkingConfig, affective dialog, proactivity ------------------------------------------


@pytest.mark.parametrize("model", [MODEL_38, MODEL_38_THINKING])
async def test_sdk_thinking_config_is_refused_on_3_8(sdk, model):
    # gemini-3.8-live migration notes (Sept 2026): thinkingConfig not supported, omit it.
    _, client = sdk
    config = types.LiveConnectConfig(thinking_config=types.ThinkingConfig(thinking_budget=0))
    error = await refused(client, model, config)
    assert (error.code, INVALID in str(error)) == (1007, True)


@pytest.mark.parametrize(
    ("model", "thinking"),
    [
        (MODEL_25, types.ThinkingConfig(thinking_budget=0, include_thoughts=False)),
        (MODEL_31, types.ThinkingConfig(thinking_level="minimal")),
    ],
)
async def test_sdk_thinking_config_is_accepted_where_google_allows_it(sdk, model, thinking):
    _, client = sdk
    config = types.LiveConnectConfig(thinking_config=thinking, **TRANSCRIBE)
    assert sdk_transcript(await answered(client, model, config)) == "You said: hello"


@pytest.mark.parametrize("value", [True, False])
async def test_sdk_affective_dialog_is_refused_on_3_8_even_false(sdk, value):
    _, client = sdk
    error = await refused(client, MODEL_38, types.LiveConnectConfig(enable_affective_dialog=value))
    assert error.code == 1007
    assert INVALID in str(error)


async def test_sdk_affective_dialog_and_proactivity_work_on_2_5(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(
        enable_affective_dialog=True,
        proactivity=types.ProactivityConfig(proactive_audio=True),
        **TRANSCRIBE,
    )
    assert sdk_transcript(await answered(client, MODEL_25, config)) == "You said: hello"


async def test_sdk_proactive_audio_false_is_an_error_on_3_8(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(proactivity=types.ProactivityConfig(proactive_audio=False))
    error = await refused(client, MODEL_38, config)
    assert error.code == 1007
    assert INVALID in str(error)


# --- every field the SDK can send is known ------------------------------------------------


async def test_sdk_interim_transcript_timestamp_enabled_is_accepted(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(
        realtime_input_config=types.RealtimeInputConfig(interim_transcript_timestamp_enabled=True),
        **TRANSCRIBE,
    )
    assert sdk_transcript(await answered(client, MODEL_38, config)) == "You said: hello"


# Fields the SDK refuses itself in Gemini-API mode (ValueError in _live_converters.py).
SDK_REFUSES = {
    "setup.sessionResumption.transparent",
    "setup.tools.retrieval",
    "setup.tools.enterpriseWebSearch",
    "setup.tools.parallelAiSearch",
    "setup.tools.exaAiSearch",
}


def _model_of(annotation):
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, list) and args:
        return _model_of(args[0])
    return annotation


def _missing(model, msg, path) -> list[str]:
    if isinstance(msg, schema.Rep):
        msg = msg.item
    if not isinstance(msg, schema.Msg):
        return []
    found = []
    for name, field in model.model_fields.items():
        if name == "http_options":
            continue
        camel, where = to_camel(name), f"{path}.{to_camel(name)}"
        if camel not in msg.fields:
            found.append(where)
            continue
        inner = _model_of(field.annotation)
        if isinstance(inner, type) and issubclass(inner, pydantic.BaseModel):
            found += _missing(inner, msg.fields[camel], where)
    return found


def test_the_schema_knows_every_setup_field_google_genai_can_send():
    """google-genai 3.6.1 `_LiveConnectConfig_to_mldev` passes these pydantic types through
    (snake_case dumps): every field of theirs must be a known name, or the SDK's own valid
    setup would close 1007 "Unknown name"."""
    setup = schema.SETUP.fields
    roots = [
        (types.GenerationConfig, setup["generationConfig"], "setup.generationConfig"),
        (types.SpeechConfig, schema.SPEECH_CONFIG, "setup.generationConfig.speechConfig"),
        (types.RealtimeInputConfig, setup["realtimeInputConfig"], "setup.realtimeInputConfig"),
        (types.ContextWindowCompressionConfig, setup["contextWindowCompression"], "setup.cwc"),
        (types.ProactivityConfig, setup["proactivity"], "setup.proactivity"),
        (types.HistoryConfig, setup["historyConfig"], "setup.historyConfig"),
        (types.SessionResumptionConfig, setup["sessionResumption"], "setup.sessionResumption"),
        (types.Tool, schema.TOOL, "setup.tools"),
        (types.Content, schema.CONTENT, "setup.systemInstruction"),
        (types.FunctionResponse, schema.FUNCTION_RESPONSE, "toolResponse.functionResponses"),
    ]
    missing = {name for root in roots for name in _missing(*root)}
    assert missing == SDK_REFUSES
    for field in types.LiveConnectConfig.model_fields:  # top level: each one is mapped
        assert field in {"http_options", "explicit_vad_signal"} or any(
            to_camel(field) in container for container in (setup, schema.GENERATION_CONFIG.fields)
        ), field


# --- voices -------------------------------------------------------------------------------


def _voice(name: str) -> types.LiveConnectConfig:
    return types.LiveConnectConfig(
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=name)
            )
        ),
        **TRANSCRIBE,
    )


@pytest.mark.parametrize("name", ["Sulafat", "aoede", "ZUBENELGENUBI", "Kore"])
async def test_sdk_any_of_the_30_voices_in_any_case_is_accepted(sdk, name):
    _, client = sdk
    assert sdk_transcript(await answered(client, MODEL_38, _voice(name))) == "You said: hello"


async def test_sdk_unknown_voice_is_refused_1007(sdk):
    _, client = sdk
    error = await refused(client, MODEL_38, _voice("Robotron"))
    assert error.code == 1007
    assert INVALID in str(error)


# --- mediaResolution -------------------------------------------------------------------------


def _video_tokens(messages) -> int | None:
    usage = next(m.usage_metadata for m in messages if m.usage_metadata)
    details = usage.prompt_tokens_details or []
    return next((d.token_count for d in details if d.modality == types.MediaModality.VIDEO), None)


@pytest.mark.parametrize(
    ("resolution", "per_frame"),
    [
        (None, 258),
        ("MEDIA_RESOLUTION_UNSPECIFIED", 258),
        ("MEDIA_RESOLUTION_LOW", 64),
        ("MEDIA_RESOLUTION_MEDIUM", 256),
        ("MEDIA_RESOLUTION_HIGH", 256),
    ],
)
async def test_sdk_video_tokens_follow_media_resolution(sdk, resolution, per_frame):
    _, client = sdk
    config = types.LiveConnectConfig(media_resolution=resolution)
    async with client.aio.live.connect(model=MODEL_38, config=config) as session:
        for _ in range(2):
            await session.send_realtime_input(video=types.Blob(data=JPEG, mime_type="image/jpeg"))
        await session.send_realtime_input(text="look")
        assert _video_tokens(await sdk_turn(session)) == 2 * per_frame


async def test_bad_media_resolution_closes_1007_with_the_invalid_value_reason(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send(
        {"setup": {"model": f"models/{MODEL_38}", "generationConfig": {"mediaResolution": "ULTRA"}}}
    )
    code, reason = await client.closed()
    assert code == 1007
    assert reason.startswith(
        "Invalid JSON payload received. Invalid value at "
        "'setup.generation_config.media_resolution' (type.googleapis.com/"
    )


# --- turnCoverage -----------------------------------------------------------------------------

FAST = types.AutomaticActivityDetection(silence_duration_ms=200)


async def _frames_then_speech(client, model, coverage):
    """One frame before speech, one during it; an audio turn; what the turn counted."""
    config = types.LiveConnectConfig(
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=FAST, turn_coverage=coverage
        ),
        **TRANSCRIBE,
    )
    blob = types.Blob(data=JPEG, mime_type="image/jpeg")
    async with client.aio.live.connect(model=model, config=config) as session:
        await session.send_realtime_input(
            audio=types.Blob(data=silence(0.4), mime_type="audio/pcm")
        )
        await session.send_realtime_input(video=blob)
        await session.send_realtime_input(audio=types.Blob(data=tone(0.5), mime_type="audio/pcm"))
        await session.send_realtime_input(video=blob)
        await session.send_realtime_input(
            audio=types.Blob(data=silence(0.4), mime_type="audio/pcm")
        )
        messages = await sdk_turn(session)
    usage = next(m.usage_metadata for m in messages if m.usage_metadata)
    audio = next(
        d.token_count
        for d in usage.prompt_tokens_details
        if d.modality == types.MediaModality.AUDIO
    )
    return sdk_transcript(messages), audio


@pytest.mark.parametrize(
    ("model", "coverage", "frames", "audio_tokens"),
    [
        # 3.8's default (model page, Sept 2026): all video, audio activity only.
        (MODEL_38, None, 2, 12),
        # 2.5's default (SDK TurnCoverage: "the default behavior"): only activity.
        (MODEL_25, None, 1, 12),
        (MODEL_38, "TURN_INCLUDES_ONLY_ACTIVITY", 1, 12),
        (MODEL_38, "TURN_INCLUDES_ALL_INPUT", 2, 32),  # silence counts: 1.3 s x 25
        (MODEL_38, "TURN_COVERAGE_UNSPECIFIED", 2, 12),
    ],
)
async def test_sdk_turn_coverage_decides_what_the_turn_includes(
    sdk, model, coverage, frames, audio_tokens
):
    _, client = sdk
    text, audio = await _frames_then_speech(client, model, coverage)
    plural = "frame" if frames == 1 else "frames"
    assert text == f"I heard 0.5 seconds of audio. (I saw {frames} {plural})"
    assert audio == audio_tokens


async def test_bad_turn_coverage_closes_1007(emulator, raw_client):
    client = await raw_client(emulator)
    config = {"turnCoverage": "TURN_INCLUDES_EVERYTHING"}
    await client.send({"setup": {"model": f"models/{MODEL_38}", "realtimeInputConfig": config}})
    code, reason = await client.closed()
    assert code == 1007
    assert "'setup.realtime_input_config.turn_coverage'" in reason
