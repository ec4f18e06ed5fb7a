"""Pure units of the bridge: wire normalising and translation, setup policy, handles,
bounded buffers, token buckets. No sockets."""

import asyncio
import base64
import time

import pytest

from assistant.live import close_codes, handles, limits
from assistant.live.buffers import Downlink, Uplink
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.gemini import client, errors, server, wire
from assistant.live.gemini import setup as policy
from assistant.live.gemini.models import capabilities
from assistant.metrics import REGISTRY

# --- protocol -------------------------------------------------------------------------------


def test_normalize_camelcases_fields_but_not_struct_payloads():
    message = {
        "tool_response": {
            "function_responses": [{"id": "1", "response": {"is_on": True, "snake_key": 1}}]
        }
    }
    assert wire.normalize(message) == {
        "toolResponse": {
            "functionResponses": [{"id": "1", "response": {"is_on": True, "snake_key": 1}}]
        }
    }
    declaration = {"name": "f", "parameters": {"properties": {"room_name": {"type": "STRING"}}}}
    assert wire.normalize({"function_declarations": [declaration]}) == {
        "functionDeclarations": [declaration]
    }


def test_normalize_refuses_both_spellings():
    with pytest.raises(SessionEnd) as caught:
        wire.normalize({"turnComplete": True, "turn_complete": True})
    assert caught.value.kind is EndKind.BAD_MESSAGE


def test_b64_both_alphabets_with_or_without_padding():
    raw = b"\xff\xd8\xfe\x00"
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        assert wire.b64decode(text) == raw
    assert wire.b64_size(base64.b64encode(bytes(3200)).decode()) == 3200
    with pytest.raises(ValueError, match="bad base64"):
        wire.b64decode("a*b")


def test_media_chunks_become_audio_and_video():
    body = wire.normalize(
        {
            "media_chunks": [
                {"mime_type": "audio/pcm", "data": "AAA="},
                {"mimeType": "image/jpeg", "data": "/9g="},
            ]
        }
    )
    assert client.realtime_parts(body) == [
        client.Media(client.AUDIO, "audio/pcm;rate=16000", "AAA="),
        client.Media(client.VIDEO, "image/jpeg", "/9g="),
    ]


def _turn(parts, complete):
    return {"turns": [{"role": "user", "parts": parts}], "turnComplete": complete}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_turn([], False), ("drop", None)),  # the tutorial's per-chunk "continue signal"
        (_turn([], True), ("audioStreamEnd", None)),  # its end of turn
        (_turn([{"text": "hi"}], True), ("text", "hi")),  # 3.x: realtimeInput.text
    ],
)
def test_client_content_translation(body, expected):
    assert client.translate_client_content(body, model="gemini-3.8-live") == expected


def test_client_content_history_passes_through():
    body = {
        "turns": [
            {"role": "user", "parts": [{"text": "a"}]},
            {"role": "model", "parts": [{"text": "b"}]},
        ],
        "turnComplete": True,
    }
    assert client.translate_client_content(body, model="gemini-3.8-live") == ("clientContent", body)
    single = {"turns": [{"role": "user", "parts": [{"text": "hi"}]}], "turnComplete": True}
    assert (
        client.translate_client_content(single, model="gemini-live-text-test")[0] == "clientContent"
    )


