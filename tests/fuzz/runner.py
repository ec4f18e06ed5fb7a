"""Drive one fuzz case over a real socket and say how it ended: closed (code, reason), or
still working (a valid follow-up got its normal answer), or neither (a hang)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.fuzz.shapes import dumps
from tests.live.conftest import GEMINI_WS, MODEL

ANSWER_SECONDS = 15.0


@dataclass
class Outcome:
    closed: tuple[int, str] | None = None  # the close frame's code and reason (1006: none)
    answered: bool = False  # the follow-up got its answer
    refused: int | None = None  # the handshake's HTTP status, when refused
    seen: list = field(default_factory=list)  # what the server sent (for the report)

    def problem(self, *, stop_sent: bool = False) -> str:
        """ "" when this is a good end: a clear close, or a working session."""
        if self.refused is not None:
            return f"handshake refused with HTTP {self.refused}"
        if self.closed is None:
            return "" if self.answered else f"no answer and no close; got {self.seen[-5:]}"
        code, reason = self.closed
        if code == 1006:
            return "closed with 1006 (no close frame)"
        if not reason.strip() and not (code == 1000 and stop_sent):
            return f"closed with {code} and no reason"
        return ""


def _closed(exc: ConnectionClosed) -> tuple[int, str]:
    return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (1006, "")


async def _send_all(ws, frames) -> tuple[int, str] | None:
    for _kind, payload in frames:
        try:
            await ws.send(payload)
        except ConnectionClosed as exc:
            return _closed(exc)
    return None


async def _finish(ws) -> None:
    with contextlib.suppress(TimeoutError, ConnectionClosed, OSError):
        await asyncio.wait_for(ws.close(), 10)


# --- /ws/live/ ------------------------------------------------------------------------------


async def web_case(server, cookie: str, frames, *, start: bool) -> Outcome:
    """`start`: a valid `start` first (else the frames come before any start)."""
    out = Outcome()
    try:
        ws = await connect(
            server.ws_url + "/ws/live/",
            origin=server.base_url,
            additional_headers={"Cookie": cookie},
            compression=None,
            open_timeout=10,
            max_size=None,
        )
    except InvalidStatus as exc:
        out.refused = exc.response.status_code
        return out
    try:
        if start:
            await ws.send(dumps({"type": "start", "modality": "text"}))
            if not await _web_until(ws, out, lambda e: e.get("state") == "ready"):
                return out
        if closed := await _send_all(ws, frames):
            out.closed = closed
            return out
        marker = f"fuzz {uuid.uuid4().hex[:10]}"
        try:
            await ws.send(dumps({"type": "text", "text": marker}))
        except ConnectionClosed as exc:
            out.closed = _closed(exc)
            return out
        said: list[str] = []

        def answered(event: dict) -> bool:
            if event.get("type") == "transcript" and event.get("role") == "model":
                said.append(str(event.get("text")))
            return marker in "".join(said) or any(marker in s for s in said)

        out.answered = await _web_until(ws, out, answered)
        return out
    finally:
        await _finish(ws)


async def _web_until(ws, out: Outcome, predicate) -> bool:
    """Read until predicate(event); False if the socket closed (out.closed) or timed out."""
    try:
        async with asyncio.timeout(ANSWER_SECONDS):
            while True:
                frame = await ws.recv()
                if isinstance(frame, bytes):
                    continue
                event = orjson.loads(frame)
                out.seen.append(event)
                if predicate(event):
                    return True
    except ConnectionClosed as exc:
        out.closed = _closed(exc)
    except TimeoutError:
        pass
    return False


# --- the Gemini-compatible socket --------------------------------------------------------------

GEMINI_SETUP = {
    "setup": {
        "model": f"models/{MODEL}",
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "outputAudioTranscription": {},
    }
}


async def gemini_case(server, token: str, frames, *, setup: bool) -> Outcome:
    """`setup`: a valid setup first (else the frames come before any setup)."""
    out = Outcome()
    try:
        ws = await connect(
            server.ws_url + GEMINI_WS,
            additional_headers={"x-goog-api-key": token},
            compression=None,
            open_timeout=10,
            max_size=None,
        )
    except InvalidStatus as exc:
        out.refused = exc.response.status_code
        return out
    try:
        if setup:
            await ws.send(dumps(GEMINI_SETUP))
            if not await _gemini_until(ws, out, lambda m: "setupComplete" in m):
                return out
        if closed := await _send_all(ws, frames):
            out.closed = closed
            return out
        marker = f"fuzz {uuid.uuid4().hex[:10]}"
        try:
            await ws.send(dumps({"realtimeInput": {"text": marker}}))
        except ConnectionClosed as exc:
            out.closed = _closed(exc)
            return out
        said: list[str] = []

        def answered(message: dict) -> bool:
            content = message.get("serverContent") or {}
            if isinstance(content, dict):
                if isinstance(tx := content.get("outputTranscription"), dict):
                    said.append(str(tx.get("text", "")))
                for part in (content.get("modelTurn") or {}).get("parts") or ():
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        said.append(part["text"])
            return marker in "".join(said)

        out.answered = await _gemini_until(ws, out, answered)
        return out
    finally:
        await _finish(ws)


async def _gemini_until(ws, out: Outcome, predicate) -> bool:
    try:
        async with asyncio.timeout(ANSWER_SECONDS):
            while True:
                message = orjson.loads(await ws.recv())
                out.seen.append(_short(message))
                if predicate(message):
                    return True
    except ConnectionClosed as exc:
        out.closed = _closed(exc)
    except TimeoutError:
        pass
    return False


def _short(message) -> object:
    if isinstance(message, dict) and "serverContent" in message:
        content = message["serverContent"]
        return {"serverContent": sorted(content) if isinstance(content, dict) else content}
    return message


# --- the admin live view -------------------------------------------------------------------------


async def watcher_open(server, cookie: str, conversation: str, after: str):
    """A staff watcher and its first message; (None, Outcome) when it did not open."""
    out = Outcome()
    try:
        ws = await connect(
            f"{server.ws_url}/ws/admin/conversations/{conversation}/?after={after}",
            origin=server.base_url,
            additional_headers={"Cookie": cookie},
            compression=None,
            open_timeout=10,
            max_size=None,
        )
    except InvalidStatus as exc:
        out.refused = exc.response.status_code
        return None, out
    try:
        async with asyncio.timeout(ANSWER_SECONDS):
            first = orjson.loads(await ws.recv())
            out.seen.append(first)
    except ConnectionClosed as exc:
        out.closed = _closed(exc)
    except TimeoutError:
        pass
    return ws, out


async def watch_case(server, cookie: str, conversation: str, after: str, frames, turn) -> Outcome:
    """A watcher gets `frames`, then `turn()` records a turn with a marker in the watched
    conversation: the watcher must show it (or have closed clearly)."""
    ws, out = await watcher_open(server, cookie, conversation, after)
    if ws is None:
        return out
    try:
        if out.closed or not out.seen:
            return out
        if closed := await _send_all(ws, frames):
            out.closed = closed
            return out
        marker = await turn()
        try:
            async with asyncio.timeout(ANSWER_SECONDS):
                while True:
                    message = orjson.loads(await ws.recv())
                    out.seen.append({"type": message.get("type"), "n": len(message["events"])})
                    texts = [e.get("text") for e in message.get("events") or ()]
                    # A fuzzed `after` may skip past every row: any update then counts.
                    if marker in texts or after not in ("", "0"):
                        out.answered = True
                        return out
        except ConnectionClosed as exc:
            out.closed = _closed(exc)
        except TimeoutError:
            pass
        return out
    finally:
        await _finish(ws)
