"""Live-bridge fixtures: an emulator on a real socket, communicators wired to the consumers,
PCM generators, and helpers that read the web protocol's mixed JSON/binary frames."""

import asyncio
import math
import struct

import orjson
import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import re_path

from assistant.consumers import GeminiConsumer, LiveConsumer
from assistant.routing import GEMINI_PATH
from gemini_emulator import EmulatorConfig, EmulatorServer

MODEL = "gemini-3.8-live"
TEXT_MODEL = "gemini-live-text-test"
GEMINI_WS = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"

# Fast, deterministic: synthetic voice, reply audio 20x real time.
EMULATOR = {"tts": "synthetic", "pace": 20.0, "chunk_ms": 100, "connection_seconds": 600.0}


@pytest.fixture(autouse=True)
async def _close_thread_connections(close_worker_thread_connections):
    """The async ORM and database_sync_to_async use asgiref's shared thread, whose database
    connections pytest-django never closes: close them so the test database can be dropped."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def live_settings(settings):
    settings.PASTRA_MODEL = MODEL
    settings.PASTRA_ALLOWED_MODELS = [MODEL, TEXT_MODEL]
    settings.PASTRA_UPSTREAM_IS_EMULATOR = True
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return settings


@pytest.fixture
async def start_emulator(live_settings):
    """`await start_emulator(**config)`: a running emulator that the bridge uses."""
    servers = []

    async def start(**overrides):
        server = EmulatorServer(EmulatorConfig(**{**EMULATOR, **overrides}))
        await server.start()
        servers.append(server)
        live_settings.PASTRA_UPSTREAM_URL = server.url
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def emulator(start_emulator):
    return await start_emulator()


def with_user(app, user):
    """Test-only stand-in for AuthMiddlewareStack: put a user in the scope explicitly."""

    async def wrapped(scope, receive, send):
        return await app({**scope, "user": user}, receive, send)

    return wrapped


def router():
    return URLRouter(
        [
            re_path(r"^ws/live/$", LiveConsumer.as_asgi()),
            re_path(GEMINI_PATH, GeminiConsumer.as_asgi()),
        ]
    )


def web_client(user) -> WebsocketCommunicator:
    return WebsocketCommunicator(with_user(router(), user), "/ws/live/")


def gemini_client(token: str = "", *, path: str = GEMINI_WS, headers=None):
    query = f"?key={token}" if token else ""
    return WebsocketCommunicator(router(), path + query, headers=headers or [])


# --- PCM ----------------------------------------------------------------------------------


def tone(ms: int, *, rate: int = 16000, freq: float = 440.0, amplitude: int = 8000) -> bytes:
    count = rate * ms // 1000
    return struct.pack(
        f"<{count}h",
        *(int(amplitude * math.sin(2 * math.pi * freq * i / rate)) for i in range(count)),
    )


def silence(ms: int, *, rate: int = 16000) -> bytes:
    return bytes(rate * ms // 1000 * 2)


def frames(pcm: bytes, *, ms: int = 100, rate: int = 16000) -> list[bytes]:
    step = rate * ms // 1000 * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


# --- reading the web protocol -------------------------------------------------------------


class Collected:
    """Frames received so far: JSON events in order, and binary audio."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.audio: list[bytes] = []

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]

    def finals(self, role: str) -> list[str]:
        return [e["text"] for e in self.of("transcript") if e["role"] == role and e.get("final")]


async def receive_until(comm, predicate, *, seconds: float = 10.0, into=None) -> Collected:
    """Receive frames until predicate(event) holds for a JSON event."""
    got = into or Collected()
    async with asyncio.timeout(seconds):
        while True:
            message = await comm.receive_output(timeout=seconds)
            if message["type"] == "websocket.close":
                got.events.append({"type": "__close__", "code": message.get("code")})
                if predicate(got.events[-1]):
                    return got
                raise AssertionError(f"closed early: {message} after {got.types()}")
            if message.get("bytes") is not None:
                got.audio.append(message["bytes"])
                continue
            event = orjson.loads(message["text"])
            got.events.append(event)
            if predicate(event):
                return got


