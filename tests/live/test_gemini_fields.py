"""The newer server fields on the Gemini path (issue 11), through Pastra against the emulator:
`turnCompleteReason`, `waitingForInput`, `interactionStatus`, `interimInputTranscription`,
`voiceActivity` and `thought` parts reach a Gemini client unchanged, over a raw socket and
through the official SDK (google-genai 3.6.1 types); what the client did not ask for (input
transcription) is still left out."""

import base64

import pytest
from google.genai import types

from tests.live.conftest import MODEL, frames, gemini_until, silence, tone, turn_complete
from tests.live.test_gemini_socket import open_session
from tests.live.test_sdk import client

pytestmark = pytest.mark.django_db(transaction=True)

THINKING = "gemini-3.8-live-extended-thinking"


def content_of(messages: list[dict]) -> list[dict]:
    return [m["serverContent"] for m in messages if "serverContent" in m]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("/refuse", "PROHIBITED_INPUT_CONTENT"),
        ("/reject", "RESPONSE_REJECTED"),
        ("/malformed", "MALFORMED_FUNCTION_CALL"),
    ],
)
async def test_a_refused_turn_keeps_its_reason(alice_token, emulator, text, reason):
    comm = await open_session(alice_token, {"outputAudioTranscription": {}})
    await comm.send_json_to({"realtimeInput": {"text": text}})
    got = content_of(await gemini_until(comm, turn_complete))
    assert got[-1]["turnComplete"] is True
    assert got[-1]["turnCompleteReason"] == reason
    assert got[-1]["interactionStatus"] == "IDLE"  # 3.8 sends it with turnComplete
    assert not any("modelTurn" in c for c in got)  # no content, as Google sends it
    await comm.disconnect()


async def test_waiting_for_input_reaches_the_client(alice_token, emulator):
    comm = await open_session(alice_token)
    await comm.send_json_to({"realtimeInput": {"text": "/wait"}})
    (*_, last) = content_of(await gemini_until(comm, turn_complete))
    assert (last["waitingForInput"], last["turnCompleteReason"]) == (True, "NEED_MORE_INPUT")
    await comm.disconnect()


async def test_thought_parts_reach_the_client(alice_token, emulator, live_settings):
    live_settings.PASTRA_ALLOWED_MODELS = [*live_settings.PASTRA_ALLOWED_MODELS, THINKING]
    comm = await open_session(alice_token, {"model": f"models/{THINKING}"})
    await comm.send_json_to({"realtimeInput": {"text": "hi"}})
    got = content_of(await gemini_until(comm, turn_complete))
    parts = [p for c in got for p in (c.get("modelTurn") or {}).get("parts", ())]
    thoughts = [p for p in parts if p.get("thought")]
    assert thoughts
    assert thoughts[0]["text"]
    assert parts.index(thoughts[0]) < min(i for i, p in enumerate(parts) if "inlineData" in p)
    await comm.disconnect()


async def speak(comm) -> list[dict]:
    for frame in frames(tone(1200) + silence(800)):
        await comm.send_json_to(
            {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": _b64(frame)}}}
        )
    return await gemini_until(comm, turn_complete)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_interim_words_and_voice_activity_reach_a_client_that_asked(alice_token, emulator):
    comm = await open_session(alice_token, {"inputAudioTranscription": {}})
    got = await speak(comm)
    interim = [
        c["interimInputTranscription"]["text"]
        for c in content_of(got)
        if "interimInputTranscription" in c
    ]
    assert interim
    assert all(t.startswith("(speech ") for t in interim)
    activity = [m["voiceActivity"]["type"] for m in got if "voiceActivity" in m]
    assert activity[:2] == ["ACTIVITY_START", "ACTIVITY_END"]
    assert any("inputTranscription" in c for c in content_of(got))
    await comm.disconnect()


async def test_interim_words_are_left_out_for_a_client_that_did_not_ask(alice_token, emulator):
    """Pastra always asks upstream for input transcription (for the record); a client that
    did not ask gets neither the final nor the interim words."""
    comm = await open_session(alice_token)
    got = await speak(comm)
    assert not [
        c for c in content_of(got) if "interimInputTranscription" in c or "inputTranscription" in c
    ]
    assert [m for m in got if "voiceActivity" in m]  # not a transcription: passed on
    await comm.disconnect()


# --- the same through the official SDK -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("settled")
async def test_the_sdk_reads_the_new_fields_through_pastra(pastra_tls, tls_files, alice_token):
    sdk = client(pastra_tls, tls_files, alice_token)
    config = types.LiveConnectConfig(
        response_modalities=["AUDIO"], input_audio_transcription=types.AudioTranscriptionConfig()
    )
    async with sdk.aio.live.connect(model=MODEL, config=config) as session:
        await session.send_realtime_input(text="/refuse")
        messages = [m async for m in session.receive()]
        last = messages[-1].server_content
        assert last.turn_complete
        assert last.turn_complete_reason == types.TurnCompleteReason.PROHIBITED_INPUT_CONTENT
        assert last.interaction_status == types.InteractionStatus.IDLE
        await session.send_realtime_input(text="/wait")
        last = [m async for m in session.receive()][-1].server_content
        assert last.waiting_for_input is True
        assert last.turn_complete_reason == types.TurnCompleteReason.NEED_MORE_INPUT
        for frame in frames(tone(1200) + silence(800)):
            await session.send_realtime_input(
                audio=types.Blob(data=frame, mime_type="audio/pcm;rate=16000")
            )
        messages = [m async for m in session.receive()]
        interim = [
            m.server_content.interim_input_transcription.text
            for m in messages
            if m.server_content and m.server_content.interim_input_transcription
        ]
        assert interim
        kinds = [m.voice_activity.voice_activity_type for m in messages if m.voice_activity]
        assert types.VoiceActivityType.ACTIVITY_START in kinds
