"""What pastra_site/serve.py relies on in uvicorn and websockets, pinned, and its fixes on a
protocol fed by hand (no server process). Each pin names the fix to revisit when an upgrade
changes the behaviour it works around; the deployment tests (`[uvicorn]` ids) check the
behaviour end to end."""

import asyncio
import inspect
import struct

import pytest
import uvicorn
import websockets
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from assistant.live import compat
from assistant.live.compat import too_big_reason
from pastra_site import serve
from tests.deploy.conftest import ROOT

VERIFIED = {
    "uvicorn": (uvicorn.__version__, "0.54."),
    "websockets": (websockets.__version__, "17."),
}
HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def test_serve_was_verified_against_these_versions():
    for package, (version, verified) in VERIFIED.items():
        assert version.startswith(verified), (
            f"{package} {version}: pastra_site/serve.py was verified against {verified}x. "
            "Re-check each of its fixes (the pins below say which behaviour each needs), run "
            "tests/deploy against both servers, then update VERIFIED here."
        )


def test_uvicorn_still_behaves_as_the_launcher_assumes():
    sansio = inspect.getsource(WebSocketsSansIOProtocol)
    # Fix 1: on shutdown, uvicorn closes every open WebSocket with a bare 1012 at once.
    assert "self.conn.send_close(1012)" in inspect.getsource(WebSocketsSansIOProtocol.shutdown)
    # and raises the captured signal again once served (the process then exits -15).
    assert "signal.raise_signal" in inspect.getsource(uvicorn.Server.capture_signals)
    # Fix 2: a send waits for the transport without a limit.
    assert "await self.writable.wait()" in inspect.getsource(WebSocketsSansIOProtocol.send)
    # Fix 4: after a parser error (an oversize message) uvicorn closes the TCP connection.
    parser_error = inspect.getsource(WebSocketsSansIOProtocol.handle_parser_exception)
    assert "self.transport.close()" in parser_error
    # and websockets, failing the connection, discards everything up to EOF (the client's
    # Close reply too); it refuses the message on its header, before the mask and payload.
    from websockets.frames import Frame
    from websockets.protocol import Protocol

    assert "self.parser = self.discard()" in inspect.getsource(Protocol.fail)
    parse = inspect.getsource(Frame.parse)
    assert parse.index("raise PayloadTooBig(length, max_size)") < parse.index("mask_bytes = yield")
    # What the fixes use: the protocol's state and the server's connections.
    for name in ("self.close_sent", "self.close_timer", "self.close_timeout", "self.read_paused"):
        assert name in sansio, name
    assert isinstance(ServerState().connections, set)


def test_the_production_configuration():
    config = serve.config("127.0.0.1", 8000)
    assert (config.ws, config.http, config.loop) == (serve.PastraWebSocket, "httptools", "uvloop")
    assert config.ws_max_size == 1048576
    assert config.ws_per_message_deflate is False
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (20.0, 30.0)
    assert config.proxy_headers is False
    assert (config.lifespan, config.access_log, config.server_header) == ("off", False, False)
    assert config.log_config is None
    assert config.timeout_graceful_shutdown == 1


# --- the protocol, fed by hand ------------------------------------------------------------------


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = self.eof = False

    def write(self, data) -> None:
        self.out += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name)


