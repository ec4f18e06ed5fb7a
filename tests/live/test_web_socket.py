"""The web UI's socket (/ws/live/) end to end against the emulator on a real socket."""

import pytest

from assistant.models import Conversation, ConversationEvent
from tests.live.conftest import (
    TEXT_MODEL,
    frames,
    long_reply_playing,
    receive_until,
    silence,
    start_web,
    tone,
    wait_for,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)

Kind = ConversationEvent.Kind


async def events_of(conversation_id):
    from channels.db import database_sync_to_async

    @database_sync_to_async
    def read():
        return list(
            ConversationEvent.objects.filter(conversation_id=conversation_id).order_by("seq")
        )

    return await read()


async def test_text_turn_is_answered_with_audio_and_transcripts_and_recorded(alice, emulator):
    comm = web_client(alice)
    ready = await start_web(comm)
    assert ready["model"] == "gemini-3.8-live"
    got = await web_turn(comm, "hello there")
    assert got.audio, "model audio reached the browser"
    assert got.finals("model") == ["You said: hello there"]
    await comm.disconnect()

    conversation = await Conversation.objects.aget(pk=ready["conversation"])
    assert conversation.status == Conversation.Status.ENDED
    assert conversation.seconds_used > 0
    events = await events_of(conversation.pk)
    kinds = [e.kind for e in events]
    assert kinds[0] == Kind.SESSION
    texts = [(e.kind, e.text) for e in events if e.kind in (Kind.USER_TEXT, Kind.OUTPUT_TRANSCRIPT)]
    assert texts == [
        (Kind.USER_TEXT, "hello there"),
        (Kind.OUTPUT_TRANSCRIPT, "You said: hello there"),
    ]
    assert Kind.USAGE in kinds
    assert conversation.title == "hello there"


async def test_text_modality_on_a_text_model(alice, emulator):
    comm = web_client(alice)
    await start_web(comm, modality="text", model=TEXT_MODEL)
    got = await web_turn(comm, "in writing")
    assert not got.audio
    assert got.finals("model") == ["You said: in writing"]
    await comm.disconnect()


async def test_text_modality_on_an_audio_only_model_drops_audio(alice, emulator):
    comm = web_client(alice)
    await start_web(comm, modality="text")
    got = await web_turn(comm, "quietly")
    assert not got.audio
    assert got.finals("model") == ["You said: quietly"]
    await comm.disconnect()


async def test_audio_turn_with_barge_in(alice, start_emulator):
    emulator = await start_emulator(pace=4.0)
    comm = web_client(alice)
    ready = await start_web(comm)
    got = await long_reply_playing(comm)  # some model audio is playing...
    # ...and the user talks over it: 0.8 s of speech, then silence.
    for frame in frames(tone(800) + silence(700)):
        await comm.send_to(bytes_data=frame)
    got = await receive_until(comm, lambda e: e["type"] == "interrupted", into=got)
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    assert got.events[-1]["interrupted"] is True
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    assert got.finals("user")[-1] == "(speech 0.8 s)"
    assert got.finals("model")[-1] == "I heard 0.8 seconds of audio."
    assert emulator.stats()["total"]["audio_bytes"] >= 48000
    await comm.disconnect()
    kinds = [e.kind for e in await events_of(ready["conversation"])]
    assert kinds.count(Kind.INTERRUPTION) == 1  # the cut reply is on the record as cut
    assert kinds.index(Kind.INTERRUPTION) < kinds.index(Kind.INPUT_TRANSCRIPT)


async def test_video_frames_reach_the_upstream(alice, emulator):
    import base64

    comm = web_client(alice)
    await start_web(comm)
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(2000) + b"\xff\xd9").decode()
    await comm.send_json_to({"type": "video", "mime": "image/jpeg", "data": jpeg})
    await wait_for(lambda: emulator.stats()["total"]["video_frames"] == 1)
    got = await web_turn(comm, "what do you see")
    assert got.finals("model") == ["You said: what do you see (I saw 1 frame)"]
    await comm.disconnect()


async def test_client_declared_function_round_trip(alice, emulator):
    comm = web_client(alice)
    declaration = {
        "name": "set_color",
        "description": "Sets the page colour.",
        "parameters": {"type": "OBJECT", "properties": {"color": {"type": "STRING"}}},
        "behavior": "BLOCKING",
    }
    ready = await start_web(comm, functions=[declaration])
    await comm.send_json_to({"type": "text", "text": 'call set_color {"color": "teal"}'})
    got = await receive_until(comm, lambda e: e["type"] == "tool.call")
    call = got.events[-1]
    assert (call["name"], call["args"]) == ("set_color", {"color": "teal"})
    await comm.send_json_to({"type": "tool.result", "id": call["id"], "response": {"result": "ok"}})
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete")
    assert got.finals("model") == ['set_color returned {"result":"ok"}']
    await comm.disconnect()
    events = await events_of(ready["conversation"])
    call_event = next(e for e in events if e.kind == Kind.TOOL_CALL)
    result_event = next(e for e in events if e.kind == Kind.TOOL_RESULT)
    assert call_event.data["executor"] == "client"
    assert result_event.data["response"] == {"result": "ok"}
    assert result_event.duration_ms is not None


async def test_server_tool_round_trip_with_activity_events(alice, emulator, weather_http):
    comm = web_client(alice)
    ready = await start_web(comm)
    got = await web_turn(comm, "How is the weather in Paris?")
    # NON_BLOCKING on 3.8: the model says it is looking, then the result in a turn of its own.
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", into=got)
    tools = got.of("tool")
    assert [(t["phase"], t["name"], t["executor"]) for t in tools] == [
        ("started", "get_weather", "server"),
        ("finished", "get_weather", "server"),
    ]
    assert tools[1]["ok"] is True
    assert not got.of("tool.call")  # server functions are not the browser's business
    calling, result = got.finals("model")
    assert calling == "Calling get_weather."
    assert result.startswith('get_weather returned {"location":')
    assert weather_http  # the HTTP seam was used, nothing reached the internet
    await comm.disconnect()
    events = await events_of(ready["conversation"])
    kinds = [e.kind for e in events if e.kind not in (Kind.SESSION, Kind.USAGE)]
    # The result may be recorded before or after the "Calling" line: it runs meanwhile.
    assert kinds[:2] == [Kind.USER_TEXT, Kind.TOOL_CALL]
    assert sorted(kinds[2:]) == sorted([Kind.TOOL_RESULT, *[Kind.OUTPUT_TRANSCRIPT] * 2])
    assert kinds[-1] == Kind.OUTPUT_TRANSCRIPT


async def test_tool_events_carry_args_and_a_short_result(alice, emulator, weather_http):
    comm = web_client(alice)
    await start_web(comm)
    got = await web_turn(comm, 'call get_weather {"location": "Paris"}')
    started, finished = got.of("tool")
    assert started["phase"] == "started"
    assert started["args"] == {"location": "Paris"}
    assert finished["phase"] == "finished"
    assert finished["id"] == started["id"]
    assert finished["ok"] is True
    assert finished["duration_ms"] >= 0
    summary = finished["summary"]
    assert summary.startswith('{"location":"Paris')
    assert len(summary) <= 160
    assert {r.url.host for r in weather_http} == {
        "geocoding-api.open-meteo.com",
        "api.open-meteo.com",
    }
    await comm.disconnect()
