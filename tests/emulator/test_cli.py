"""`python manage.py gemini_emulator` in a child process: real sessions, signals, TLS, refusals."""

import asyncio
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.emulator.conftest import KEY, LIVE_PATH, RawClient, text_of

ROOT = Path(__file__).resolve().parents[2]
TLS_REFUSAL = "TLS needs both a certificate and a key"
GOING_AWAY = 1001


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no EMULATOR_*/Django variables leak in from the test run."""
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    return {
        **base,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "EMULATOR_API_KEY": KEY,
        "EMULATOR_TTS": "synthetic",
        "EMULATOR_PACE": "0",
    }


def manage_py_emulator(tmp_path: Path, port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "gemini_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
        ],
        cwd=ROOT,
        env=child_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait_listening(process: subprocess.Popen, port: int, timeout: float = 30.0) -> None:
    """Poll the port (the announce line is not relied on to arrive before exit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the emulator exited with {process.returncode}: {out}{err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            await asyncio.sleep(0.1)
    pytest.fail(f"the emulator did not listen on port {port} within {timeout}s")


async def stop(process: subprocess.Popen, signum: int) -> tuple[int, str, str]:
    process.send_signal(signum)
    out, err = await asyncio.to_thread(process.communicate, timeout=15)
    return process.returncode, out, err


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=10)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_manage_py_emulator_serves_a_session_and_stops_on_a_signal(tmp_path, signum):
    port = free_port()
    process = manage_py_emulator(tmp_path, port)
    try:
        await wait_listening(process, port)
        url = f"ws://127.0.0.1:{port}{LIVE_PATH.format(version='v1beta')}?key={KEY}"
        client = RawClient(await connect(url, open_timeout=5))
        await client.setup(outputAudioTranscription={})
        await client.send({"realtimeInput": {"text": "hello from the cli"}})
        assert text_of(await client.turn()) == "You said: hello from the cli"

        process.send_signal(signum)
        code, _ = await client.closed(10)
        assert code == GOING_AWAY  # the open session is closed, not abandoned
        out, err = await asyncio.to_thread(process.communicate, timeout=15)
        assert process.returncode == 0, err
        assert f"listening on ws://127.0.0.1:{port} (mode script)" in out
        assert "Traceback" not in err
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        kill(process)


async def test_manage_py_emulator_with_a_certificate_serves_wss(tmp_path, tls_files):
    cert, key = tls_files
    port = free_port()
    process = manage_py_emulator(tmp_path, port, "--tls-cert", cert, "--tls-key", key)
    try:
        await wait_listening(process, port)
        path = f"{LIVE_PATH.format(version='v1beta')}?key={KEY}"
        trusting = ssl.create_default_context(cafile=cert)
        client = RawClient(await connect(f"wss://127.0.0.1:{port}{path}", ssl=trusting))
        await client.setup()
        await client.send({"realtimeInput": {"text": "over tls"}})
        await client.turn()
        await client.close()

        untrusting = ssl.create_default_context()  # the self-signed cert is not in the system store
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(f"wss://127.0.0.1:{port}{path}", ssl=untrusting, open_timeout=5)

        code, out, err = await stop(process, signal.SIGTERM)
        assert code == 0, err
        assert f"listening on wss://127.0.0.1:{port}" in out
    finally:
        kill(process)


@pytest.mark.parametrize(
    "command",
    [["manage.py", "gemini_emulator"], ["-m", "gemini_emulator"]],
    ids=["manage.py", "python-m"],
)
@pytest.mark.parametrize("half", ["--tls-cert", "--tls-key"])
def test_half_a_tls_pair_is_refused_with_a_clear_error(tmp_path, tls_files, command, half):
    cert, key = tls_files
    result = subprocess.run(
        [sys.executable, *command, "--port", "0", half, cert if half == "--tls-cert" else key],
        cwd=ROOT,
        env=child_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert TLS_REFUSAL in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout


def test_manage_py_emulator_announces_its_url_at_once_on_a_pipe(tmp_path):
    """A supervisor learns the port (with --port 0) from the first line, while it runs."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "gemini_emulator", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        env=child_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline()  # blocks until flushed (or the process ends)
        assert process.poll() is None, "the line only came out when the emulator exited"
        assert "listening on ws://127.0.0.1:" in line
        port = int(re.search(r"ws://127\.0\.0\.1:(\d+)", line).group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