async def start_web(comm, **options) -> dict:
    """Connect, send `start`, wait for `session` ready; returns the ready event."""
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "start", **options})
    got = await receive_until(comm, lambda e: e["type"] == "session" and e["state"] == "ready")
    return got.events[-1]


async def long_reply_playing(comm) -> Collected:
    """Ask for the emulator's `/long` reply and return once its text and two chunks of its
    audio have arrived: a reply still playing, to talk over or interrupt."""
    await comm.send_json_to({"type": "text", "text": "/long"})
    got = await receive_until(comm, lambda e: e["type"] == "transcript" and e["role"] == "model")
    while len(got.audio) < 2:
        message = await comm.receive_output(timeout=5)
        if message.get("bytes"):
            got.audio.append(message["bytes"])
    return got


async def web_turn(comm, text: str, *, seconds: float = 10.0) -> Collected:
    await comm.send_json_to({"type": "text", "text": text})
    return await receive_until(comm, lambda e: e["type"] == "turn.complete", seconds=seconds)


async def receive_close(comm, *, seconds: float = 10.0) -> tuple[list[dict], int]:
    """Events until the close frame; returns (events, close code)."""
    got = await receive_until(comm, lambda e: e["type"] == "__close__", seconds=seconds)
    return got.events[:-1], got.events[-1]["code"]


# --- Gemini protocol over a communicator --------------------------------------------------


async def gemini_recv(comm, *, seconds: float = 10.0) -> dict:
    message = await comm.receive_output(timeout=seconds)
    if message["type"] == "websocket.close":
        return {"__close__": message.get("code"), "reason": message.get("reason", "")}
    return orjson.loads(message.get("bytes") or message.get("text"))


async def gemini_until(comm, predicate, *, seconds: float = 10.0) -> list[dict]:
    got = []
    async with asyncio.timeout(seconds):
        while True:
            msg = await gemini_recv(comm, seconds=seconds)
            got.append(msg)
            if predicate(msg):
                return got
            if "__close__" in msg:
                raise AssertionError(f"closed early: {msg} after {got[:-1]}")


def turn_complete(msg: dict) -> bool:
    return bool(msg.get("serverContent", {}).get("turnComplete"))


def said(messages: list[dict]) -> str:
    """The model's words in a list of Gemini messages (transcript or text parts)."""
    out = []
    for msg in messages:
        content = msg.get("serverContent") or {}
        if tx := content.get("outputTranscription"):
            out.append(tx.get("text", ""))
        for part in (content.get("modelTurn") or {}).get("parts", []):
            if "text" in part:
                out.append(part["text"])
    return "".join(out)


async def wait_for(predicate, *, seconds: float = 5.0, step: float = 0.02):
    async with asyncio.timeout(seconds):
        while not (result := predicate()):
            await asyncio.sleep(step)
    return result


# --- tokens and the tools' HTTP seam --------------------------------------------------------


@pytest.fixture
def make_token():
    from assistant.services import access_token_create

    def make(user) -> str:
        return access_token_create(user=user, name="test")[1]

    return make


@pytest.fixture
def alice_token(alice, make_token):
    return make_token(alice)


@pytest.fixture
def weather_http(http_routes, settings):
    """The weather tool's HTTP seam (the autouse `http_routes`) answers from recorded
    Open-Meteo responses; returns the requests it saw."""
    from tests.http_seam import load_fixture

    http_routes.json(
        "GET", settings.PASTRA_WEATHER_GEOCODE_URL, load_fixture("open-meteo-geocoding-paris.json")
    )
    http_routes.json(
        "GET", settings.PASTRA_WEATHER_FORECAST_URL, load_fixture("open-meteo-forecast.json")
    )
    return http_routes.requests


# --- real ASGI servers: daphne and uvicorn subprocesses ------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent.parent


