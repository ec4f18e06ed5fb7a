"""Emulator test fixtures: running emulators, a raw protocol client, the official SDK, PCM.

Nothing here imports Django: the emulator is tested as the stand-alone package it is.
"""

import asyncio
import json
import math
import ssl
import struct
import subprocess
from array import array

import pytest
from google import genai
from google.genai import types
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gemini_emulator import EmulatorConfig, EmulatorServer

KEY = "test-key"
LIVE_PATH = "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
MODEL_38 = "gemini-3.8-live"
MODEL_31 = "gemini-3.1-flash-live-preview"
MODEL_25 = "gemini-2.5-flash-native-audio-preview-12-2025"
MODEL_TEXT = "gemini-live-text-test"

# Fast and deterministic by default; tests override what they exercise.
DEFAULTS = {
    "api_key": KEY,
    "pace": 0.0,
    "tts": "synthetic",
    "connection_seconds": 60.0,
    "goaway_seconds": 5.0,
    "chunk_ms": 100,
    "max_sessions": 50,
}


@pytest.fixture
async def start_emulator():
    """`await start_emulator(**config)` -> a running EmulatorServer, stopped after the test."""
    servers: list[EmulatorServer] = []

    async def start(**overrides) -> EmulatorServer:
        server = EmulatorServer(EmulatorConfig(**{**DEFAULTS, **overrides}))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def emulator(start_emulator):
    return await start_emulator()


# --- raw protocol client ----------------------------------------------------------------


