"""The newer server fields through the official SDK: turnCompleteReason, waitingForInput,
interactionStatus, interimInputTranscription, voiceActivity, thought parts, urlContextMetadata."""

import pytest
from google.genai import types

from tests.emulator.conftest import (
    MODEL_25,
    MODEL_38,
    MODEL_TEXT,
    kinds,
    sdk_audio,
    sdk_transcript,
    sdk_turn,
    silence,
    tone,
)

MODEL_38_THINKING = "gemini-3.8-live-extended-thinking"
TRANSCRIBE = types.LiveConnectConfig(output_audio_transcription=types.AudioTranscriptionConfig())


def contents(messages):
    return [m.server_content for m in messages if m.server_content]


# --- turnCompleteReason / waitingForInput --------------------------------------------------


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("/refuse", types.TurnCompleteReason.PROHIBITED_INPUT_CONTENT),
        ("/reject", types.TurnCompleteReason.RESPONSE_REJECTED),
        ("/malformed", types.TurnCompleteReason.MALFORMED_FUNCTION_CALL),
    ],
)
async def test_sdk_refused_turn_has_no_content_and_a_reason(sdk, command, reason):
    _, client = sdk
    async with client.aio.live.connect(model=MODEL_38, config=TRANSCRIBE) as session:
        await session.send_realtime_input(text=command)
        messages = await sdk_turn(session)
    (content,) = contents(messages)
    assert content.turn_complete is True
    assert content.turn_complete_reason == reason
    assert content.model_turn is None
    assert content.waiting_for_input is None


async def test_sdk_wait_sets_waiting_for_input_and_need_more_input(sdk):
    _, client = sdk
    async with client.aio.live.connect(model=MODEL_25, config=TRANSCRIBE) as session:
        await session.send_realtime_input(text="/wait")
        (content,) = contents(await sdk_turn(session))
        assert content.waiting_for_input is True
        assert content.turn_complete_reason == types.TurnCompleteReason.NEED_MORE_INPUT
        assert content.model_turn is None
        await session.send_realtime_input(text="go on")  # the session goes on normally
        assert sdk_transcript(await sdk_turn(session)) == "You said: go on"


# --- interactionStatus ----------------------------------------------------------------------


async def test_sdk_interaction_status_idle_rides_on_3_8_turn_complete_only(sdk):
    _, client = sdk
    async with client.aio.live.connect(model=MODEL_38, config=TRANSCRIBE) as session:
        await session.send_realtime_input(text="hi")
        last = contents(await sdk_turn(session))[-1]
    assert last.turn_complete
    assert last.interaction_status == types.InteractionStatus.IDLE
    async with client.aio.live.connect(model=MODEL_25, config=TRANSCRIBE) as session:
        await session.send_realtime_input(text="hi")
        last = contents(await sdk_turn(session))[-1]
    assert last.turn_complete
    assert last.interaction_status is None


async def test_sdk_in_progress_keeps_receive_going_into_the_queued_result_turn(tls_emulator):
    """A WHEN_IDLE result queued while a reply runs: that reply's turnComplete says
    IN_PROGRESS, so the SDK's receive() (3.x: ends on IDLE if present) runs on into the
    result's turn and stops at its IDLE."""
    from tests.emulator.conftest import sdk_client

    client = sdk_client(await tls_emulator(pace=20.0))
    config = types.LiveConnectConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="fetch")])],
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )
    async with client.aio.live.connect(model=MODEL_38, config=config) as session:
        await session.send_realtime_input(text="call fetch")
        first = await sdk_turn(session)
        assert contents(first)[-1].interaction_status == types.InteractionStatus.IDLE
        call = next(m.tool_call.function_calls[0] for m in first if m.tool_call)
        await session.send_realtime_input(text="/long")
        answered, statuses = False, []
        async for message in session.receive():
            content = message.server_content
            if content and content.model_turn and not answered:
                answered = True
                await session.send_tool_response(
                    function_responses=[
                        types.FunctionResponse(id=call.id, name="fetch", response={"n": 1})
                    ]
                )
            if content and content.turn_complete:
                statuses.append(content.interaction_status)
    assert statuses == [types.InteractionStatus.IN_PROGRESS, types.InteractionStatus.IDLE]


# --- interim transcription and voice activity -------------------------------------------------

VAD = types.RealtimeInputConfig(
    automatic_activity_detection=types.AutomaticActivityDetection(silence_duration_ms=200)
)


