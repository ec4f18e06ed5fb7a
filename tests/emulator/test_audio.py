"""Audio and video input: energy VAD, manual activity, barge-in, media chunks, frames."""

import base64

import pytest
from google.genai import errors, types

from tests.emulator.conftest import (
    MODEL_25,
    MODEL_38,
    MODEL_TEXT,
    kinds,
    sdk_audio,
    sdk_transcript,
    sdk_turn,
    silence,
    text_of,
    tone,
)

FAST_VAD = {"automaticActivityDetection": {"silenceDurationMs": 200, "prefixPaddingMs": 20}}


def audio_message(pcm: bytes, rate: int = 16000) -> dict:
    data = base64.b64encode(pcm).decode()
    return {"realtimeInput": {"audio": {"mimeType": f"audio/pcm;rate={rate}", "data": data}}}


async def stream(client, pcm: bytes, chunk_seconds: float = 0.1, rate: int = 16000) -> None:
    step = int(rate * chunk_seconds) * 2
    for offset in range(0, len(pcm), step):
        await client.send(audio_message(pcm[offset : offset + step], rate))


async def test_vad_speech_then_silence_makes_an_audio_turn(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(
        MODEL_25,
        realtimeInputConfig=FAST_VAD,
        inputAudioTranscription={},
        outputAudioTranscription={},
    )
    await stream(client, silence(0.3) + tone(1.0) + silence(0.3))
    messages = await client.turn()
    assert kinds(messages)[0] == "inputTranscription"
    assert text_of(messages, "inputTranscription") == "(speech 1.0 s)"
    assert text_of(messages) == "I heard 1.0 seconds of audio."


async def test_vad_honours_silence_duration(emulator, raw_client):
    client = await raw_client(emulator)
    vad = {"automaticActivityDetection": {"silenceDurationMs": 800}}
    await client.setup(MODEL_25, realtimeInputConfig=vad, outputAudioTranscription={})
    await stream(client, tone(0.5) + silence(0.6))
    await client.nothing(0.2)  # 600 ms of silence is a pause, not the end
    await stream(client, tone(0.5) + silence(0.8))
    assert text_of(await client.turn()) == "I heard 1.6 seconds of audio."


async def test_vad_prefix_padding_ignores_short_blips(emulator, raw_client):
    client = await raw_client(emulator)
    vad = {"automaticActivityDetection": {"silenceDurationMs": 200, "prefixPaddingMs": 200}}
    await client.setup(MODEL_25, realtimeInputConfig=vad)
    await stream(client, tone(0.1) + silence(0.5))  # 100 ms < 200 ms prefix: not speech
    await client.nothing(0.2)
    await stream(client, tone(0.4) + silence(0.3))
    await client.turn()


async def test_vad_ignores_quiet_noise(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, realtimeInputConfig=FAST_VAD)
    await stream(client, tone(1.0, amplitude=200) + silence(0.5))
    await client.nothing(0.2)


async def test_vad_audio_at_another_sample_rate_is_measured_correctly(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_25, realtimeInputConfig=FAST_VAD, inputAudioTranscription={})
    await stream(client, tone(0.8, rate=24000) + silence(0.3, rate=24000), rate=24000)
    assert text_of(await client.turn(), "inputTranscription") == "(speech 0.8 s)"


async def test_audio_stream_end_ends_the_running_utterance(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_25, inputAudioTranscription={}, outputAudioTranscription={})
    await stream(client, tone(0.7))  # default silenceDurationMs is 500: no end yet
    await client.nothing(0.2)
    await client.send({"realtimeInput": {"audioStreamEnd": True}})
    messages = await client.turn()
    assert text_of(messages, "inputTranscription") == "(speech 0.7 s)"


async def test_manual_vad_turn_is_bracketed_by_activity_start_and_end(emulator, raw_client):
    client = await raw_client(emulator)
    manual = {"automaticActivityDetection": {"disabled": True}}
    await client.setup(
        MODEL_38,
        realtimeInputConfig=manual,
        inputAudioTranscription={},
        outputAudioTranscription={},
    )
    await client.send({"realtimeInput": {"activityStart": {}}})
    await stream(client, silence(0.5) + tone(0.5))  # energy does not matter in manual mode
    # 3.8 sends interim transcripts while the activity runs, nothing else before activityEnd.
    interims = [await client.recv(), await client.recv()]
    assert text_of(interims, "interimInputTranscription") == "(speech 0.5 s)(speech 1.0 s)"
    await client.nothing(0.2)
    await client.send({"realtimeInput": {"activityEnd": {}}})
    messages = await client.turn()
    assert text_of(messages, "inputTranscription") == "(speech 1.0 s)"
    assert text_of(messages) == "I heard 1.0 seconds of audio."


async def test_manual_vad_audio_before_activity_start_closes_1007(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(
        MODEL_38, realtimeInputConfig={"automaticActivityDetection": {"disabled": True}}
    )
    await client.send(audio_message(tone(0.1)))
    assert await client.closed() == (1007, "Request contains an invalid argument.")


async def test_activity_start_with_automatic_vad_closes_1007(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38)
    await client.send({"realtimeInput": {"activityStart": {}}})
    assert await client.closed() == (1007, "Request contains an invalid argument.")


async def test_odd_length_audio_closes_1007_bad_audio(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38)
    await client.send(audio_message(b"\x01\x02\x03"))
    code, reason = await client.closed()
    assert code == 1007
    assert reason.startswith("error when processing input audio")


async def test_media_chunks_close_1007_on_newer_models(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38)
    data = base64.b64encode(tone(0.1)).decode()
    await client.send(
        {"realtimeInput": {"mediaChunks": [{"mimeType": "audio/pcm;rate=16000", "data": data}]}}
    )
    assert await client.closed() == (
        1007,
        "realtime_input.media_chunks is deprecated. Use audio, video, or text instead.",
    )


async def test_media_chunks_still_work_on_2_5_models(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_25, realtimeInputConfig=FAST_VAD, inputAudioTranscription={})
    pcm = tone(0.5) + silence(0.3)
    data = base64.b64encode(pcm).decode()
    await client.send(
        {"realtimeInput": {"mediaChunks": [{"mimeType": "audio/pcm;rate=16000", "data": data}]}}
    )
    assert text_of(await client.turn(), "inputTranscription") == "(speech 0.5 s)"


async def test_video_frames_are_counted_and_acknowledged_in_the_reply(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, outputAudioTranscription={})
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9").decode()
    for _ in range(3):
        await client.send({"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": jpeg}}})
    await client.send({"realtimeInput": {"text": "what do you see"}})
    messages = await client.turn()
    assert text_of(messages) == "You said: what do you see (I saw 3 frames)"
    assert messages[-1]["usageMetadata"]["promptTokensDetails"][-1] == {
        "modality": "VIDEO",
        "tokenCount": 3 * 258,
    }
    await client.send({"realtimeInput": {"text": "and now"}})
    assert text_of(await client.turn()) == "You said: and now"  # frames are per turn
    assert emulator.stats()["total"]["video_frames"] == 3