class RawClient:
    """A plain `websockets` client speaking the wire protocol, asserting binary frames."""

    def __init__(self, ws, frames: str = "binary") -> None:
        self.ws = ws
        self.frames = frames

    async def send(self, message) -> None:
        await self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    async def recv(self, timeout: float = 5.0) -> dict:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        if self.frames == "binary":
            assert isinstance(raw, bytes), f"expected a binary frame, got text: {raw[:80]!r}"
        else:
            assert isinstance(raw, str), "expected a text frame"
        return server_message(raw)

    async def setup(self, model: str = MODEL_38, **fields) -> dict:
        await self.send({"setup": {"model": f"models/{model}", **fields}})
        first = await self.recv()
        assert first == {"setupComplete": {}}
        return first

    async def until(self, predicate, timeout: float = 5.0) -> list[dict]:
        """Messages up to and including the first one matching `predicate`."""
        messages = []
        async with asyncio.timeout(timeout):
            while True:
                message = await self.recv(timeout)
                messages.append(message)
                if predicate(message):
                    return messages

    async def turn(self, timeout: float = 5.0) -> list[dict]:
        return await self.until(is_turn_complete, timeout)

    async def nothing(self, seconds: float = 0.3) -> None:
        """Assert that no message arrives for `seconds`."""
        try:
            message = await self.recv(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message: {json.dumps(message)[:200]}")

    async def closed(self, timeout: float = 5.0) -> tuple[int, str]:
        """Read until the server closes; return (code, reason)."""
        async with asyncio.timeout(timeout):
            try:
                while True:
                    server_message(await self.ws.recv())
            except ConnectionClosed as closed:
                received = closed.rcvd
        if received is None:
            raise AssertionError("no close frame from the server")
        return received.code, received.reason

    async def close(self) -> None:
        await self.ws.close()


def server_message(raw: str | bytes) -> dict:
    """Decode one server frame; Live never sends JSON error objects (errors are close frames)."""
    message = json.loads(raw)
    assert isinstance(message, dict), f"expected a JSON object, got {json.dumps(message)[:200]}"
    assert "error" not in message, f"the server sent a JSON error object: {raw[:200]!r}"
    return message


@pytest.fixture
async def raw_client():
    """`await raw_client(emu, key=..., path=..., headers=..., frames=...)` -> RawClient."""
    clients: list[RawClient] = []

    async def open_client(
        emu: EmulatorServer,
        *,
        key: str | None = KEY,
        version: str = "v1beta",
        path: str | None = None,
        query: str | None = None,
        headers: dict | None = None,
        frames: str = "binary",
    ) -> RawClient:
        path = path or LIVE_PATH.format(version=version)
        if query is None:
            query = f"key={key}" if key else ""
        url = emu.url + path + (f"?{query}" if query else "")
        ssl_context = None
        if emu.config.tls:
            ssl_context = ssl.create_default_context(cafile=emu.config.tls_cert)
        ws = await connect(url, additional_headers=headers, ssl=ssl_context, open_timeout=5)
        client = RawClient(ws, frames)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.ws.close()


def is_turn_complete(message: dict) -> bool:
    return bool(message.get("serverContent", {}).get("turnComplete"))


def kinds(messages: list[dict]) -> list[str]:
    """A readable shape of each message: top-level key, serverContent fields joined by +."""
    shapes = []
    for message in messages:
        if "serverContent" in message:
            content = message["serverContent"]
            fields = []
            for name, value in content.items():
                if name == "modelTurn":
                    for part in value["parts"]:
                        fields.append("audio" if "inlineData" in part else next(iter(part)))
                else:
                    fields.append(name)
            shape = "+".join(fields)
            if "usageMetadata" in message:
                shape += "+usage"
            shapes.append(shape)
        else:
            shapes.append(next(iter(message)))
    return shapes


def squash(shapes: list[str]) -> list[str]:
    """Collapse runs of one shape: ["audio", "audio", "x"] -> ["audio*", "x"]."""
    out: list[str] = []
    for shape in shapes:
        if out and out[-1].rstrip("*") == shape:
            out[-1] = shape + "*"
        else:
            out.append(shape)
    return out


def audio_parts(messages: list[dict]) -> list[dict]:
    return [
        part["inlineData"]
        for message in messages
        for part in message.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
        if "inlineData" in part
    ]


def text_of(messages: list[dict], field: str = "outputTranscription") -> str:
    return "".join(
        message["serverContent"][field]["text"]
        for message in messages
        if field in message.get("serverContent", {})
    )


def model_text(messages: list[dict]) -> str:
    return "".join(
        part["text"]
        for message in messages
        for part in message.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
        if "text" in part
    )


# --- PCM ------------------------------------------------------------------------------------


def tone(seconds: float, rate: int = 16000, amplitude: int = 8000, hz: float = 220.0) -> bytes:
    samples = array(
        "h",
        (
            int(amplitude * math.sin(2 * math.pi * hz * index / rate))
            for index in range(int(seconds * rate))
        ),
    )
    return samples.tobytes()


def silence(seconds: float, rate: int = 16000) -> bytes:
    return bytes(int(seconds * rate) * 2)


def rms(pcm: bytes) -> float:
    count = len(pcm) // 2
    samples = struct.unpack(f"<{count}h", pcm[: count * 2])
    return math.sqrt(sum(s * s for s in samples) / max(count, 1))


# --- the official SDK ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture
async def tls_emulator(start_emulator, tls_files):
    """`await tls_emulator(**config)`: an emulator serving wss:// with the test certificate."""

    async def start(**overrides) -> EmulatorServer:
        cert, key = tls_files
        return await start_emulator(tls_cert=cert, tls_key=key, **overrides)

    return start


def sdk_client(emu: EmulatorServer, key: str = KEY, version: str = "v1beta") -> genai.Client:
    """An unmodified google-genai client aimed at a TLS emulator (its certificate trusted)."""
    assert emu.config.tls, "the SDK forces wss://: start the emulator with tls_emulator"
    context = ssl.create_default_context(cafile=emu.config.tls_cert)
    return genai.Client(
        api_key=key,
        http_options=types.HttpOptions(
            base_url=emu.http_url + "/",  # the trailing slash gives the SDK's usual "//ws/..."
            api_version=version,
            async_client_args={"ssl": context},
        ),
    )


@pytest.fixture
async def sdk(tls_emulator):
    """(emulator, client) with the default test config over TLS."""
    emu = await tls_emulator()
    return emu, sdk_client(emu)


async def sdk_turn(session, timeout: float = 5.0) -> list:
    """One turn as the SDK's `receive()` yields it (it stops after turnComplete)."""
    async with asyncio.timeout(timeout):
        return [message async for message in session.receive()]


def sdk_audio(messages) -> bytes:
    return b"".join(
        part.inline_data.data
        for message in messages
        if message.server_content and message.server_content.model_turn
        for part in message.server_content.model_turn.parts or []
        if part.inline_data
    )


def sdk_transcript(messages, field: str = "output_transcription") -> str:
    return "".join(
        getattr(message.server_content, field).text
        for message in messages
        if message.server_content and getattr(message.server_content, field)
    )
