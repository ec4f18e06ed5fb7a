"""The two bounded buffers of a live session (policy in docs/browser-protocol.md).

Uplink (client → Gemini): ordered items drained by the session's writer task; while the writer
waits with nothing queued, an item goes straight out through `send_now` (the link's: no task
switch per message when the upstream keeps up) unless that cannot send at once. At most
`live_audio_ms` of audio (1 s) while the upstream is up, `offline_audio_ms` (2 s) while it
is (re)connecting, and one video frame; on overflow the queued video frame goes first, then
the oldest audio. Control items (text, tool responses, …) are never dropped; too many of
them while the upstream is away ends the session.

Downlink (Gemini → client): frames drained by one writer task; while it waits with nothing
queued, a frame goes straight out through the server's `send_now` where it has one (serve.py's
under uvicorn: a frame that would not wait is written at once). Audio beyond
`max_audio_bytes` drops the oldest audio; control/transcript frames are never dropped (a
hard cap ends the session as a slow client). `stalled_for()` lets the session end a
client whose single send has been pending too long. What is sent, either way, is counted
(one `inc()` per frame; bytes are tallied and taken by the session in batches) and the first
audio's delay observed.

Both wait on a `Wake` (wake.py), not an asyncio.Event.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from assistant import metrics
from assistant.live.compat import client_gone_errors
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.gemini.client import AUDIO, VIDEO
from assistant.live.wake import Wake

CONTROL = "control"  # uplink items that are neither audio nor video


class Item:
    __slots__ = ("call_generation", "kind", "ms", "payload")

    def __init__(self, kind: str, payload: bytes, ms: float = 0.0, call_generation: int = -1):
        self.kind = kind
        self.payload = payload
        self.ms = ms
        # For tool responses: the upstream connection whose calls they answer.
        self.call_generation = call_generation


class Uplink:
    """Bounded client → upstream queue (one consumer: the session's writer task)."""

    __slots__ = (
        "_audio_ms",
        "_control",
        "_items",
        "_video",
        "_wake",
        "dropped_audio",
        "dropped_video",
        "live_audio_ms",
        "max_control",
        "offline",
        "offline_audio_ms",
        "send_now",
    )

    def __init__(
        self,
        *,
        live_audio_ms: float = 1000.0,
        offline_audio_ms: float = 2000.0,
        max_control: int = 256,
    ) -> None:
        self.live_audio_ms = live_audio_ms
        self.offline_audio_ms = offline_audio_ms
        self.max_control = max_control
        self.offline = True  # until the first setupComplete
        self._items: deque[Item] = deque()
        self._audio_ms = 0.0
        self._control = 0
        self._video: Item | None = None
        self._wake = Wake()
        self.dropped_audio = 0
        self.dropped_video = 0
        # The writer's send made by the caller (link.UpstreamLink.send_now): True if sent.
        self.send_now: Callable[[Item], bool] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def pace(self) -> Awaitable[None] | None:
        """After a client's message: a turn of the loop while the writer is behind (a burst,
        read in one go, would otherwise be trimmed before the writer ran), else None: no
        loop turn per message (a task switch, ~3 µs of CPU, docs/performance.md)."""
        return asyncio.sleep(0) if len(self._items) > 1 else None

    @property
    def audio_ms(self) -> float:
        return self._audio_ms

    def _push(self, item: Item) -> bool:
        """Queue `item` (True), or send it now (False) if the writer waits for it (it waits
        only with nothing queued: ahead of anything queued, nothing is sent now)."""
        if self.send_now is not None and self._wake.waiting() and self.send_now(item):
            return False
        self._items.append(item)
        if not self._wake.is_set():
            self._wake.set()
        return True

    def put_audio(self, payload: bytes, ms: float) -> None:
        if self._push(Item(AUDIO, payload, ms)):
            self._audio_ms += ms
            self._trim()

    def _trim(self) -> None:
        limit = self.offline_audio_ms if self.offline else self.live_audio_ms
        if self._audio_ms <= limit:
            return
        if self._video is not None:  # video goes first
            self._remove(self._video)
            self.dropped_video += 1
            metrics.DROPPED.labels("in", "video").inc()
        while self._audio_ms > limit:
            oldest = next((item for item in self._items if item.kind is AUDIO), None)
            if oldest is None:
                break
            self._remove(oldest)
            self.dropped_audio += 1
            metrics.DROPPED.labels("in", "audio").inc()

    def put_video(self, payload: bytes) -> None:
        if self._video is not None:  # keep only the newest frame
            self._remove(self._video)
            self.dropped_video += 1
            metrics.DROPPED.labels("in", "video").inc()
        item = Item(VIDEO, payload)
        if self._push(item):
            self._video = item

    def put_control(self, payload: bytes, *, call_generation: int = -1) -> None:
        if self._control >= self.max_control:
            raise SessionEnd(EndKind.RATE_LIMITED, "Too many messages while reconnecting.")
        if self._push(Item(CONTROL, payload, call_generation=call_generation)):
            self._control += 1

    def push_front(self, item: Item) -> None:
        """Put back an item whose send failed (the upstream went away)."""
        self._items.appendleft(item)
        self._account(item, +1)
        self._wake.set()

    def set_offline(self, offline: bool) -> None:
        self.offline = offline
        self._trim()

    def _account(self, item: Item, sign: int) -> None:
        if item.kind is AUDIO:
            self._audio_ms += sign * item.ms
        elif item.kind is CONTROL:
            self._control += sign
        elif item.kind is VIDEO:
            self._video = item if sign > 0 else None

    def _remove(self, item: Item) -> None:
        self._items.remove(item)
        self._account(item, -1)

    def pop(self) -> Item | None:
        if not self._items:
            return None
        item = self._items.popleft()
        self._account(item, -1)
        return item

    async def get(self) -> Item:
        while True:
            item = self.pop()
            if item is not None:
                return item
            self._wake.clear()
            await self._wake.wait()


Send = Callable[[bytes | str], Awaitable[None]]


# Downlink frame kinds: CONTROL is never dropped; AUDIO (pure audio) may be; MIXED carries
# audio with something else (Gemini path): counted as audio, never dropped.
CONTROL_FRAME, AUDIO_FRAME, MIXED_FRAME = 0, 1, 2


class Downlink:
    """Bounded upstream → client queue with one writer task (`run`)."""

    __slots__ = (
        "_audio_bytes",
        "_idle",
        "_items",
        "_send",
        "_send_now",
        "_sending_since",
        "_wake",
        "bytes_out",
        "closed",
        "dropped_audio",
        "first_audio_from",
        "max_audio_bytes",
        "max_items",
    )

    def __init__(
        self,
        send: Send,
        send_now: Callable[[bytes | str], bool] | None = None,
        *,
        max_audio_bytes: int = 2 * 2**20,
        max_items: int = 4000,
    ) -> None:
        self._send = send
        self._send_now = send_now  # True: sent (compat.SEND_NOW)
        self.max_audio_bytes = max_audio_bytes
        self.max_items = max_items
        self._items: deque[tuple[int, bytes | str]] = deque()
        self._audio_bytes = 0
        self._wake = Wake()
        self._idle = Wake(True)
        self._sending_since = 0.0
        self.dropped_audio = 0
        self.closed = False
        self.bytes_out = 0  # sent since the last take_bytes()
        # Set by the session when a reply's first audio is queued: when the user's turn
        # ended (monotonic). The next audio frame sent observes FIRST_AUDIO_SECONDS.
        self.first_audio_from = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, payload: bytes | str, *, has_audio: bool = False) -> None:
        """A control/transcript frame (`has_audio`: it also carries model audio): never
        dropped."""
        kind = MIXED_FRAME if has_audio else CONTROL_FRAME
        if self.closed or self._sent_now(kind, payload):
            return
        if len(self._items) >= self.max_items:
            raise SessionEnd(EndKind.SLOW_CLIENT)
        self._items.append((kind, payload))
        self._kick()

    def put_audio(self, payload: bytes | str) -> None:
        if self.closed or self._sent_now(AUDIO_FRAME, payload):
            return
        self._items.append((AUDIO_FRAME, payload))
        self._audio_bytes += len(payload)
        while self._audio_bytes > self.max_audio_bytes:
            self._drop_oldest_audio()
        self._kick()

    def _sent_now(self, kind: int, payload: bytes | str) -> bool:
        """The writer's send, made by the caller while the writer waits (it waits only with
        nothing queued) and the server can send at once."""
        if self._send_now is None or not self._wake.waiting() or not self._send_now(payload):
            return False
        self._sent(kind, len(payload))
        return True

    def _sent(self, kind: int, size: int) -> None:
        self.bytes_out += size  # text frames: characters, close enough
        if kind:
            metrics.AUDIO_OUT.inc()
            if self.first_audio_from:
                metrics.FIRST_AUDIO_SECONDS.observe(time.monotonic() - self.first_audio_from)
                self.first_audio_from = 0.0
        else:
            metrics.CONTROL_OUT.inc()

    def _kick(self) -> None:
        self._idle.clear()
        if not self._wake.is_set():
            self._wake.set()

    def _drop_oldest_audio(self) -> None:
        for index, (kind, payload) in enumerate(self._items):
            if kind == AUDIO_FRAME:
                del self._items[index]
                self._audio_bytes -= len(payload)
                self.dropped_audio += 1
                metrics.DROPPED.labels("out", "audio").inc()
                return
        self._audio_bytes = 0

    def clear_audio(self) -> int:
        """Barge-in: queued model audio is stale, drop it (control frames stay, in order)."""
        if not self._audio_bytes:
            return 0
        kept = deque(item for item in self._items if item[0] != AUDIO_FRAME)
        dropped = len(self._items) - len(kept)
        self._items = kept
        self._audio_bytes = 0
        return dropped

    def stalled_for(self, now: float) -> float:
        return now - self._sending_since if self._sending_since else 0.0

    def take_bytes(self) -> int:
        sent, self.bytes_out = self.bytes_out, 0
        return sent

    async def run(self) -> None:
        """The writer task. A client that has gone ends the session as CLIENT_GONE."""
        try:
            await self._run()
        except client_gone_errors() as gone:
            raise SessionEnd(EndKind.CLIENT_GONE) from gone

    async def _run(self) -> None:
        send = self._send
        while True:
            if not self._items:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            kind, payload = self._items.popleft()
            size = len(payload)
            if kind == AUDIO_FRAME:
                self._audio_bytes -= size
            self._sending_since = time.monotonic()
            await send(payload)
            del payload  # sent: not kept while the writer waits for the next frame
            self._sending_since = 0.0
            self._sent(kind, size)

    async def drain(self, limit: float) -> None:
        """Wait (at most `limit` seconds) until everything queued went to the client."""
        if self._items:
            try:
                async with asyncio.timeout(limit):
                    await self._idle.wait()
            except TimeoutError:
                pass