def database_url() -> str:
    """The test database, as a DATABASE_URL a subprocess can use."""
    from django.db import connection

    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    port = f":{conf['PORT']}" if conf["PORT"] else ""
    return f"postgres://{auth}@{conf['HOST'] or '127.0.0.1'}{port}/{conf['NAME']}"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Worker:
    """Pastra under one ASGI server in a subprocess; `Daphne` and `Uvicorn` say which. The
    deployment tests run both (tests/deploy/conftest.py, `server`)."""

    server = ""

    def __init__(self, env: dict, tmp_path, *, tls: tuple[str, str] | None = None, name="web"):
        import os
        import subprocess

        self.port = free_port()
        self.log = tmp_path / f"{self.server}-{name}-{self.port}.log"
        full_env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        full_env.update(
            {
                "DJANGO_SETTINGS_MODULE": "pastra_site.settings",
                "DEBUG": "1",
                "PASTRA_HTTPS": "0",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DATABASE_URL": database_url(),
                "PASTRA_MODEL": MODEL,
                "PASTRA_ALLOWED_MODELS": f"{MODEL},{TEXT_MODEL}",
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                **env,
            }
        )
        self.scheme = "https" if tls else "http"
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(
            self.command(tls),
            cwd=ROOT,
            env=full_env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def command(self, tls: tuple[str, str] | None) -> list[str]:
        raise NotImplementedError

    def _wait(self, seconds: float = 20.0) -> None:
        import socket
        import time

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.server} exited: {self.log.read_text()[-2000:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.server} did not start")

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1)

    def stop(self) -> str:
        import subprocess

        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()
        return self.log.read_text()


class Daphne(Worker):
    """`daphne pastra_site.asgi:application` (plain or TLS): `make run`'s server."""

    server = "daphne"

    def command(self, tls: tuple[str, str] | None) -> list[str]:
        import sys

        if tls:
            endpoint = f"ssl:{self.port}:privateKey={tls[1]}:certKey={tls[0]}:interface=127.0.0.1"
            args = ["-e", endpoint]
        else:
            args = ["-b", "127.0.0.1", "-p", str(self.port)]
        return [sys.executable, "-m", "daphne", *args, "pastra_site.asgi:application"]


class Uvicorn(Worker):
    """`python -m pastra_site.serve`: uvicorn as the image and compose run it (plain only)."""

    server = "uvicorn"

    def command(self, tls: tuple[str, str] | None) -> list[str]:
        import sys

        assert tls is None, "the launcher serves plain HTTP (TLS ends at the proxy)"
        return [
            sys.executable, "-m", "pastra_site.serve", "--host", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip


WORKERS = {"daphne": Daphne, "uvicorn": Uvicorn}


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture(scope="session")
def thread_emulator():
    from gemini_emulator import EmulatorThread

    with EmulatorThread(EmulatorConfig(**EMULATOR)) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def pastra_tls(django_db_setup, thread_emulator, tls_files, tmp_path_factory):
    """One Pastra (daphne, TLS) for the session, in front of a thread-run emulator."""
    server = Daphne(
        {"PASTRA_UPSTREAM_URL": thread_emulator.url},
        tmp_path_factory.mktemp("daphne"),
        tls=tls_files,
    )
    yield server
    server.stop()
    if "postgres" in database_url():  # let its backends exit before the test DB is dropped
        import time

        time.sleep(1.0)


def setups(emulator) -> int:
    return emulator.stats()["total"]["setups"]


@pytest.fixture
async def settled():
    """After a test against a real server: wait until its sessions have released their
    leases (their final writes are done) before the database is flushed."""
    yield
    from assistant.models import SessionLease

    for _ in range(100):
        if not await SessionLease.objects.aexists():
            return
        await asyncio.sleep(0.05)


@pytest.fixture
def upstream_setups(monkeypatch):
    """The setups Pastra opened upstream connections with (a spy: every open goes on)."""
    from assistant.live.upstream import Upstream

    sent: list[dict] = []
    original = Upstream.open.__func__

    async def spy(cls, setup, **kwargs):
        sent.append(setup["setup"])
        return await original(cls, setup, **kwargs)

    monkeypatch.setattr(Upstream, "open", classmethod(spy))
    return sent


def spy_sessions(monkeypatch) -> list:
    """The LiveSession objects created from now on in this test (a spy: behaviour unchanged)."""
    from assistant.live import session as session_module

    made = []
    original = session_module.LiveSession.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(session_module.LiveSession, "__init__", spy)
    return made
