"""Backpressure, under daphne (assistant/live/compat.py, fix 8) and uvicorn (pastra_site/serve.py,
fix 2): a frame to a client waits while the server holds more than 64 KiB for it, so the
session's downlink policy applies (drop the oldest model audio beyond 2 MiB; a client stalled
for 10 s is ended, 4433) instead of the server buffering a whole reply in memory."""

import asyncio
import contextlib
import socket
from types import SimpleNamespace

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from assistant.live import compat, shutdown
from tests.deploy.conftest import WebSession, both_servers


class Transport:
    def __init__(self) -> None:
        self.producer = "http-channel"

    def unregisterProducer(self):
        self.producer = None

    def registerProducer(self, producer, streaming):
        assert self.producer is None
        assert streaming
        self.producer = producer


async def test_send_waits_while_twisted_is_full(monkeypatch):
    protocol = SimpleNamespace(transport=Transport())
    writable = compat.attach_writable(protocol)
    assert protocol.transport.producer is writable
    await asyncio.wait_for(compat.wait_writable(protocol), 0.1)  # not paused

    writable.pauseProducing()  # Twisted: more than 64 KiB buffered
    waiter = asyncio.ensure_future(compat.wait_writable(protocol))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    writable.resumeProducing()  # drained
    await asyncio.wait_for(waiter, 1)

    writable.pauseProducing()  # bounded: a frame is never held forever
    monkeypatch.setattr(compat, "SEND_WAIT_SECONDS", 0.05)
    await asyncio.wait_for(compat.wait_writable(protocol), 1)
    monkeypatch.setattr(shutdown, "draining", True)  # nor while draining
    monkeypatch.setattr(compat, "SEND_WAIT_SECONDS", 30)
    await asyncio.wait_for(compat.wait_writable(protocol), 0.1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.usefixtures("settled")
@both_servers
async def test_a_client_that_stops_reading_is_ended_as_slow(start_worker, alice, login_cookie):

    worker = start_worker("slow")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", worker.port))
    ws = await connect(
        worker.ws_url + "/ws/live/",
        sock=sock,
        origin=worker.base_url,
        additional_headers={"Cookie": await login_cookie(alice)},
        compression=None,
        max_queue=1,
        open_timeout=10,
    )
    web = WebSession(ws)
    await ws.send(orjson.dumps({"type": "start", "modality": "audio"}).decode())
    await web.until(lambda e: e["type"] == "session" and e["state"] == "ready")
    # Each "You said: …" is the emulator's longest reply: 48 s of speech (2.3 MB), streamed
    # at 20x real time. The loopback's kernel buffers take about 4 MB before the server's
    # own buffer fills (one reply fits in them under uvicorn), so the client keeps asking.
    said = orjson.dumps({"type": "text", "text": "word " * 200}).decode()
    turns = 0

    async def keep_talking() -> None:
        nonlocal turns
        while True:
            await ws.send(said)
            turns += 1
            await asyncio.sleep(3)

    talker = asyncio.create_task(keep_talking())
    # Not reading: the buffers fill within seconds, then the session's writer waits; after
    # 10 s of that (checked every 5 s) the session ends the client as too slow.
    try:
        async with asyncio.timeout(40):
            while "live session ended: slow_client" not in worker.log.read_text():
                await asyncio.sleep(0.25)
    finally:
        talker.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await talker
    received = 0
    try:
        async with asyncio.timeout(10):
            while True:
                received += len(await ws.recv())
    except ConnectionClosed as closed:
        code, reason = closed.rcvd.code, closed.rcvd.reason
    worker.stop()
    assert (code, reason) == (4433, "Your connection could not keep up. Reconnect to continue.")
    # Never all that was said: what the server held for the client is bounded (the kernel's
    # send buffer, at most 4 MiB here, and 64 KiB of the server's own).
    assert turns * 2_300_000 > 4 * 2**20
    assert received < 4 * 2**20
