"""Google-executed tools on the web path (grounding, code execution), video limits on both
client paths, and the audio hot path's freedom from per-frame database and channel-layer work."""

import asyncio
import base64

import orjson
import pytest
from channels.layers import get_channel_layer

from assistant.live import close_codes, limits, record_writer
from assistant.models import ConversationEvent
from tests.live.conftest import (
    TEXT_MODEL,
    frames,
    receive_close,
    receive_until,
    silence,
    start_web,
    tone,
    web_client,
    web_turn,
)
from tests.live.test_gemini_socket import expect_close, open_session
from tests.live.test_web_socket import events_of

pytestmark = pytest.mark.django_db(transaction=True)
Kind = ConversationEvent.Kind

JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(2000) + b"\xff\xd9").decode()
OVERSIZE = base64.b64encode(bytes(limits.MAX_VIDEO_BYTES + 1)).decode()


async def web_close(comm, *, seconds: float = 10.0) -> tuple[list[dict], dict]:
    """JSON events until the close frame; returns (events, the close message itself)."""
    events = []
    async with asyncio.timeout(seconds):
        while True:
            message = await comm.receive_output(timeout=seconds)
            if message["type"] == "websocket.close":
                return events, message
            if message.get("text") is not None:
                events.append(orjson.loads(message["text"]))


# --- built-in (Google-executed) tools on the web path --------------------------------------


async def test_search_grounding_reaches_the_page_and_the_record(alice, emulator, live_settings):
    live_settings.PASTRA_GOOGLE_SEARCH = True
    comm = web_client(alice)
    ready = await start_web(comm)
    got = await web_turn(comm, "search for fresh pasta")
    summary = {
        "sources": [
            {"title": "About fresh pasta", "uri": "https://example.org/search?q=fresh+pasta"}
        ],
        "queries": ["fresh pasta"],
    }
    assert got.of("grounding") == [{"type": "grounding", **summary}]
    assert got.finals("model") == ["Here is what I found about fresh pasta."]
    assert got.types().index("grounding") < got.types().index("turn.complete")
    await comm.disconnect()
    events = await events_of(ready["conversation"])
    groundings = [e for e in events if e.kind == Kind.GROUNDING]
    assert [e.data for e in groundings] == [summary]
    assert groundings[0].turn == next(e.turn for e in events if e.kind == Kind.USER_TEXT)


async def test_without_google_search_there_is_no_grounding(alice, emulator, live_settings):
    live_settings.PASTRA_GOOGLE_SEARCH = False
    comm = web_client(alice)
    ready = await start_web(comm)
    got = await web_turn(comm, "search for fresh pasta")
    assert not got.of("grounding")
    assert got.finals("model") == ["You said: search for fresh pasta"]
    await comm.disconnect()
    assert Kind.GROUNDING not in [e.kind for e in await events_of(ready["conversation"])]


async def test_code_execution_reaches_the_page_and_the_record(alice, emulator, live_settings):
    # No Google Live model has code execution today (gemini-3.8-live page, Sept 2026): the
    # emulator's test model has it, and the bridge's table does not know it (it passes tools).
    live_settings.PASTRA_CODE_EXECUTION = True
    comm = web_client(alice)
    ready = await start_web(comm, model=TEXT_MODEL)
    got = await web_turn(comm, "compute 6*7")
    assert got.of("code") == [{"type": "code", "language": "PYTHON", "code": "print(6*7)"}]
    assert got.of("code.result") == [
        {"type": "code.result", "outcome": "OUTCOME_OK", "output": "42\n"}
    ]
    types = got.types()
    assert types.index("code") < types.index("code.result") < types.index("turn.complete")
    assert got.finals("model") == ["The result is 42."]
    await comm.disconnect()
    events = await events_of(ready["conversation"])
    code = [
        (e.kind, e.text, e.data)
        for e in events
        if e.kind in (Kind.CODE_EXECUTION, Kind.CODE_RESULT)
    ]
    assert code == [
        (Kind.CODE_EXECUTION, "print(6*7)", {"language": "PYTHON"}),
        (Kind.CODE_RESULT, "42\n", {"outcome": "OUTCOME_OK"}),
    ]


# --- video limits ---------------------------------------------------------------------------


async def test_oversize_video_frame_closes_the_web_session_4413(alice, emulator):
    comm = web_client(alice)
    await start_web(comm)
    await comm.send_json_to({"type": "video", "mime": "image/jpeg", "data": OVERSIZE})
    events, close = await web_close(comm)
    expected = (
        f"Video message too large: {limits.MAX_VIDEO_BYTES + 1} bytes "
        f"(the limit is {limits.MAX_VIDEO_BYTES})."
    )
    assert close["code"] == close_codes.CloseCode.TOO_LARGE == 4413
    assert events[-1] == {"type": "error", "code": 4413, "message": expected}
    assert close.get("reason") == expected
    await comm.disconnect()
    assert emulator.stats()["total"]["video_frames"] == 0


