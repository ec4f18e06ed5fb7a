"""The uplink's fast path (`Upstream.send_now`, link.UpstreamLink.send_now): a message goes
straight to the upstream socket when nothing waits before it, and only then. Over real
sockets: a websockets server that stops reading (its receive buffer full, the client's
transport paused) shows that the fast path honours backpressure, keeps the order and loses
nothing, and that a peer which stops answering pings is dropped; a live session shows that a
steady stream takes the fast path and a burst is whole on either path."""

import asyncio
import contextlib
import json
import socket

import pytest
from websockets.asyncio.server import serve

from assistant.live import upstream as upstream_module
from assistant.live.upstream import Upstream, UpstreamClosed
from tests.live.conftest import frames as split
from tests.live.conftest import spy_sessions, start_web, tone, web_client

pytestmark = pytest.mark.django_db(transaction=True)

BIG = 64 * 1024


class SlowGemini:
    """Answers the setup, then reads nothing until `reading` is set; keeps what it read."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.received: list[bytes] = []
        self.closing = False

    async def handler(self, ws) -> None:
        await ws.recv()
        await ws.send(json.dumps({"setupComplete": {}}))
        if self.closing:
            await ws.close(1011, "gone")
            return
        await self.reading.wait()
        with contextlib.suppress(Exception):
            async for message in ws:
                self.received.append(message.encode() if isinstance(message, str) else message)


@contextlib.asynccontextmanager
async def slow_gemini(live_settings, **attrs):
    gemini = SlowGemini()
    vars(gemini).update(attrs)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # accepted sockets inherit it
    sock.bind(("127.0.0.1", 0))
    # max_queue=1: websockets stops reading the socket once a message waits for the handler.
    async with serve(gemini.handler, sock=sock, max_size=None, max_queue=1, compression=None):
        live_settings.PASTRA_UPSTREAM_URL = f"ws://127.0.0.1:{sock.getsockname()[1]}"
        try:
            yield gemini
        finally:
            gemini.reading.set()


def message(n: int) -> bytes:
    return b'{"n":%d,"pad":"%s"}' % (n, b"x" * BIG)


async def test_send_now_stops_at_backpressure_and_nothing_is_lost_or_reordered(live_settings):
    async with slow_gemini(live_settings) as gemini:
        upstream = await Upstream.open({"setup": {}})
        # What send_now reads besides these: websockets' own names, pinned (17.x).
        assert upstream._ws.send_in_progress is None
        assert callable(upstream._ws.set_connection_exc)
        transport = upstream._ws.transport
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport.set_write_buffer_limits(high=BIG)
        sent = 0
        for _ in range(3):  # until the peer's buffers are full: it reads nothing
            while sent < 300 and upstream.send_now(message(sent)):
                sent += 1
            await asyncio.sleep(0.1)
        assert 0 < sent < 300, "the fast path never met the paused transport"
        assert not upstream.send_now(message(sent)), "it sent past backpressure"
        queued = asyncio.create_task(upstream.send(message(sent)))  # the writer's path waits
        await asyncio.sleep(0.2)
        assert not queued.done()
        gemini.reading.set()
        await asyncio.wait_for(queued, 10)
        assert upstream.send_now(message(sent + 1))  # drained: the fast path again
        await upstream.close()
        for _ in range(200):
            if len(gemini.received) == sent + 2:
                break
            await asyncio.sleep(0.05)
        assert [json.loads(m)["n"] for m in gemini.received] == list(range(sent + 2))


async def test_send_now_refuses_a_closed_connection_and_send_says_why(live_settings):
    async with slow_gemini(live_settings, closing=True):
        upstream = await Upstream.open({"setup": {}})
        with pytest.raises(UpstreamClosed) as closed:
            await upstream.recv()
        assert closed.value.code == 1011
        assert not upstream.send_now(message(0))
        with pytest.raises(UpstreamClosed):
            await upstream.send(message(0))


async def test_a_dead_upstream_is_found_by_its_missing_pongs(live_settings, monkeypatch):
    """Pastra pings the upstream (rarely: Google's pongs are slow, upstream.py) and drops a
    connection whose pong never comes; a healthy one outlives several pings. Scaled down."""
    monkeypatch.setattr(upstream_module, "PING_INTERVAL", 0.2)
    monkeypatch.setattr(upstream_module, "PING_TIMEOUT", 0.5)
    async with slow_gemini(live_settings) as gemini:
        healthy = await Upstream.open({"setup": {}})
        gemini.reading.set()  # it reads, so websockets answers each ping
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(healthy.recv(), 1.5)  # ~7 pings answered, still open
        await healthy.close()
    async with slow_gemini(live_settings):
        dead = await Upstream.open({"setup": {}})
        dead.send_now(message(0))  # queued for the handler, which never reads: websockets
        dead.send_now(message(1))  # stops reading the socket, and a ping is never answered
        with pytest.raises(UpstreamClosed) as closed:
            await asyncio.wait_for(dead.recv(), 10)
        assert closed.value.code == 1006  # no pong, then no answer to the keepalive's Close


def count_writer_sends(monkeypatch) -> list:
    calls = []
    real = Upstream.send

    async def send(self, payload):
        calls.append(payload)
        await real(self, payload)

    monkeypatch.setattr(Upstream, "send", send)
    return calls


async def test_a_steady_stream_takes_the_fast_path(alice, start_emulator, monkeypatch):
    await start_emulator(mode="echo")
    writer_sends = count_writer_sends(monkeypatch)
    comm = web_client(alice)
    await start_web(comm)
    for frame in split(tone(1000)):  # one frame at a time, each echoed before the next
        await comm.send_to(bytes_data=frame)
        echoed = b""
        while len(echoed) < len(frame):
            echoed += (await comm.receive_output(timeout=5)).get("bytes") or b""
        assert echoed == frame
    assert writer_sends == [], f"{len(writer_sends)} of 10 frames waited for the writer task"
    await comm.disconnect()


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast_path", "writer_only"])
async def test_a_burst_of_three_seconds_of_audio_is_sent_whole(
    alice, start_emulator, monkeypatch, fast_path
):
    """A phone that buffered three seconds of speech while its network stalled sends them at
    once; the server reads them in one go. Through the fast path, or (its transport paused)
    through the writer task, which the socket's task lets run as the bounded uplink (1 s of
    audio) fills, instead of handling the whole burst first and trimming its oldest audio."""
    await start_emulator(mode="echo")  # each audio chunk answered at once with its bytes
    sessions = spy_sessions(monkeypatch)
    comm = web_client(alice)
    await start_web(comm)
    if not fast_path:
        sessions[0].uplink.send_now = None
    burst = split(tone(3000))  # 30 frames of 100 ms
    for frame in burst:  # all queued for the socket before its task runs again
        await comm.send_to(bytes_data=frame)
    echoed, total = 0, sum(map(len, burst))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            while echoed < total:
                message = await comm.receive_output(timeout=5)
                echoed += len(message.get("bytes") or b"")
    dropped = sessions[0].uplink.dropped_audio
    assert (echoed, dropped) == (total, 0), f"{echoed} of {total} bytes echoed, {dropped} dropped"
    await comm.disconnect()