def server_frames(out: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each server frame after the handshake's response."""
    data, frames = out[out.index(b"\r\n\r\n") + 4 :], []
    while data:
        opcode, length, start = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            (length,), start = struct.unpack("!H", data[2:4]), 4
        frames.append((opcode, bytes(data[start : start + length])))
        data = data[start + length :]
    return frames


def closed_with(transport) -> tuple[int, str]:
    ((_, payload),) = [f for f in server_frames(transport.out) if f[0] == 8]
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


@pytest.fixture
def socket():
    """`await socket(app)`: a PastraWebSocket after an accepted handshake, its transport."""
    made = []

    async def make(then):
        async def app(scope, receive, send):
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            await then(send)
            while (await receive())["type"] != "websocket.disconnect":
                pass

        config = serve.config("127.0.0.1", 0, app=app)
        config.load()
        protocol = serve.PastraWebSocket(config=config, server_state=ServerState(), app_state={})
        transport = Transport()
        protocol.connection_made(transport)
        protocol.data_received(HANDSHAKE)
        await asyncio.sleep(0.01)
        made.append(protocol)
        return protocol, transport

    yield make
    for protocol in made:
        if protocol.close_timer is not None:
            protocol.close_timer.cancel()
        protocol.connection_lost(None)


async def test_a_long_reason_is_cut_and_a_reserved_code_becomes_1011(socket):
    async def close_long(send):
        await send({"type": "websocket.close", "code": 4001, "reason": "é" * 100})
        await send({"type": "websocket.send", "text": "after the close"})  # dropped
        await send({"type": "websocket.close", "code": 1000})  # dropped

    protocol, transport = await socket(close_long)
    code, reason = closed_with(transport)
    assert (code, reason) == (4001, "é" * 61)  # 122 bytes: the 123rd would split a character
    assert protocol.close_timeout == compat.CLOSE_HANDSHAKE_SECONDS

    async def close_reserved(send):
        await send({"type": "websocket.close", "code": 1006})

    _, transport = await socket(close_reserved)
    assert closed_with(transport) == (1011, "")


async def test_an_oversize_message_closes_1009_then_reads_until_the_clients_close(socket):
    async def nothing(send):
        pass

    protocol, transport = await socket(nothing)
    size = 1048576 + 1
    header = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", size) + b"\0\0\0\0"  # zero mask
    protocol.data_received(header + b"x" * 1000)
    assert closed_with(transport) == (1009, too_big_reason(1048576))
    for _ in range(size // 100_000):  # the rest arrives: read and dropped, never buffered
        protocol.data_received(b"x" * 100_000)
        assert len(protocol.conn.reader.buffer) == 0
    assert not transport.closed  # no reset with the client's data unread
    rest = size - 1000 - size // 100_000 * 100_000
    ping = bytes([0x89, 0x80]) + b"\0\0\0\0"
    reply = bytes([0x88, 0x82]) + b"\0\0\0\0" + struct.pack("!H", 1009)
    protocol.data_received(b"x" * rest + ping + reply[:1])
    assert not transport.closed
    protocol.data_received(reply[1:])
    assert transport.closed  # the client answered our Close: the handshake is complete
    assert protocol.close_timer is None


async def test_a_send_waits_for_the_client_at_most_send_wait_seconds(socket):
    protocol, transport = await socket(lambda send: asyncio.sleep(0))
    protocol.send_wait = 0.1
    protocol.writable.clear()  # the transport holds more than its high-water mark
    await asyncio.wait_for(protocol.send({"type": "websocket.send", "bytes": b"frame"}), 2)
    assert (2, b"frame") in server_frames(transport.out)
    # A Close never waits.
    await asyncio.wait_for(protocol.send({"type": "websocket.close", "code": 1000}), 0.05)
    assert closed_with(transport) == (1000, "")


async def test_the_fast_send_goes_out_while_writable_and_never_after_a_close(socket):
    protocol, transport = await socket(lambda send: asyncio.sleep(0))
    send_now = protocol.scope["extensions"][compat.SEND_NOW]  # what the application finds
    assert send_now(b"frame")
    assert send_now("text")
    protocol.writable.clear()  # the transport holds more than its high-water mark
    assert not send_now(b"held")  # the application's writer task sends it: `send` waits
    protocol.writable.set()
    await protocol.send({"type": "websocket.close", "code": 1000})
    assert not send_now(b"after the close")
    assert server_frames(transport.out) == [(2, b"frame"), (1, b"text"), (8, b"\x03\xe8")]


# --- the image's uvicorn ------------------------------------------------------------------------


def locked(name: str) -> dict[str, tuple[str, frozenset[str]]]:
    """{package: (version line, its hashes)} of a lock file."""
    pins, current = {}, None
    for line in (ROOT / name).read_text().splitlines():
        if line.startswith("    --hash="):
            pins[current][1].add(line.split("=", 1)[1].rstrip(" \\"))
        elif line and not line.startswith((" ", "#")):
            current = line.split("==")[0].lower()
            pins[current] = (line.rstrip(" \\"), set())
    return {name: (pin, frozenset(hashes)) for name, (pin, hashes) in pins.items()}


def test_the_images_uvicorn_is_the_one_the_tests_ran():
    """The image installs requirements.lock alone: uvicorn and its fast paths are runtime
    pins there, the same the tests (dev lock) ran."""
    dev, runtime = locked("requirements-dev.lock"), locked("requirements.lock")
    for package in ("uvicorn", "uvloop", "httptools", "h11", "websockets"):
        assert package in runtime, f"requirements.lock lacks {package}"
        assert dev[package] == runtime[package], f"{package}: dev and runtime locks differ"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements.lock\n" in dockerfile