async def test_video_at_the_size_limit_is_accepted_on_the_web(alice, emulator):
    comm = web_client(alice)
    await start_web(comm)
    data = base64.b64encode(bytes(limits.MAX_VIDEO_BYTES)).decode()
    await comm.send_json_to({"type": "video", "mime": "image/jpeg", "data": data})
    got = await web_turn(comm, "still there")
    assert got.finals("model") == ["You said: still there (I saw 1 frame)"]
    await comm.disconnect()


async def test_oversize_video_frame_closes_the_gemini_session_1009(alice_token, emulator):
    comm = await open_session(alice_token)
    await comm.send_json_to(
        {"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": OVERSIZE}}}
    )
    msg = await expect_close(comm, 1009, "Video message too large")
    assert f"(the limit is {limits.MAX_VIDEO_BYTES})" in msg["reason"]
    await comm.disconnect()
    assert emulator.stats()["total"]["video_frames"] == 0


async def test_video_burst_closes_the_web_session_4431(alice, emulator):
    comm = web_client(alice)
    await start_web(comm)
    burst = int(limits.VIDEO_RATE[1])
    for _ in range(burst + 4):
        await comm.send_json_to({"type": "video", "mime": "image/jpeg", "data": JPEG})
    events, code = await receive_close(comm)
    assert code == close_codes.CloseCode.RATE_LIMITED == 4431
    assert events[-1] == {
        "type": "error",
        "code": 4431,
        "message": f"Too many video messages (more than {limits.VIDEO_RATE[0]:g} per second).",
    }
    await comm.disconnect()
    assert emulator.stats()["total"]["video_frames"] <= burst


async def test_video_within_the_burst_is_not_rate_limited_on_the_web(alice, emulator):
    comm = web_client(alice)
    await start_web(comm)
    for _ in range(int(limits.VIDEO_RATE[1])):
        await comm.send_json_to({"type": "video", "mime": "image/jpeg", "data": JPEG})
    got = await web_turn(comm, "how many")
    assert got.finals("model")[0].startswith("You said: how many (I saw")
    await comm.disconnect()


async def test_video_burst_closes_the_gemini_session_1008(alice_token, emulator):
    comm = await open_session(alice_token)
    message = {"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": JPEG}}}
    for _ in range(int(limits.VIDEO_RATE[1]) + 4):
        await comm.send_json_to(message)
    await expect_close(comm, 1008, "Too many video messages")
    await comm.disconnect()


# --- the audio hot path -------------------------------------------------------------------


async def test_audio_frames_cause_no_per_frame_database_or_channel_layer_work(
    alice, emulator, monkeypatch
):
    """~200 audio frames in one turn: the recorder writes once per turn (and at the
    end), and the channel layer is only used for those writes' broadcasts."""
    # The audio rate limit is tested elsewhere; here the frames go faster than real time.
    monkeypatch.setattr(limits, "AUDIO_RATE", (1000.0, 1000.0))
    real_record = record_writer.arecord
    writes = []

    async def counting_record(**kwargs):
        writes.append(len(kwargs["events"]))
        return await real_record(**kwargs)

    monkeypatch.setattr(record_writer, "arecord", counting_record)
    layer = get_channel_layer()
    real_send = layer.group_send
    sends = []

    async def counting_send(group, message):
        sends.append(group)
        return await real_send(group, message)

    monkeypatch.setattr(layer, "group_send", counting_send)

    comm = web_client(alice)
    ready = await start_web(comm)
    pcm = tone(1000) + silence(19_000)  # one utterance, then silence: 200 frames of 100 ms
    chunks = frames(pcm)
    assert len(chunks) == 200
    for chunk in chunks:
        await comm.send_to(bytes_data=chunk)
        await asyncio.sleep(0.002)
    got = await receive_until(comm, lambda e: e["type"] == "turn.complete", seconds=15)
    assert got.finals("user") == ["(speech 1.0 s)"]
    assert got.finals("model") == ["I heard 1.0 seconds of audio."]
    assert emulator.stats()["total"]["audio_bytes"] >= 100 * len(chunks[0])  # frames flowed
    await comm.disconnect()

    turns = 1
    assert 1 <= len(writes) <= turns + 2, writes
    # One broadcast per written batch with events, none per frame; the wrapper is live.
    assert 1 <= len(sends) <= len([n for n in writes if n]), sends
    assert all(group.endswith(".watch") for group in sends), sends
    kinds = [e.kind for e in await events_of(ready["conversation"])]
    assert kinds.count(Kind.INPUT_TRANSCRIPT) == 1
