"""The web UI's `interrupt` and push-to-talk messages (protocol 2) against the emulator on a
real socket: a stopped reply sends no more audio, Gemini is told, the record says how much
was heard; push-to-talk brackets speech with activityStart/activityEnd."""

import pytest

from assistant.live import browser_protocol as bp
from assistant.live.errors import SessionEnd
from assistant.models import ConversationEvent
from tests.live.conftest import (
    frames,
    long_reply_playing,
    receive_until,
    start_web,
    tone,
    web_client,
    web_turn,
)
from tests.live.test_web_socket import events_of

pytestmark = pytest.mark.django_db(transaction=True)

Kind = ConversationEvent.Kind


async def test_the_interrupt_button_stops_the_reply_upstream_and_on_the_record(
    alice, start_emulator
):
    await start_emulator(pace=1.0)  # real time: the reply is still being generated
    comm = web_client(alice)
    ready = await start_web(comm)
    await long_reply_playing(comm)
    interrupt = {"type": "interrupt", "played_ms": 900, "heard": "Here is a long", "by": "button"}
    await comm.send_json_to(interrupt)
    # Gemini was told (clientContent): it sends `interrupted`, then ends the turn at once.
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", seconds=3)
    assert "interrupted" in got.types()
    assert got.events[-1]["interrupted"] is True
    assert not got.finals("model"), "the stopped reply's whole text is not sent as final"
    # The next turn is answered normally, in full.
    after = await web_turn(comm, "hello again")
    assert after.finals("model") == ["You said: hello again"]
    assert after.audio
    await comm.disconnect()
    events = await events_of(ready["conversation"])
    stopped = [e for e in events if e.kind == Kind.SESSION and e.text == "interrupted_by_user"]
    assert [e.data for e in stopped] == [
        {"played_ms": 900, "by": "button", "heard": "Here is a long"}
    ]
    assert [e.kind for e in events].count(Kind.INTERRUPTION) == 1


async def test_an_interrupt_after_the_reply_was_whole_changes_nothing_upstream(alice, emulator):
    comm = web_client(alice)
    ready = await start_web(comm)
    await web_turn(comm, "hello")
    # The page was still playing the (whole) reply when the person stopped it.
    await comm.send_json_to({"type": "interrupt", "played_ms": 300, "by": "button"})
    got = await web_turn(comm, "and again")
    assert got.finals("model") == ["You said: and again"]
    assert got.audio, "the next reply's audio is not dropped"
    assert "interrupted" not in got.types()
    await comm.disconnect()
    events = await events_of(ready["conversation"])
    assert any(e.text == "interrupted_by_user" for e in events)


async def test_push_to_talk_brackets_speech_and_drops_audio_outside(alice, emulator):
    comm = web_client(alice)
    ready = await start_web(comm, activity="manual")
    assert ready["activity"] == "manual"
    # Audio before the press would close Gemini's session (1007): the bridge drops it.
    for frame in frames(tone(300)):
        await comm.send_to(bytes_data=frame)
    await comm.send_json_to({"type": "activity.start"})
    for frame in frames(tone(600)):
        await comm.send_to(bytes_data=frame)
    await comm.send_json_to({"type": "activity.end"})
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete")
    assert got.finals("model") == ["I heard 0.6 seconds of audio."]
    assert emulator.stats()["total"]["audio_bytes"] == 19200  # 0.6 s, not 0.9 s
    await comm.disconnect()


async def test_push_to_talk_signals_need_a_manual_session(alice, emulator):
    comm = web_client(alice)
    await start_web(comm)
    await comm.send_json_to({"type": "activity.start"})
    got = await receive_until(comm, lambda e: e["type"] == "__close__")
    assert got.events[-1]["code"] == 4400
    assert "activity" in got.of("error")[0]["message"]


@pytest.mark.parametrize(
    "message",
    [
        {"type": "interrupt", "played_ms": -1},
        {"type": "interrupt", "played_ms": "12"},
        {"type": "interrupt", "played_ms": True},
        {"type": "interrupt", "by": "elbow"},
        {"type": "interrupt", "heard": "x" * 2001},
    ],
)
def test_bad_interrupts_are_refused_with_a_reason(message):
    with pytest.raises(SessionEnd, match="interrupt"):
        bp.read_interrupt(message)


def test_an_interrupt_reads_its_fields():
    message = {"type": "interrupt", "played_ms": 1234.6, "heard": "Hello", "by": "voice"}
    assert bp.read_interrupt(message) == (1234, "Hello", "voice")
    assert bp.read_interrupt({"type": "interrupt"}) == (0, "", "button")


def test_start_activity_is_auto_or_manual():
    assert bp.read_start({"type": "start", "activity": "manual"})["manual_activity"] is True
    assert bp.read_start({"type": "start"})["manual_activity"] is False
    with pytest.raises(SessionEnd, match="activity"):
        bp.read_start({"type": "start", "activity": "sometimes"})


async def test_the_session_event_says_whether_the_model_remembers(alice, start_emulator):
    """`context` is "resumed" only when Gemini took the resumption handle; a conversation
    whose handle expired goes on (its record) in a new upstream session: "new"."""
    import asyncio

    await start_emulator(resumption_ttl=0.5)
    first = web_client(alice)
    ready = await start_web(first)
    assert ready["context"] == "new"
    await web_turn(first, "before the drop")
    await first.disconnect()
    quick = web_client(alice)
    again = await start_web(quick, conversation=ready["conversation"])
    assert (again["resumed"], again["context"]) == (True, "resumed")
    await web_turn(quick, "still here")
    await quick.disconnect()
    await asyncio.sleep(1.0)  # the handle expires
    late = web_client(alice)
    later = await start_web(late, conversation=ready["conversation"])
    assert (later["resumed"], later["context"]) == (True, "new")
    got = await web_turn(late, "/history")
    assert got.finals("model") == ["history: 0 user turns"]
    await late.disconnect()
    events = await events_of(ready["conversation"])
    assert any(e.text == "resume_failed" for e in events)


async def test_the_button_stops_a_push_to_talk_reply_without_an_empty_turn(alice, start_emulator):
    await start_emulator(pace=1.0)
    comm = web_client(alice)
    await start_web(comm, activity="manual")
    await comm.send_json_to({"type": "activity.start"})
    for frame in frames(tone(300)):
        await comm.send_to(bytes_data=frame)
    await comm.send_json_to({"type": "activity.end"})
    await receive_until(comm, lambda e: e["type"] == "transcript" and e["role"] == "model")
    await comm.send_json_to({"type": "interrupt", "played_ms": 200, "by": "button"})
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", seconds=3)
    assert got.events[-1]["interrupted"] is True
    after = await web_turn(comm, "typed next")
    assert after.finals("model") == ["You said: typed next"], "no reply to an empty turn"
    await comm.disconnect()