def test_setup_policy():
    client = policy.read_client_setup(
        {
            "model": "models/gemini-2.0-flash-exp",
            "generation_config": {"response_modalities": ["text"]},
            "system_instruction": "Be brief.",
            "tools": [
                {"functionDeclarations": [{"name": "get_weather"}, {"name": "lights"}]},
                {"googleSearch": {}},
            ],
            "session_resumption": {"handle": "h", "transparent": True},
        }
    )
    assert client.text_only
    assert client.resume_handle == "h"
    model = policy.resolve_model(
        client.model,
        default="gemini-3.8-live",
        aliases={"gemini-2.0-flash-exp": "gemini-3.8-live"},
        allowed=["gemini-3.8-live"],
    )
    assert model == "gemini-3.8-live"
    server_tools = [
        {"functionDeclarations": [{"name": "get_weather", "x": 1}]},
        {"codeExecution": {}},
        {"googleSearch": {}},
    ]
    tools = policy.merge_tools(server_tools, client.body["tools"], model=model)
    assert tools.client_functions == {"lights"}
    # 3.8 has no code execution (its page, Sept 2026): the deployment's is left out; the
    # client's googleSearch is forwarded, so Pastra did not add it. The server's function is
    # declared NON_BLOCKING there; the client's is left as the client declared it.
    server_function = {"name": "get_weather", "x": 1, "behavior": "NON_BLOCKING"}
    assert tools.declared == [
        {"functionDeclarations": [server_function, {"name": "lights"}]},
        {"googleSearch": {}},
    ]
    assert tools.added == frozenset()
    tools = tools.declared
    setup = policy.build_setup(
        client,
        model=model,
        base_instruction="You are Pastra.",
        tools=tools,
        handle="upstream-handle",
        emulate_text=capabilities(model).audio_only,
    )["setup"]
    assert setup["model"] == "models/gemini-3.8-live"
    assert setup["generationConfig"]["responseModalities"] == ["AUDIO"]
    assert setup["systemInstruction"] == {"parts": [{"text": "You are Pastra.\n\nBe brief."}]}
    assert setup["sessionResumption"] == {"handle": "upstream-handle"}
    assert setup["inputAudioTranscription"] == setup["outputAudioTranscription"] == {}
    assert setup["contextWindowCompression"] == {"slidingWindow": {}}
    assert policy.resolve_model("gemini-9", default="x", aliases={}, allowed=["x"]) is None


