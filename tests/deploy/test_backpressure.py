"""Backpressure under daphne (assistant/live/compat.py, fix 6): a frame to a client
waits while Twisted holds more than 64 KiB for it, so the session's downlink policy applies
(drop the oldest model audio beyond 2 MiB; a client stalled for 10 s is ended, 4433) instead
of Twisted buffering a whole reply in memory."""

import asyncio
import socket
from types import SimpleNamespace

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from assistant.live import compat, shutdown


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
async def test_a_client_that_stops_reading_is_ended_as_slow(start_worker, alice, login_cookie):
    from tests.deploy.conftest import WebSession

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
    # "You said: …" about 8 minutes of speech (25 MB), streamed at 20x real time.
    await ws.send(orjson.dumps({"type": "text", "text": "word " * 1500}).decode())
    # Not reading: the buffers fill within seconds, then the session's writer waits; after
    # 10 s of that (checked every 5 s) the session ends the client as too slow.
    async with asyncio.timeout(30):
        while "live session ended: slow_client" not in worker.log.read_text():
            await asyncio.sleep(0.25)
    received = 0
    try:
        async with asyncio.timeout(10):
            while True:
                received += len(await ws.recv())
    except ConnectionClosed as closed:
        code, reason = closed.rcvd.code, closed.rcvd.reason
    worker.stop()
    assert (code, reason) == (4433, "Your connection could not keep up. Reconnect to continue.")
    assert received < 4 * 2**20  # never the whole reply