# --- barge-in ---------------------------------------------------------------------------


async def test_barge_in_by_speech_interrupts_a_long_reply(start_emulator, raw_client):
    emu = await start_emulator(pace=20.0)
    client = await raw_client(emu)
    await client.setup(
        MODEL_25,
        realtimeInputConfig=FAST_VAD,
        outputAudioTranscription={},
        inputAudioTranscription={},
    )
    await client.send({"realtimeInput": {"text": "/long"}})
    await client.until(lambda m: "modelTurn" in m.get("serverContent", {}))
    await stream(client, tone(0.4))
    reply = await client.turn()
    shapes = kinds(reply)
    assert shapes[-2:] == ["interrupted", "turnComplete+usage"]
    assert "generationComplete" not in shapes
    sent_audio = sum(
        len(base64.b64decode(p["inlineData"]["data"]))
        for m in reply
        for p in m.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
    )
    assert sent_audio < 10 * 48000 / 2  # stopped well before the 10 s were out
    await stream(client, silence(0.3))
    answer = await client.turn()
    assert text_of(answer) == "I heard 0.4 seconds of audio."


async def test_barge_in_by_client_content_interrupts(start_emulator, raw_client):
    emu = await start_emulator(pace=20.0)
    client = await raw_client(emu)
    await client.setup(MODEL_TEXT, outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "/long"}})
    await client.until(lambda m: "modelTurn" in m.get("serverContent", {}))
    await client.send(
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "stop"}]}],
                "turnComplete": True,
            }
        }
    )
    interrupted = await client.turn()
    assert kinds(interrupted)[-2:] == ["interrupted", "turnComplete+usage"]
    assert text_of(await client.turn()) == "You said: stop"


async def test_barge_in_by_realtime_text_ends_the_turn_before_answering(start_emulator, raw_client):
    emu = await start_emulator(pace=20.0)
    client = await raw_client(emu)
    await client.setup(MODEL_38, outputAudioTranscription={}, sessionResumption={})
    await client.send({"realtimeInput": {"text": "/long"}})
    await client.until(lambda m: "modelTurn" in m.get("serverContent", {}))
    await client.send({"realtimeInput": {"text": "/history"}})
    await client.until(lambda m: "sessionResumptionUpdate" in m)
    assert text_of(await client.turn()) == "history: 1 user turns"


