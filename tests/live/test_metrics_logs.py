"""Prometheus metrics and log context of a live session (assistant/metrics.py,
pastra_site/logs.py), through the web socket against the emulator."""

import json
import logging

import pytest

from assistant.metrics import REGISTRY
from pastra_site.logs import ContextFilter, JsonFormatter
from tests.live.conftest import (
    gemini_client,
    gemini_recv,
    gemini_until,
    start_web,
    turn_complete,
    wait_for,
    web_client,
    web_turn,
)

pytestmark = pytest.mark.django_db(transaction=True)


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    return {
        "audio_out": sample("pastra_messages_total", direction="out", kind="audio"),
        "control_out": sample("pastra_messages_total", direction="out", kind="control"),
        "control_in": sample("pastra_messages_total", direction="in", kind="control"),
        "bytes_in": sample("pastra_bytes_total", direction="in"),
        "bytes_out": sample("pastra_bytes_total", direction="out"),
        "first_audio": sample("pastra_time_to_first_audio_seconds_count"),
        "web_1000": sample("pastra_closes_total", path="web", code="1000"),
        "sdk_1000": sample("pastra_closes_total", path="sdk", code="1000"),
        "sdk_1008": sample("pastra_closes_total", path="sdk", code="1008"),
    }


def grew(before: dict, after: dict) -> set[str]:
    return {name for name in before if after[name] > before[name]}


async def test_web_turn_metrics_and_log_context(alice, emulator, caplog):
    caplog.set_level(logging.INFO, logger="assistant")
    caplog.handler.addFilter(ContextFilter())
    before = snapshot()
    comm = web_client(alice)
    ready = await start_web(comm)
    assert sample("pastra_live_sessions", client="web") == 1
    got = await web_turn(comm, "hello there")
    assert got.audio
    await comm.send_json_to({"type": "stop"})
    assert (await comm.receive_output())["type"] == "websocket.close"
    await wait_for(lambda: sample("pastra_live_sessions", client="web") == 0)
    await comm.disconnect()
    after = snapshot()
    assert grew(before, after) == {
        "audio_out",
        "control_out",
        "control_in",
        "bytes_in",
        "bytes_out",
        "first_audio",
        "web_1000",
    }
    assert after["web_1000"] == before["web_1000"] + 1  # counted once per socket
    assert after["audio_out"] - before["audio_out"] == len(got.audio)
    assert after["control_in"] - before["control_in"] == 3  # start, text, stop
    conversation = ready["conversation"]
    mine = [r for r in caplog.records if getattr(r, "ctx", {}).get("conversation") == conversation]
    assert any("live session started" in r.getMessage() for r in mine)
    assert any("live session ended" in r.getMessage() for r in mine)
    line = json.loads(JsonFormatter().format(mine[0]))
    assert (line["conversation"], line["user"], line["client"]) == (
        conversation,
        str(alice.pk),
        "web",
    )


async def test_gemini_path_counts_closes_with_their_codes(alice_token, emulator):
    before = snapshot()
    comm = gemini_client(alice_token)
    await comm.connect()
    await comm.send_json_to({"setup": {"model": "gemini-3.8-live"}})
    assert await gemini_recv(comm) == {"setupComplete": {}}
    await comm.send_json_to({"realtimeInput": {"text": "hello"}})
    await gemini_until(comm, turn_complete)
    await comm.disconnect(code=1000)
    await wait_for(lambda: sample("pastra_live_sessions", client="sdk") == 0)
    refused = gemini_client()  # no key: 1008 on the first message
    await refused.connect()
    await refused.send_json_to({"setup": {"model": "gemini-3.8-live"}})
    assert (await gemini_recv(refused))["__close__"] == 1008
    await refused.disconnect()
    after = snapshot()
    assert after["sdk_1000"] == before["sdk_1000"] + 1
    assert after["sdk_1008"] == before["sdk_1008"] + 1
    assert after["first_audio"] == before["first_audio"] + 1