async def _speak(client, model):
    config = types.LiveConnectConfig(
        realtime_input_config=VAD, input_audio_transcription=types.AudioTranscriptionConfig()
    )
    speech = silence(0.2) + tone(1.2) + silence(0.3)
    async with client.aio.live.connect(model=model, config=config) as session:
        for offset in range(0, len(speech), 3200):  # 100 ms chunks
            chunk = speech[offset : offset + 3200]
            await session.send_realtime_input(
                audio=types.Blob(data=chunk, mime_type="audio/pcm;rate=16000")
            )
        return await sdk_turn(session)


async def test_sdk_3_8_sends_interim_transcripts_then_the_final_one(sdk):
    _, client = sdk
    messages = await _speak(client, MODEL_38)
    interims = [
        c.interim_input_transcription.text
        for c in contents(messages)
        if c.interim_input_transcription
    ]
    assert interims == ["(speech 0.5 s)", "(speech 1.0 s)"]
    finals = [i for i, c in enumerate(contents(messages)) if c.input_transcription]
    last_interim = max(i for i, c in enumerate(contents(messages)) if c.interim_input_transcription)
    assert finals
    assert last_interim < finals[0]
    assert sdk_transcript(messages, "input_transcription") == "(speech 1.2 s)"


async def test_sdk_3_8_sends_voice_activity_start_and_end_with_offsets(sdk):
    _, client = sdk
    messages = await _speak(client, MODEL_38)
    activity = [
        (m.voice_activity.voice_activity_type, m.voice_activity.audio_offset)
        for m in messages
        if m.voice_activity
    ]
    assert activity == [
        (types.VoiceActivityType.ACTIVITY_START, "0.200s"),
        (types.VoiceActivityType.ACTIVITY_END, "1.400s"),
    ]
    end = next(
        i
        for i, m in enumerate(messages)
        if m.voice_activity
        and m.voice_activity.voice_activity_type == types.VoiceActivityType.ACTIVITY_END
    )
    first_transcript = next(
        i
        for i, m in enumerate(messages)
        if m.server_content and m.server_content.input_transcription
    )
    assert end < first_transcript


async def test_sdk_2_5_sends_neither_interim_transcripts_nor_voice_activity(sdk):
    _, client = sdk
    messages = await _speak(client, MODEL_25)
    assert not [m for m in messages if m.voice_activity]
    assert not [c for c in contents(messages) if c.interim_input_transcription]
    assert sdk_transcript(messages, "input_transcription") == "(speech 1.2 s)"


# --- thought parts ----------------------------------------------------------------------------


async def test_sdk_extended_thinking_sends_a_thought_part_before_the_reply(sdk):
    _, client = sdk
    async with client.aio.live.connect(model=MODEL_38_THINKING, config=TRANSCRIBE) as session:
        await session.send_realtime_input(text="hello")
        messages = await sdk_turn(session)
    parts = [p for c in contents(messages) if c.model_turn for p in c.model_turn.parts]
    assert parts[0].thought is True
    assert parts[0].text
    assert all(p.inline_data for p in parts[1:])  # then the spoken reply
    assert sdk_audio(messages)
    usage = next(m.usage_metadata for m in messages if m.usage_metadata)
    assert usage.thoughts_token_count == 10  # 39 characters of thought / 4
    assert sdk_transcript(messages) == "You said: hello"


async def test_plain_3_8_sends_no_thought_parts(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38)
    await client.send({"realtimeInput": {"text": "hello"}})
    assert "text" not in kinds(await client.turn())


# --- urlContextMetadata -----------------------------------------------------------------------


async def test_sdk_url_context_reports_the_urls_it_read(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(
        response_modalities=["TEXT"], tools=[types.Tool(url_context=types.UrlContext())]
    )
    async with client.aio.live.connect(model=MODEL_TEXT, config=config) as session:
        await session.send_realtime_input(text="summarise https://example.org/a?b=1, please")
        messages = await sdk_turn(session)
        metadata = next(
            c.url_context_metadata for c in contents(messages) if c.url_context_metadata
        )
        (url,) = metadata.url_metadata
        assert url.retrieved_url == "https://example.org/a?b=1"
        assert url.url_retrieval_status == types.UrlRetrievalStatus.URL_RETRIEVAL_STATUS_SUCCESS
        await session.send_realtime_input(text="no link here")
        assert not [c for c in contents(await sdk_turn(session)) if c.url_context_metadata]


async def test_without_url_context_a_url_is_plain_text(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_TEXT, generationConfig={"responseModalities": ["TEXT"]})
    await client.send({"realtimeInput": {"text": "see https://example.org"}})
    assert "urlContextMetadata" not in kinds(await client.turn())
