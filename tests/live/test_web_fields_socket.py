"""The newer server fields and the new `start` choices through Pastra's /ws/live/ socket,
against the emulator on a real socket: a refused turn says why (and the record keeps the
reason), "waiting for you", thinking, interim words, the interaction status, and the voice,
language and camera quality reaching the upstream setup."""

import pytest

from assistant.live.gemini.reasons import reason_text
from assistant.models import ConversationEvent
from tests.live.conftest import (
    MODEL,
    frames,
    receive_close,
    receive_until,
    silence,
    start_web,
    tone,
    web_client,
    web_turn,
)
from tests.live.test_web_socket import events_of

pytestmark = pytest.mark.django_db(transaction=True)

Kind = ConversationEvent.Kind
THINKING_MODEL = "gemini-3.8-live-extended-thinking"


async def test_a_refused_message_says_why_and_the_record_keeps_the_reason(alice, emulator):
    comm = web_client(alice)
    ready = await start_web(comm)
    got = await web_turn(comm, "/refuse")
    (refusal,) = got.of("turn.reason")
    assert refusal["reason"] == "PROHIBITED_INPUT_CONTENT"
    assert refusal["message"] == reason_text("PROHIBITED_INPUT_CONTENT")
    assert got.types().index("turn.reason") < got.types().index("turn.complete")
    assert not got.finals("model")  # no reply, and the reason is not dressed up as one
    # The conversation goes on.
    assert (await web_turn(comm, "hello again")).finals("model") == ["You said: hello again"]
    await comm.disconnect()
    events = await events_of(ready["conversation"])
    (error,) = [e for e in events if e.kind == Kind.ERROR]
    assert error.data["turn_complete_reason"] == "PROHIBITED_INPUT_CONTENT"
    assert error.text == reason_text("PROHIBITED_INPUT_CONTENT")
    assert error.turn == next(e.turn for e in events if e.text == "/refuse")
    replies = [e.text for e in events if e.kind == Kind.OUTPUT_TRANSCRIPT]
    assert replies == ["You said: hello again"]


async def test_wait_shows_waiting_for_you_and_is_recorded(alice, emulator):
    comm = web_client(alice)
    ready = await start_web(comm)
    got = await web_turn(comm, "/wait")
    assert got.of("waiting") == [{"type": "waiting", "reason": "NEED_MORE_INPUT"}]
    assert not got.of("turn.reason")  # waiting is not a refusal
    assert not got.finals("model")
    await comm.disconnect()
    events = await events_of(ready["conversation"])
    waits = [e for e in events if e.kind == Kind.SESSION and e.text == "waiting_for_input"]
    assert [e.data["turn_complete_reason"] for e in waits] == ["NEED_MORE_INPUT"]
    assert not [e for e in events if e.kind == Kind.ERROR]


async def test_turn_complete_carries_the_interaction_status(alice, emulator):
    comm = web_client(alice)
    await start_web(comm)
    got = await web_turn(comm, "hello")
    assert got.events[-1]["status"] == "IDLE"
    await comm.disconnect()


async def test_an_extended_thinking_model_shows_work_but_never_its_thoughts(
    alice, emulator, live_settings
):
    live_settings.PASTRA_ALLOWED_MODELS = [MODEL, THINKING_MODEL]
    comm = web_client(alice)
    ready = await start_web(comm, model=THINKING_MODEL)
    got = await web_turn(comm, "tell me a joke")
    types = got.types()
    assert "thinking" in types
    first_reply = next(i for i, e in enumerate(got.events) if e.get("role") == "model")
    assert types.index("thinking") < first_reply
    assert got.finals("model") == ["You said: tell me a joke"]  # the reply alone
    # No thought reaches the page, not even as a streamed fragment.
    model_words = "".join(
        e["text"] for e in got.of("transcript") if e["role"] == "model" and not e["final"]
    )
    assert model_words == "You said: tell me a joke"
    await comm.disconnect()
    events = await events_of(ready["conversation"])
    replies = [
        (e.kind, e.text) for e in events if e.kind in (Kind.OUTPUT_TRANSCRIPT, Kind.MODEL_TEXT)
    ]
    assert replies == [(Kind.OUTPUT_TRANSCRIPT, "You said: tell me a joke")]


async def test_interim_words_and_voice_activity_while_the_user_speaks(alice, emulator):
    comm = web_client(alice)
    await start_web(comm)
    for frame in frames(tone(1500) + silence(800)):
        await comm.send_to(bytes_data=frame)
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", seconds=15)
    interims = [e["text"] for e in got.of("transcript.interim")]
    assert interims, got.types()
    final = got.finals("user")[-1]
    assert final == "(speech 1.5 s)"
    # Interim updates come before the final words, which replace them.
    assert got.types().index("transcript.interim") < next(
        i for i, e in enumerate(got.events) if e["type"] == "transcript" and e["role"] == "user"
    )
    activity = [e["activity"] for e in got.of("voice")]
    assert activity[:1] == ["start"]
    assert "end" in activity
    await comm.disconnect()


async def test_voice_language_and_camera_quality_reach_the_upstream(
    alice, emulator, upstream_setups
):
    comm = web_client(alice)
    ready = await start_web(comm, voice="sulafat", language="de-DE", media_resolution="low")
    assert ready["voice"] == "Sulafat"
    got = await web_turn(comm, "hallo")
    assert got.finals("model") == ["You said: hallo"]  # the emulator accepted that setup
    await comm.disconnect()
    (setup,) = upstream_setups
    generation = setup["generationConfig"]
    assert generation["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"] == {
        "voiceName": "Sulafat"
    }
    assert generation["speechConfig"]["languageCode"] == "de-DE"
    assert generation["mediaResolution"] == "MEDIA_RESOLUTION_LOW"


async def test_automatic_language_and_default_quality_leave_the_fields_out(
    alice, emulator, upstream_setups
):
    comm = web_client(alice)
    await start_web(comm, language="automatic")
    await comm.disconnect()
    (setup,) = upstream_setups
    assert "languageCode" not in setup["generationConfig"]["speechConfig"]
    assert "mediaResolution" not in setup["generationConfig"]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"voice": "Nobody"}, "prebuilt voices"),
        ({"language": "klingon"}, "BCP-47"),
        ({"media_resolution": "ultra"}, "`low`, `medium` or `high`"),
    ],
)
async def test_an_unknown_choice_closes_before_any_upstream(alice, emulator, options, says):
    comm = web_client(alice)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "start", **options})
    events, code = await receive_close(comm)
    assert code == 4400
    assert says in events[-1]["message"]
    assert emulator.stats()["total"]["setups"] == 0
