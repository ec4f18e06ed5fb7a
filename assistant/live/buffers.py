"""The two bounded buffers of a live session (policy in docs/browser-protocol.md).

Uplink (client → Gemini): ordered items drained by the session's writer task. At most
`live_audio_ms` of audio (1 s) while the upstream is up, `offline_audio_ms` (2 s) while it
is (re)connecting, and one video frame; on overflow the queued video frame goes first, then
the oldest audio. Control items (text, tool responses, …) are never dropped; too many of
them while the upstream is away ends the session.

Downlink (Gemini → client): frames drained by one writer task. Audio beyond
`max_audio_bytes` drops the oldest audio; control/transcript frames are never dropped (a
hard cap ends the session as a slow client). `stalled_for()` lets the session end a
client whose single send has been pending too long. The writer counts what it sent (one
pre-bound `inc()` per frame; bytes are tallied and taken by the session in batches) and
observes time to first audio.

Both wait on a `Wake` (a flag one task waits on), not an asyncio.Event: a session has several,
and an Event's deque of waiters is most of its 0.8 KB (docs/memory-profile.md).
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

CONTROL = "control"  # uplink items that are neither audio nor video


class Wake:
    """asyncio.Event's `set`, `clear`, `is_set` and `wait` for one waiting task at a time:
    its future exists only while that task waits."""

    __slots__ = ("_set", "_waiter")

    def __init__(self, value: bool = False) -> None:
        self._set = value
        self._waiter: asyncio.Future | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        if self._waiter is not None and not self._waiter.done():
            raise RuntimeError("a Wake has one waiter at a time")
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None


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

    def _push(self, item: Item) -> None:
        self._items.append(item)
        if not self._wake.is_set():
            self._wake.set()

    def put_audio(self, payload: bytes, ms: float) -> None:
        self._push(Item(AUDIO, payload, ms))
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
        self._video = item
        self._push(item)

    def put_control(self, payload: bytes, *, call_generation: int = -1) -> None:
        if self._control >= self.max_control:
            raise SessionEnd(EndKind.RATE_LIMITED, "Too many messages while reconnecting.")
        self._control += 1
        self._push(Item(CONTROL, payload, call_generation=call_generation))

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
        *,
        max_audio_bytes: int = 2 * 2**20,
        max_items: int = 4000,
    ) -> None:
        self._send = send
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
        if self.closed:
            return
        if len(self._items) >= self.max_items:
            raise SessionEnd(EndKind.SLOW_CLIENT)
        self._items.append((MIXED_FRAME if has_audio else CONTROL_FRAME, payload))
        self._kick()

    def put_audio(self, payload: bytes | str) -> None:
        if self.closed:
            return
        self._items.append((AUDIO_FRAME, payload))
        self._audio_bytes += len(payload)
        while self._audio_bytes > self.max_audio_bytes:
            self._drop_oldest_audio()
        self._kick()

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
        audio_out, control_out = metrics.AUDIO_OUT, metrics.CONTROL_OUT
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
            self.bytes_out += size  # text frames: characters, close enough
            if kind:
                audio_out.inc()
                if self.first_audio_from:
                    metrics.FIRST_AUDIO_SECONDS.observe(time.monotonic() - self.first_audio_from)
                    self.first_audio_from = 0.0
            else:
                control_out.inc()

    async def drain(self, limit: float) -> None:
        """Wait (at most `limit` seconds) until everything queued went to the client."""
        if self._items:
            try:
                async with asyncio.timeout(limit):
                    await self._idle.wait()
            except TimeoutError:
                pass
