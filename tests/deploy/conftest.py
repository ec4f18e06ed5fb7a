"""Deployment tests: real worker processes (tests/live/conftest.py's `Daphne` and `Uvicorn`), a
shared thread-run emulator, the test database, and (where marked) real Redis. Helpers speak the
web protocol (session cookie + Origin) and the Gemini protocol over real sockets.

A test marked `@both_servers` runs once per ASGI server (ids `[daphne]`, `[uvicorn]`): every
drain, backpressure, close and oversize test does, since production may run either
(docs/asgi-server.md). The others run under daphne."""

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid

import orjson
import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.live.conftest import (  # noqa: F401  (fixtures, re-exported for tests/deploy)
    GEMINI_WS,
    MODEL,
    ROOT,
    WORKERS,
    Worker,
    _close_thread_connections,
    alice_token,
    emulator,
    free_port,
    live_settings,
    make_token,
    settled,
    start_emulator,
    thread_emulator,
)


@pytest.fixture(autouse=True)
def _worker_thread_connections_closed_at_the_end(close_worker_thread_connections):
    """The live path's own database threads run here too (tests/conftest.py)."""


SERVERS = tuple(WORKERS)  # ("daphne", "uvicorn")
both_servers = pytest.mark.parametrize("server", SERVERS, indirect=True)


@pytest.fixture
def server(request) -> str:
    """Which ASGI server `start_worker` runs: daphne unless the test is `@both_servers`."""
    return getattr(request, "param", "daphne")


@pytest.fixture
def start_worker(thread_emulator, tmp_path, server):  # noqa: F811 (the imported fixture)
    """`start_worker(name, **env)`: a worker (the test's `server`) in front of the shared
    emulator."""
    started = []

    def start(name: str, **env) -> Worker:
        full = {"PASTRA_UPSTREAM_URL": thread_emulator.url, **env}
        worker = WORKERS[server](full, tmp_path, name=name)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def redis_env():
    """A shared Redis (REDIS_URL) with a private channel prefix for this test."""
    return {
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "PASTRA_CHANNEL_PREFIX": f"pastra-deploy-{uuid.uuid4().hex[:8]}",
    }


class RedisServer:
    """A private `redis-server` subprocess that a test may stop and start again (same port)."""

    def __init__(self, tmp_path) -> None:
        self.port = free_port()
        self.dir = tmp_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def own_redis(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("needs redis-server on PATH")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


# --- logins ------------------------------------------------------------------------------------


@pytest.fixture
def login_cookie(client):
    """`await login_cookie(user)`: a `Cookie` header value for a logged-in Django session."""
    from django.conf import settings

    async def login(user) -> str:
        await sync_to_async(client.force_login)(user)
        value = client.cookies[settings.SESSION_COOKIE_NAME].value
        return f"{settings.SESSION_COOKIE_NAME}={value}"

    return login


# --- the web protocol over a real socket --------------------------------------------------------


class WebSession:
    """A browser-like client of /ws/live/: JSON events in order (audio frames are counted)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.events: list[dict] = []
        self.audio = 0
        self.conversation: str | None = None

    async def until(self, predicate, *, seconds: float = 15.0) -> dict:
        async with asyncio.timeout(seconds):
            while True:
                frame = await self.ws.recv()
                if isinstance(frame, bytes):
                    self.audio += 1
                    continue
                event = orjson.loads(frame)
                self.events.append(event)
                if event["type"] == "session" and event.get("conversation"):
                    self.conversation = event["conversation"]
                if predicate(event):
                    return event

    async def turn(self, text: str, *, seconds: float = 15.0) -> str:
        """Send text; return the model's final transcript of the turn."""
        await self.ws.send(orjson.dumps({"type": "text", "text": text}).decode())
        finals = []

        def done(event) -> bool:
            if event["type"] == "transcript" and event["role"] == "model" and event.get("final"):
                finals.append(event["text"])
            return event["type"] == "turn.complete"

        await self.until(done, seconds=seconds)
        return " ".join(finals)

    async def closed(self, *, seconds: float = 15.0) -> tuple[int, str]:
        try:
            await self.until(lambda e: False, seconds=seconds)
        except ConnectionClosed as closed:
            return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "")
        raise AssertionError("unreachable")


async def web_session(worker, cookie: str, **start) -> WebSession:
    ws = await connect(
        worker.ws_url + "/ws/live/",
        origin=worker.base_url,
        additional_headers={"Cookie": cookie},
        compression=None,
        open_timeout=10,
    )
    session = WebSession(ws)
    await ws.send(orjson.dumps({"type": "start", "modality": "text", **start}).decode())
    await session.until(lambda e: e["type"] == "session" and e["state"] == "ready")
    return session


# --- the Gemini protocol over a real socket -----------------------------------------------------


async def gemini_session(worker, token: str, setup: dict | None = None):
    ws = await connect(
        worker.ws_url + GEMINI_WS,
        additional_headers={"x-goog-api-key": token},
        compression=None,
        open_timeout=10,
    )
    await ws.send(orjson.dumps({"setup": {"model": MODEL, **(setup or {})}}).decode())
    assert orjson.loads(await ws.recv()) == {"setupComplete": {}}
    return ws


async def gemini_turn(ws, text: str) -> list[dict]:
    await ws.send(orjson.dumps({"realtimeInput": {"text": text}}).decode())
    got = []
    async with asyncio.timeout(15):
        while True:
            msg = orjson.loads(await ws.recv())
            got.append(msg)
            if msg.get("serverContent", {}).get("turnComplete"):
                return got


async def until_closed(ws, *, seconds: float = 15.0) -> tuple[int, str]:
    try:
        async with asyncio.timeout(seconds):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "")


async def in_thread(function, *args, **kwargs):
    """`function` on a thread of the test loop's executor, its database connection given back
    afterwards: the thread ends with the loop, and a pooled connection it still held would
    be a pool slot lost for the rest of the run."""

    def run():
        from django.db import connections

        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    return await sync_to_async(run, thread_sensitive=False)()
