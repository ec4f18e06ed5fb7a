"""Close races the long fuzz profile found (docs/security.md, Fuzzing), each made deterministic
over a real socket of each server (daphne and uvicorn): the connection leaves OPEN (the
server's Close is out, or its 1009 for an oversize message) while the client still sends, or
while the application still has something to send. The client must get a close frame with its
code and reason, and the server must log no error: no `Exception inside application` (daphne),
no `Exception in ASGI application` (uvicorn), no `task failed`.

The trick that makes them deterministic: a raw socket writes a frame and the header of a
message over the 1 MiB limit in one TCP write, so the server reads both in one go and closes
with 1009 before the application has handled the first frame."""

import asyncio
import base64
import os
import re
import struct
from datetime import UTC, datetime

import orjson
import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect

from assistant.live.compat import too_big_reason
from tests.deploy.conftest import both_servers, until_closed
from tests.live.conftest import GEMINI_WS, MODEL

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("settled"),
    both_servers,
]

LIMIT = 1048576
TOO_BIG = (1009, too_big_reason(LIMIT))
TEXT, BINARY, CLOSE = 1, 2, 8
ERRORS = re.compile(
    r"Traceback|Exception inside application|Exception in ASGI application|Unhandled Error|"
    r"task failed| ERROR | CRITICAL "
)


def frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (FIN set)."""
    return header(opcode, len(payload), mask=b"\0\0\0\0") + payload


def header(opcode: int, length: int, *, mask: bytes = b"\0\0\0\0") -> bytes:
    """A masked client frame's header (a zero mask: the payload goes as is)."""
    first = bytes([0x80 | opcode])
    if length < 126:
        return first + bytes([0x80 | length]) + mask
    if length < 2**16:
        return first + bytes([0x80 | 126]) + struct.pack("!H", length) + mask
    return first + bytes([0x80 | 127]) + struct.pack("!Q", length) + mask


def text(message) -> bytes:
    return frame(TEXT, orjson.dumps(message))


OVERSIZE = header(TEXT, LIMIT + 100_000)  # its payload never follows: the shim closes first


