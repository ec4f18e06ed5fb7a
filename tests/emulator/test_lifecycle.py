"""Connection lifetime, goAway, scripted closes, resumption, /stats, echo mode and runners."""

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from google.genai import errors, types

from gemini_emulator import EmulatorConfig, EmulatorThread
from gemini_emulator.config import ConfigError
from gemini_emulator.speech import SpeechSynth
from tests.emulator.conftest import (
    KEY,
    MODEL_25,
    MODEL_38,
    kinds,
    rms,
    sdk_client,
    sdk_transcript,
    sdk_turn,
    text_of,
    tone,
)

DEADLINE = (1011, "Deadline expired before operation could complete.")
ROOT = Path(__file__).resolve().parents[2]


async def test_connection_lifetime_sends_go_away_then_closes_1011(start_emulator, raw_client):
    emu = await start_emulator(connection_seconds=0.6, goaway_seconds=0.4)
    client = await raw_client(emu)
    started = time.monotonic()
    await client.setup()
    assert await client.recv(2) == {"goAway": {"timeLeft": "0.400s"}}
    assert time.monotonic() - started == pytest.approx(0.2, abs=0.15)
    assert await client.closed() == DEADLINE
    assert time.monotonic() - started == pytest.approx(0.6, abs=0.2)


async def test_script_goaway_announces_one_second_then_closes(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup()
    await client.send({"realtimeInput": {"text": "/goaway"}})
    assert await client.recv() == {"goAway": {"timeLeft": "1s"}}
    assert await client.closed(3) == DEADLINE


async def test_script_close_uses_the_given_code_and_reason(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup()
    await client.send({"realtimeInput": {"text": "/close 1008 The operation was aborted."}})
    assert await client.closed() == (1008, "The operation was aborted.")


async def test_script_close_with_an_unsendable_code_says_so(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(outputAudioTranscription={})
    await client.send({"realtimeInput": {"text": "/close 1006 nope"}})
    assert text_of(await client.turn()) == "cannot close with code 1006"


async def test_resumption_restores_the_remembered_history(emulator, raw_client):
    first = await raw_client(emulator)
    await first.setup(MODEL_38, sessionResumption={})
    for text in ("one", "two"):
        await first.send({"realtimeInput": {"text": text}})
        messages = await first.until(lambda m: "sessionResumptionUpdate" in m)
    handle = messages[-1]["sessionResumptionUpdate"]["newHandle"]
    await first.close()
    second = await raw_client(emulator)
    await second.setup(MODEL_38, sessionResumption={"handle": handle}, outputAudioTranscription={})
    await second.send({"realtimeInput": {"text": "/history"}})
    assert text_of(await second.turn()) == "history: 2 user turns"


async def test_resumption_from_an_older_handle_restores_that_point(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(MODEL_38, sessionResumption={})
    handles = []
    for text in ("one", "two", "three"):
        await client.send({"realtimeInput": {"text": text}})
        update = (await client.until(lambda m: "sessionResumptionUpdate" in m))[-1]
        handles.append(update["sessionResumptionUpdate"]["newHandle"])
    await client.close()
    again = await raw_client(emulator)
    await again.setup(
        MODEL_38, sessionResumption={"handle": handles[0]}, outputAudioTranscription={}
    )
    await again.send({"realtimeInput": {"text": "/history"}})
    assert text_of(await again.turn()) == "history: 1 user turns"


async def test_resumption_unknown_handle_closes_1008_session_not_found(emulator, raw_client):
    client = await raw_client(emulator)
    await client.send(
        {"setup": {"model": f"models/{MODEL_38}", "sessionResumption": {"handle": "nope"}}}
    )
    assert await client.closed() == (1008, "BidiGenerateContent session not found")


async def test_resumption_while_the_old_socket_is_open_closes_1011(emulator, raw_client):
    first = await raw_client(emulator)
    await first.setup(MODEL_38, sessionResumption={})
    await first.send({"realtimeInput": {"text": "one"}})
    update = (await first.until(lambda m: "sessionResumptionUpdate" in m))[-1]
    handle = update["sessionResumptionUpdate"]["newHandle"]
    second = await raw_client(emulator)
    await second.send(
        {"setup": {"model": f"models/{MODEL_38}", "sessionResumption": {"handle": handle}}}
    )
    code, _ = await second.closed()
    assert code == 1011
    await first.send({"realtimeInput": {"text": "still here"}})
    await first.turn()


async def test_resumption_with_another_model_closes_1007(emulator, raw_client):
    first = await raw_client(emulator)
    await first.setup(MODEL_38, sessionResumption={})
    await first.send({"realtimeInput": {"text": "one"}})
    update = (await first.until(lambda m: "sessionResumptionUpdate" in m))[-1]
    await first.close()
    second = await raw_client(emulator)
    handle = update["sessionResumptionUpdate"]["newHandle"]
    await second.send(
        {"setup": {"model": f"models/{MODEL_25}", "sessionResumption": {"handle": handle}}}
    )
    assert await second.closed() == (1007, "Request contains an invalid argument.")


async def test_resumption_handles_expire_after_the_ttl(start_emulator, raw_client):
    emu = await start_emulator(resumption_ttl=0.1)
    first = await raw_client(emu)
    await first.setup(MODEL_38, sessionResumption={})
    await first.send({"realtimeInput": {"text": "one"}})
    update = (await first.until(lambda m: "sessionResumptionUpdate" in m))[-1]
    await first.close()
    await asyncio.sleep(0.3)
    second = await raw_client(emu)
    handle = update["sessionResumptionUpdate"]["newHandle"]
    await second.send(
        {"setup": {"model": f"models/{MODEL_38}", "sessionResumption": {"handle": handle}}}
    )
    assert await second.closed() == (1008, "BidiGenerateContent session not found")


async def test_stats_count_setups_turns_audio_frames_tools_and_closes(emulator, raw_client):
    client = await raw_client(emulator)
    await client.setup(
        MODEL_38, tools=[{"functionDeclarations": [{"name": "f", "behavior": "BLOCKING"}]}]
    )
    pcm = tone(0.25)
    data = base64.b64encode(pcm).decode()
    await client.send(
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": data}}}
    )
    await client.send({"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": "/9j/2Q=="}}})
    await client.send({"realtimeInput": {"text": "call f"}})
    call = (await client.until(lambda m: "toolCall" in m))[-1]["toolCall"]["functionCalls"][0]
    await client.send({"toolResponse": {"functionResponses": [{"id": call["id"], "response": {}}]}})
    await client.turn()
    live = emulator.stats()
    expected = {
        "setups": 1,
        "turns": 1,
        "audio_bytes": len(pcm),
        "video_frames": 1,
        "tool_calls": 1,
    }
    assert live["total"] == {**expected, "closes": 0}
    (connection,) = live["connections"]
    assert connection == {"id": connection["id"], "model": MODEL_38, **expected, "closes": 0}
    await client.close()
    await asyncio.sleep(0.1)
    closed = emulator.stats()
    assert closed == {"total": {**expected, "closes": 1}, "connections": []}


async def test_echo_mode_answers_each_chunk_with_the_same_bytes(start_emulator, raw_client):
    emu = await start_emulator(mode="echo")
    client = await raw_client(emu)
    await client.setup()
    for index in range(5):
        data = base64.b64encode(bytes([index]) * 3200).decode()
        await client.send(
            {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": data}}}
        )
        reply = await client.recv()
        assert reply == {
            "serverContent": {
                "modelTurn": {
                    "parts": [{"inlineData": {"mimeType": "audio/pcm;rate=16000", "data": data}}]
                }
            }
        }
    urlsafe = base64.urlsafe_b64encode(b"\xfb\xff" * 10).decode()
    await client.send(
        {"realtime_input": {"audio": {"mime_type": "audio/pcm;rate=16000", "data": urlsafe}}}
    )
    echoed = (await client.recv())["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"]
    assert echoed == base64.b64encode(b"\xfb\xff" * 10).decode()  # standard alphabet back
    assert emu.stats()["total"]["audio_bytes"] == 5 * 3200 + 20
    await client.send({"realtimeInput": {"text": "scripts still work"}})
    assert kinds(await client.turn())[-1] == "turnComplete+interactionStatus+usage"


async def test_echo_mode_still_validates_other_messages(start_emulator, raw_client):
    emu = await start_emulator(mode="echo")
    client = await raw_client(emu)
    await client.setup()
    await client.send({"realtimeInput": {"mediaChunks": []}})
    code, _ = await client.closed()
    assert code == 1007


def test_thread_runner_serves_sync_code_and_reports_stats():
    with EmulatorThread(EmulatorConfig(api_key=KEY, tts="synthetic")) as emu:
        assert emu.url.startswith("ws://127.0.0.1:")
        with urllib.request.urlopen(emu.http_url + "/stats", timeout=5) as response:  # noqa: S310
            assert json.loads(response.read()) == {
                "total": {
                    "setups": 0,
                    "turns": 0,
                    "audio_bytes": 0,
                    "video_frames": 0,
                    "tool_calls": 0,
                    "closes": 0,
                },
                "connections": [],
            }
        assert emu.audio_bytes_received() == 0
        assert emu.api_key == KEY


def test_config_from_env_reads_every_knob():
    env = {
        "EMULATOR_API_KEY": "k",
        "EMULATOR_CONNECTION_SECONDS": "30",
        "EMULATOR_GOAWAY_SECONDS": "5",
        "EMULATOR_PACE": "0",
        "EMULATOR_MAX_SESSIONS": "7",
        "EMULATOR_MODE": "echo",
        "EMULATOR_FRAMES": "text",
        "EMULATOR_TOOL_CALL_TURN_COMPLETE": "yes",
        "EMULATOR_REPLY_DELAY_SECONDS": "0.3",
    }
    config = EmulatorConfig.from_env(env)
    assert (config.api_key, config.connection_seconds, config.goaway_seconds) == ("k", 30.0, 5.0)
    assert (config.pace, config.max_sessions, config.mode, config.frames) == (
        0.0,
        7,
        "echo",
        "text",
    )
    assert config.tool_call_turn_complete is True
    assert config.reply_delay == 0.3
    with pytest.raises(ConfigError):
        EmulatorConfig.from_env({"EMULATOR_MODE": "loud"})
    with pytest.raises(ConfigError):
        EmulatorConfig.from_env({"EMULATOR_PACE": "fast"})


async def test_reply_delay_holds_back_the_first_reply_message(start_emulator, raw_client):
    emu = await start_emulator(reply_delay=0.3)
    client = await raw_client(emu)
    await client.setup()
    started = time.monotonic()
    await client.send({"realtimeInput": {"text": "think first"}})
    await client.recv()
    assert time.monotonic() - started >= 0.29


def test_command_line_serves_until_interrupted(tmp_path):
    env = {**os.environ, "EMULATOR_API_KEY": "cli-key", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gemini_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--mode",
            "echo",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "listening on ws://127.0.0.1:" in line
        assert "(mode echo)" in line
        url = line.split("listening on ", 1)[1].split()[0]
        with urllib.request.urlopen(url.replace("ws://", "http://") + "/stats", timeout=5) as reply:  # noqa: S310
            assert json.loads(reply.read())["total"]["setups"] == 0
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng is not installed")
async def test_espeak_voice_is_24khz_speech_and_cached():
    synth = SpeechSynth("espeak")
    assert synth.engine == "espeak-ng"
    pcm = await synth.render("You said: hello")
    assert 0.5 < len(pcm) / 48000 < 4
    assert rms(pcm) > 300
    assert await synth.render("You said: hello") is pcm


async def test_synthetic_voice_is_deterministic_and_never_silent():
    synth = SpeechSynth("synthetic")
    first = await synth.render("You said: hi there")
    assert first == await SpeechSynth("synthetic").render("You said: hi there")
    chunks = [first[offset : offset + 4800] for offset in range(0, len(first), 4800)]
    assert all(chunk.strip(b"\x00") for chunk in chunks)
    assert len(await synth.render("x", seconds=2.5)) == 2.5 * 48000


# --- the official SDK ------------------------------------------------------------------


async def test_sdk_sees_go_away_then_a_1011_close(tls_emulator):
    emu = await tls_emulator(connection_seconds=0.5, goaway_seconds=0.3)
    client = sdk_client(emu)
    seen = []

    async def read_all(session) -> None:
        async for message in session.receive():
            seen.append(message)

    async with client.aio.live.connect(model=MODEL_38) as session:
        with pytest.raises(errors.APIError) as closed:
            await read_all(session)
    assert seen[0].go_away.time_left is not None
    assert closed.value.code == 1011
    assert closed.value.details == DEADLINE[1]


async def test_sdk_session_resumption_restores_history(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(
        session_resumption=types.SessionResumptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )
    async with client.aio.live.connect(model=MODEL_38, config=config) as session:
        await session.send_realtime_input(text="remember me")
        await sdk_turn(session)
        update = await anext(aiter(session.receive()))
        handle = update.session_resumption_update.new_handle
        assert update.session_resumption_update.resumable
    config = types.LiveConnectConfig(
        session_resumption=types.SessionResumptionConfig(handle=handle),
        output_audio_transcription=types.AudioTranscriptionConfig(),
    )
    async with client.aio.live.connect(model=MODEL_38, config=config) as session:
        await session.send_realtime_input(text="/history")
        assert sdk_transcript(await sdk_turn(session)) == "history: 1 user turns"


@pytest.mark.parametrize(
    ("key", "model", "code", "reason_start"),
    [
        ("wrong-key", MODEL_38, 1007, "API key not valid."),
        (KEY, "gemini-2.0-flash-live-001", 1008, "models/gemini-2.0-flash-live-001 is not found"),
    ],
)
async def test_sdk_connect_raises_the_close_code_and_reason(
    tls_emulator, key, model, code, reason_start
):
    emu = await tls_emulator()
    client = sdk_client(emu, key=key)
    with pytest.raises(errors.APIError) as refused:
        async with client.aio.live.connect(model=model):
            pass
    assert refused.value.code == code
    assert str(refused.value.details).startswith(reason_start)


async def test_sdk_concurrency_limit_and_script_close(tls_emulator):
    emu = await tls_emulator(max_sessions=1)
    client = sdk_client(emu)
    async with client.aio.live.connect(model=MODEL_38) as session:
        with pytest.raises(errors.APIError) as refused:
            async with client.aio.live.connect(model=MODEL_38):
                pass
        assert refused.value.code == 1011
        assert "RESOURCE_EXHAUSTED" in str(refused.value.details)
        await session.send_realtime_input(text="/close 1000 bye")
        with pytest.raises(errors.APIError) as closed:
            await sdk_turn(session)
        assert closed.value.code == 1000


async def test_sdk_echo_mode_round_trip(tls_emulator):
    emu = await tls_emulator(mode="echo")
    client = sdk_client(emu)
    async with client.aio.live.connect(model=MODEL_38) as session:
        pcm = tone(0.1)
        await session.send_realtime_input(
            audio=types.Blob(data=pcm, mime_type="audio/pcm;rate=16000")
        )
        message = await anext(aiter(session.receive()))
    assert message.server_content.model_turn.parts[0].inline_data.data == pcm


# --- robustness ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xfe\x00binary",
        "[1, 2, 3]",
        '"just a string"',
        "{}",
        '{"setup": {}, "clientContent": {}}',
    ],
    ids=["binary", "list", "string", "empty", "two-kinds"],
)
async def test_garbage_after_setup_closes_1007_and_the_server_keeps_serving(
    emulator, raw_client, garbage
):
    client = await raw_client(emulator)
    await client.setup()
    await client.send(garbage)
    code, _ = await client.closed()
    assert code == 1007
    other = await raw_client(emulator)
    await other.setup()


async def test_client_vanishing_mid_reply_leaves_nothing_behind(start_emulator, raw_client):
    emu = await start_emulator(pace=20.0)
    client = await raw_client(emu)
    await client.setup(tools=[{"functionDeclarations": [{"name": "f", "behavior": "BLOCKING"}]}])
    await client.send({"realtimeInput": {"text": "/long"}})
    await client.recv()
    client.ws.transport.abort()  # no close frame
    await asyncio.sleep(0.2)
    assert emu.stats()["connections"] == []
    assert emu.stats()["total"]["closes"] == 1
    other = await raw_client(emu)
    await other.setup()


async def test_many_concurrent_sessions_each_get_their_own_reply(emulator, raw_client):
    clients = [await raw_client(emulator) for _ in range(20)]
    for index, client in enumerate(clients):
        await client.setup(outputAudioTranscription={})
        await client.send({"realtimeInput": {"text": f"number {index}"}})
    replies = await asyncio.gather(*(client.turn() for client in clients))
    assert [text_of(reply) for reply in replies] == [f"You said: number {i}" for i in range(20)]


async def test_sdk_unknown_resumption_handle_raises_1008(sdk):
    _, client = sdk
    config = types.LiveConnectConfig(
        session_resumption=types.SessionResumptionConfig(handle="stale")
    )
    with pytest.raises(errors.APIError) as refused:
        async with client.aio.live.connect(model=MODEL_38, config=config):
            pass
    assert refused.value.code == 1008
    assert refused.value.details == "BidiGenerateContent session not found"


def test_the_emulator_imports_nothing_from_pastra_or_django():
    """SPEC: gemini_emulator is standalone (it runs where Django is not installed)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, gemini_emulator, gemini_emulator.server, gemini_emulator.cli, "
        "gemini_emulator.session, gemini_emulator.context, gemini_emulator.stats, "
        "gemini_emulator.handshake, gemini_emulator.inputs, gemini_emulator.turns, "
        "gemini_emulator.usage, gemini_emulator.protocol, gemini_emulator.schema, "
        "gemini_emulator.__main__\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'assistant', "
        "'channels', 'pastra_site', 'daphne'})\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