async def test_no_interruption_mode_finishes_the_reply(start_emulator, raw_client):
    emu = await start_emulator(pace=40.0)
    client = await raw_client(emu)
    config = {**FAST_VAD, "activityHandling": "NO_INTERRUPTION"}
    await client.setup(MODEL_25, realtimeInputConfig=config, outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "/long"}})
    await client.until(lambda m: "modelTurn" in m.get("serverContent", {}))
    await stream(client, tone(0.3) + silence(0.3))
    first = await client.turn()
    assert "interrupted" not in kinds(first)
    assert "generationComplete" in kinds(first)
    assert text_of(await client.turn()) == "I heard 0.3 seconds of audio."


# --- the official SDK ------------------------------------------------------------------


async def test_sdk_audio_turn_with_transcriptions(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(
        response_modalities=["AUDIO"],
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(silence_duration_ms=200)
        ),
    )
    async with client.aio.live.connect(model=MODEL_25, config=config) as session:
        pcm = tone(1.2) + silence(0.3)
        for offset in range(0, len(pcm), 3200):
            await session.send_realtime_input(
                audio=types.Blob(data=pcm[offset : offset + 3200], mime_type="audio/pcm;rate=16000")
            )
        messages = await sdk_turn(session)
    assert sdk_transcript(messages, "input_transcription") == "(speech 1.2 s)"
    assert sdk_transcript(messages) == "I heard 1.2 seconds of audio."
    assert len(sdk_audio(messages)) > 48000


async def test_sdk_manual_activity_and_barge_in(tls_emulator):
    from tests.emulator.conftest import sdk_client

    emu = await tls_emulator(pace=20.0)
    client = sdk_client(emu)
    config = types.LiveConnectConfig(
        output_audio_transcription=types.AudioTranscriptionConfig(),
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        ),
    )
    async with client.aio.live.connect(model=MODEL_38, config=config) as session:
        await session.send_realtime_input(text="/long")
        messages = []
        async for message in session.receive():
            messages.append(message)
            if len(messages) == 3:
                await session.send_realtime_input(activity_start=types.ActivityStart())
        assert messages[-2].server_content.interrupted
        assert not any(m.server_content.generation_complete for m in messages if m.server_content)
        await session.send_realtime_input(
            audio=types.Blob(data=tone(0.5), mime_type="audio/pcm;rate=16000")
        )
        await session.send_realtime_input(activity_end=types.ActivityEnd())
        assert sdk_transcript(await sdk_turn(session)) == "I heard 0.5 seconds of audio."


async def test_sdk_audio_stream_end_and_video(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(output_audio_transcription=types.AudioTranscriptionConfig())
    async with client.aio.live.connect(model=MODEL_38, config=config) as session:
        await session.send_realtime_input(
            video=types.Blob(data=b"\xff\xd8\xff\xd9", mime_type="image/jpeg")
        )
        await session.send_realtime_input(
            audio=types.Blob(data=tone(0.6), mime_type="audio/pcm;rate=16000")
        )
        await session.send_realtime_input(audio_stream_end=True)
        messages = await sdk_turn(session)
    assert sdk_transcript(messages) == "I heard 0.6 seconds of audio. (I saw 1 frame)"


async def test_sdk_media_chunks_are_rejected_by_3_8(sdk):
    _, client = sdk
    async with client.aio.live.connect(model=MODEL_38) as session:
        await session.send_realtime_input(
            media=types.Blob(data=tone(0.1), mime_type="audio/pcm;rate=16000")
        )
        with pytest.raises(errors.APIError) as closed:
            await sdk_turn(session)
    assert closed.value.code == 1007
    assert "media_chunks is deprecated" in str(closed.value.details)


async def test_playback_wait_holds_turn_complete_and_allows_late_barge_in(
    start_emulator, raw_client
):
    emu = await start_emulator(playback_wait=True)
    client = await raw_client(emu)
    await client.setup(MODEL_38, realtimeInputConfig=FAST_VAD)
    await client.send({"realtimeInput": {"text": "a short answer please"}})
    await client.until(lambda m: m.get("serverContent", {}).get("generationComplete"))
    await client.nothing(0.3)  # the audio is still "playing"
    await stream(client, tone(0.2))
    # voiceActivity (3.8) announces the speech that interrupts.
    assert kinds(await client.turn()) == [
        "voiceActivity",
        "interrupted",
        "turnComplete+interactionStatus+usage",
    ]