class Raw:
    """A minimal WebSocket client on a plain TCP connection: the test decides what reaches
    the server in one write, and when the client reads."""

    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, worker, path: str, headers: dict[str, str]) -> "Raw":
        reader, writer = await asyncio.open_connection("127.0.0.1", worker.port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{worker.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert response.startswith(b"HTTP/1.1 101"), response
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self) -> tuple[int, bytes]:
        async with asyncio.timeout(15):
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(length)

    async def until_json(self, predicate) -> dict:
        while True:
            opcode, payload = await self.recv()
            assert opcode != CLOSE, payload
            if opcode in (TEXT, BINARY) and predicate(message := orjson.loads(payload)):
                return message

    async def until_close(self, *, reply_after: float = 0.0) -> tuple[int, str]:
        """The server's close code and reason; replies (after `reply_after` seconds: the
        server stays in CLOSING meanwhile) and waits for the end of the TCP connection."""
        while True:
            opcode, payload = await self.recv()
            if opcode == CLOSE:
                break
        await asyncio.sleep(reply_after)
        try:
            await self.send(frame(CLOSE, payload[:2]))
            await asyncio.wait_for(self.reader.read(), 5)
        except ConnectionError:
            pass  # a server drops the TCP connection once it has the reply
        finally:
            self.writer.close()
        return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def gemini_headers(token: str) -> dict[str, str]:
    return {"x-goog-api-key": token}


async def web_headers(worker, cookie: str) -> dict[str, str]:
    return {"Cookie": cookie, "Origin": worker.base_url}


async def clean_log(worker) -> str:
    """The worker's error lines, once daphne has reaped the applications (once a second, it
    logs those that failed: `Exception inside application`)."""
    await asyncio.sleep(1.5)
    return "\n".join(ERRORS.findall(worker.log.read_text(errors="replace")))


async def no_lease(user) -> bool:
    from assistant.models import SessionLease

    for _ in range(100):
        if not await SessionLease.objects.filter(user=user).aexists():
            return True
        await asyncio.sleep(0.05)
    return False


# --- 1. the client keeps sending after the server's Close ---


async def gemini_client_reading_late(worker, token: str):
    """A websockets client that reads the server's Close only after it has sent more."""
    ws = await connect(
        worker.ws_url + GEMINI_WS,
        additional_headers=gemini_headers(token),
        compression=None,
        max_size=None,
    )
    ws.transport.pause_reading()
    return ws


async def test_gemini_close_survives_a_client_that_keeps_sending(start_worker, alice_token):
    worker = start_worker("race-keeps-sending")
    big = orjson.dumps({"clientContent": {"turns": [{"parts": [{"text": "x" * (LIMIT + 1)}]}]}})
    for _ in range(3):
        ws = await gemini_client_reading_late(worker, alice_token)
        await ws.send(b"\x00")  # content before setup: the server closes with 1007
        await asyncio.sleep(0.3)  # its Close waits, unread, in the client's socket
        await ws.send(big.decode())  # over the limit, after the Close: autobahn aborted (RST)
        ws.transport.resume_reading()
        code, reason = await until_closed(ws)
        assert (code, reason.split(".")[0]) == (1007, "Invalid JSON payload received")
    assert await clean_log(worker) == ""


async def test_web_close_survives_a_client_that_keeps_sending(start_worker, alice, login_cookie):
    worker = start_worker("race-keeps-sending-web")
    headers = await web_headers(worker, await login_cookie(alice))
    for _ in range(3):
        ws = await connect(
            worker.ws_url + "/ws/live/",
            origin=headers["Origin"],
            additional_headers={"Cookie": headers["Cookie"]},
            compression=None,
            max_size=None,
        )
        ws.transport.pause_reading()
        await ws.send(orjson.dumps([None, ""]).decode())  # not an event: closed before start
        await asyncio.sleep(0.3)
        await ws.send(orjson.dumps({"type": "tool.result", "output": "x" * (LIMIT + 1)}).decode())
        ws.transport.resume_reading()
        code, reason = await until_closed(ws)
        assert code not in (1006, 1009), (code, reason)
        assert reason
    assert await clean_log(worker) == ""


# --- 2. the application closes after the connection left OPEN ---


async def test_gemini_close_after_the_shims_1009_is_a_no_op(start_worker, alice_token):
    worker = start_worker("race-close-twice")
    raw = await Raw.open(worker, GEMINI_WS, gemini_headers(alice_token))
    # The application closes with 1007 for the first frame, after the shim's 1009.
    await raw.send(frame(BINARY, b"\x00") + OVERSIZE)
    assert await raw.until_close(reply_after=0.3) == TOO_BIG
    assert await clean_log(worker) == ""


# --- 3. an `error` event to a client that has gone ---


async def test_web_error_event_after_the_close_is_dropped(start_worker, alice, login_cookie):
    worker = start_worker("race-error-event")
    headers = await web_headers(worker, await login_cookie(alice))
    before = await Raw.open(worker, "/ws/live/", headers)
    await before.send(text([None, ""]) + OVERSIZE)  # an `error` event, then a close
    assert await before.until_close(reply_after=0.3) == TOO_BIG
    started = await Raw.open(worker, "/ws/live/", headers)
    await started.send(text({"type": "start", "modality": "text", "model": MODEL}))
    await started.until_json(lambda m: m.get("type") == "session" and m.get("state") == "ready")
    await started.send(frame(BINARY, b"\x00") + text([None, ""]) + OVERSIZE)
    assert await started.until_close(reply_after=0.3) == TOO_BIG
    assert await no_lease(alice)
    assert await clean_log(worker) == ""


# --- 4. the downlink writes to a client that was just closed ---


async def test_gemini_downlink_to_a_closed_client_ends_quietly(start_worker, alice, alice_token):
    worker = start_worker("race-downlink")
    raw = await Raw.open(worker, GEMINI_WS, gemini_headers(alice_token))
    setup = {
        "model": f"models/{MODEL}",
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "outputAudioTranscription": {},
    }
    await raw.send(text({"setup": setup}))
    await raw.until_json(lambda m: "setupComplete" in m)
    # The answer to the text comes while the server waits for the client's Close reply.
    await raw.send(text({"realtimeInput": {"text": "hello"}}) + OVERSIZE)
    assert await raw.until_close(reply_after=0.6) == TOO_BIG
    assert await no_lease(alice)
    assert await clean_log(worker) == ""


# --- 5. the admin live view's catch-up when its socket goes away ---


def long_conversation(user, events: int) -> str:
    from assistant.models import Conversation, ConversationEvent

    conversation = Conversation.objects.create(user=user, model=MODEL)
    now = datetime.now(UTC)
    ConversationEvent.objects.bulk_create(
        ConversationEvent(
            conversation=conversation, seq=seq, kind="user_text", text=f"t{seq}", created_at=now
        )
        for seq in range(1, events + 1)
    )
    return str(conversation.pk)


async def test_live_view_catch_up_stops_when_the_socket_goes(
    start_worker, alice, staff, login_cookie
):
    worker = start_worker("race-live-view")
    conversation = await sync_to_async(long_conversation)(alice, 5000)  # 10 parts
    headers = await web_headers(worker, await login_cookie(staff))
    path = f"/ws/admin/conversations/{conversation}/?after=0"
    closing = await Raw.open(worker, path, headers)
    await closing.send(OVERSIZE)  # at once: the catch-up has just begun
    assert await closing.until_close(reply_after=0.3) == TOO_BIG
    gone = await Raw.open(worker, path, headers)
    gone.writer.transport.abort()  # the page goes away during the catch-up
    await asyncio.sleep(1.0)
    whole = await Raw.open(worker, path, headers)  # a watcher that stays gets it all
    seen = 0
    while seen < 5000:
        seen += len((await whole.until_json(lambda m: m["type"] == "events"))["events"])
    assert seen == 5000
    whole.writer.close()
    assert await clean_log(worker) == ""