def test_parse_server_bundled_message():
    raw = wire.dumps(
        {
            "serverContent": {
                "modelTurn": {
                    "parts": [
                        {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": "AAAA"}},
                        {"text": "thinking", "thought": True},
                        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                    ]
                },
                "outputTranscription": {"text": "Hi"},
                "turnComplete": True,
            },
            "usageMetadata": {"promptTokenCount": 3, "responseTokenCount": 4, "totalTokenCount": 7},
        }
    )
    view = server.parse_server(raw)
    assert view.audio == ("AAAA",)
    assert view.texts == ()
    assert view.code == (("code", "PYTHON", "print(1)"),)
    assert view.output_text == "Hi"
    assert view.turn_complete
    assert server.usage_counts(view.usage) == (3, 4, 7)
    assert server.parse_server(b'{"goAway": {"timeLeft": "1.500s"}}').go_away == 1.5
    update = server.parse_server(
        b'{"sessionResumptionUpdate": {"newHandle": "h", "resumable": true}}'
    )
    assert update.resumption == "h"
    assert server.parse_server(b'{"sessionResumptionUpdate": {}}').resumption is None


def test_gemini_close_codes():
    assert errors.gemini_close(SessionEnd(EndKind.BAD_MESSAGE, "bad"))[0] == 1007
    assert errors.gemini_close(SessionEnd(EndKind.TOO_LARGE))[0] == 1009
    assert errors.gemini_close(SessionEnd(EndKind.DAILY_LIMIT))[0] == 1008
    assert errors.gemini_close(SessionEnd(EndKind.UPSTREAM_UNAVAILABLE))[0] == 1011
    rejected = SessionEnd(EndKind.UPSTREAM_REJECTED, upstream_code=1007, upstream_reason="x")
    assert errors.gemini_close(rejected) == (1007, "x")
    assert len(close_codes.close_reason("é" * 100).encode()) <= 123


# --- handles ------------------------------------------------------------------------------


def test_handles_are_bound_to_user_and_conversation():
    import uuid

    conversation = uuid.uuid4()
    handle = handles.issue(user_id=7, conversation_id=conversation)
    assert handles.read(handle, user_id=7) == conversation
    assert handles.read(handle, user_id=8) is None
    assert handles.read(handle[:-2] + "xx", user_id=7) is None
    assert handles.read("", user_id=7) is None


# --- buffers --------------------------------------------------------------------------------


def test_uplink_keeps_one_second_live_two_offline_and_drops_video_first():
    uplink = Uplink()
    uplink.set_offline(False)
    uplink.put_video(b"v1")
    uplink.put_video(b"v2")  # replaces v1
    assert uplink.dropped_video == 1
    uplink.put_control(b"text")
    for i in range(10):
        uplink.put_audio(b"a%d" % i, 100.0)
    assert uplink.dropped_audio == 0
    uplink.put_audio(b"a10", 100.0)  # over 1 s: the video goes first, then the oldest audio
    assert uplink.dropped_video == 2
    assert uplink.dropped_audio == 1
    payloads = [uplink.pop().payload for _ in range(len(uplink))]
    assert payloads == [b"text", *(b"a%d" % i for i in range(1, 11))]
    uplink.set_offline(True)
    for i in range(30):
        uplink.put_audio(b"%d" % i, 100.0)
    assert uplink.audio_ms == 2000.0
    assert uplink.pop().payload == b"10"


def test_uplink_control_is_never_dropped_but_bounded():
    uplink = Uplink(max_control=3)
    for _ in range(3):
        uplink.put_control(b"c")
    with pytest.raises(SessionEnd) as caught:
        uplink.put_control(b"c")
    assert caught.value.kind is EndKind.RATE_LIMITED


async def test_uplink_sends_now_only_when_the_writer_waits_with_nothing_queued():
    uplink, sent, accept = Uplink(), [], [True]
    uplink.set_offline(False)

    def send_now(item):
        if accept[0]:
            sent.append(item.payload)
        return accept[0]

    uplink.send_now = send_now
    uplink.put_audio(b"a0", 100.0)  # no writer waiting yet: queued
    writer = asyncio.create_task(uplink.get())
    assert (await asyncio.wait_for(writer, 2)).payload == b"a0"
    writer = asyncio.create_task(uplink.get())
    await asyncio.sleep(0)  # the writer waits now
    uplink.put_audio(b"a1", 100.0)
    uplink.put_control(b"t1")
    assert sent == [b"a1", b"t1"]
    assert (writer.done(), uplink.audio_ms) == (False, 0)
    accept[0] = False  # the transport is full: the item waits for the writer ...
    uplink.put_audio(b"a2", 100.0)
    accept[0] = True  # ... and what comes after it waits behind it, in order
    uplink.put_video(b"v1")
    uplink.put_control(b"t2")
    assert sent == [b"a1", b"t1"]
    assert (await asyncio.wait_for(writer, 2)).payload == b"a2"
    assert [uplink.pop().payload for _ in range(len(uplink))] == [b"v1", b"t2"]


async def test_downlink_drops_oldest_audio_keeps_control_and_clears_on_barge_in():
    sent = []
    gate = asyncio.Event()

    async def send(payload):
        await gate.wait()
        sent.append(payload)

    downlink = Downlink(send, max_audio_bytes=10)
    downlink.put("t1")
    for i in range(5):
        downlink.put_audio(b"%04d" % i)  # 4 bytes each: 12 > 10 drops the oldest
    downlink.put("t2")
    assert downlink.dropped_audio == 3
    task = asyncio.create_task(downlink.run())
    await asyncio.sleep(0.01)
    assert downlink.stalled_for(asyncio.get_running_loop().time() + 1e9) > 0  # a send is pending
    assert downlink.clear_audio() == 2
    gate.set()
    await downlink.drain(1.0)
    task.cancel()
    assert sent == ["t1", "t2"]


def relayed(kind: str) -> float:
    labels = {"direction": "out", "kind": kind}
    return REGISTRY.get_sample_value("pastra_messages_total", labels) or 0.0


async def test_downlink_sends_now_while_its_writer_waits_and_counts_it_as_sent():
    sent, now, accept = [], [], [True]

    async def send(payload):
        sent.append(payload)

    def send_now(payload):
        if accept[0]:
            now.append(payload)
        return accept[0]

    downlink = Downlink(send, send_now)
    downlink.put("early")  # no writer waits yet: queued
    writer = asyncio.create_task(downlink.run())
    await downlink.drain(2)
    await asyncio.sleep(0)  # the writer waits now
    audio, control = relayed("audio"), relayed("control")
    downlink.first_audio_from = time.monotonic()
    downlink.put_audio(b"a1")
    downlink.put("t1", has_audio=True)  # a mixed frame: counted as audio
    downlink.put("t2")
    assert (sent, now) == (["early"], [b"a1", "t1", "t2"])
    assert (relayed("audio") - audio, relayed("control") - control) == (2, 1)
    assert downlink.first_audio_from == 0.0  # observed by the first audio sent now
    assert downlink.take_bytes() == 5 + 2 + 2 + 2
    accept[0] = False  # the transport is full: the frame waits for the writer ...
    downlink.put_audio(b"a2")
    accept[0] = True  # ... and what comes after it waits behind it, in order
    downlink.put("t3")
    await downlink.drain(2)
    writer.cancel()
    assert (sent, now) == (["early", b"a2", "t3"], [b"a1", "t1", "t2"])


async def test_downlink_control_cap_ends_a_stalled_client():
    downlink = Downlink(lambda payload: asyncio.sleep(0), max_items=2)
    downlink.put("a")
    downlink.put("b")
    with pytest.raises(SessionEnd) as caught:
        downlink.put("c")
    assert caught.value.kind is EndKind.SLOW_CLIENT


def test_token_bucket_burst_then_rate():
    bucket = limits.TokenBucket(rate=2.0, burst=3.0)
    now = bucket.stamp
    assert [bucket.take(now) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(now + 0.5)
    assert not bucket.take(now + 0.5)


def test_tool_event_args_are_kept_small():
    from assistant.live import browser_protocol as bp

    small = {"location": "Paris"}
    assert bp.short_args(small) is small
    big = {"text": "x" * 2000}
    cut = bp.short_args(big)
    assert isinstance(cut, str)
    assert len(cut) == bp.MAX_TOOL_ARGS_CHARS
    assert cut.startswith('{"text":"xxx')
    assert cut.endswith("…")


def test_google_run_tools_follow_the_model_and_the_deployment():
    offered = [{"codeExecution": {}}, {"googleSearch": {}}]
    on_38 = policy.merge_tools(offered, [], model="gemini-3.8-live")
    assert on_38.declared == [{"googleSearch": {}}]
    assert on_38.added == {"googleSearch"}
    assert on_38.without_added().declared == []
    unknown = policy.merge_tools(offered, [], model="gemini-9-live")  # not in the table
    assert unknown.declared == offered
    with pytest.raises(SessionEnd) as lacking:
        policy.merge_tools(offered, [{"codeExecution": {}}], model="gemini-3.8-live")
    assert lacking.value.kind is EndKind.TOOL_NOT_AVAILABLE
    assert errors.gemini_close(lacking.value) == (
        1008,
        "codeExecution is not supported by models/gemini-3.8-live: Operation is not "
        "implemented, or supported, or enabled.",
    )
    with pytest.raises(SessionEnd) as off:
        policy.merge_tools([], [{"googleSearch": {}}], model="gemini-3.8-live")
    assert errors.gemini_close(off.value) == (
        1008,
        "googleSearch is not enabled on this Pastra server.",
    )
    asked = policy.merge_tools(offered, [{"googleSearch": {"x": 1}}], model="gemini-3.8-live")
    assert asked.declared == [{"googleSearch": {"x": 1}}]  # the client's own configuration
    assert asked.added == frozenset()
