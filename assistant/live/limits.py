"""Every per-message limit of the live sockets: sizes per message kind on both client paths
(web UI and Gemini-compatible), JSON depth, the per-session token buckets that bound their
rates (checked in the adapters' receive path with no I/O), and the bounds on upstream
reconnects and handovers (backoff, per session, per worker). static/js/protocol.js mirrors
the web UI's sizes (tests/js/logic.test.mjs compares them)."""

from __future__ import annotations

import asyncio
import collections
import random
import time

from assistant.live.errors import EndKind, SessionEnd

# --- sizes ----------------------------------------------------------------------------------

MAX_AUDIO_BYTES = 32 * 1024  # one audio chunk, decoded (1 s of PCM16 at 16 kHz is 32 000 bytes)
MAX_VIDEO_BYTES = 512 * 1024  # one JPEG frame, decoded
MAX_CONTROL_BYTES = 16 * 1024  # any other message (web: all JSON but `video` and `start`)
# Web UI: `start` may carry a persona and client function declarations.
MAX_START_BYTES = 64 * 1024
# Web UI: the largest JSON frame, a video message (base64 + envelope).
MAX_TEXT_FRAME = MAX_VIDEO_BYTES * 4 // 3 + 1024
MAX_TEXT_CHARS = 8000
MAX_PERSONA_CHARS = 4000
MAX_FUNCTIONS = 32
MAX_HEARD_CHARS = 2000  # an `interrupt`'s `heard`: the words of the reply the person heard
MAX_TOOL_ARGS_CHARS = 500  # a `tool` event's `args`: longer JSON is sent cut, as a string
# Gemini path: setup / clientContent / toolResponse / contextUpdate may carry history or
# declarations.
MAX_CONTENT_BYTES = 256 * 1024
# Gemini path: the largest whole message, a video frame in base64 plus its envelope.
MAX_MESSAGE_BYTES = MAX_VIDEO_BYTES * 4 // 3 + 4096
# Both paths: how deep a client's JSON may nest (objects and arrays, from the message's root).
# protobuf's own parsers stop at 100; orjson cannot write past 254 (the upstream setup).
MAX_JSON_DEPTH = 100


def too_deep(value: object, limit: int = MAX_JSON_DEPTH, depth: int = 1) -> bool:
    """Whether parsed JSON nests objects and arrays more than `limit` levels (`value` itself
    at `depth`). Iterative: no recursion limit to hit."""
    stack = [(value, depth)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


# --- rates: (sustained messages per second, burst) -------------------------------------------

AUDIO_RATE = (20.0, 40.0)
VIDEO_RATE = (2.0, 4.0)
CONTROL_RATE = (10.0, 20.0)


# --- upstream reconnects and goAway handovers ---------------------------------------------
# A connection that ends (goAway or loss) this soon after it opened is "young": the next
# handover is held back (on the still-open connection) and the next reconnect delayed,
# doubling from the first value to the cap, with ±20 % jitter.
YOUNG_CONNECTION_SECONDS = 10.0
HANDOVER_BACKOFF = (0.25, 8.0)
# A goAway handover forced sooner than this after connecting (its deadline came before the
# hold ended) waits offline before reconnecting, at most this long (the uplink is buffered).
SHORTEST_CONNECTION = 1.0
# Per session: at most this many reconnects and handovers in any window of this many seconds,
# then the session ends with a clear error (web 4502, Gemini path 1011).
SESSION_RECONNECTS = (20, 60.0)
# Per worker process (every session of it): sustained reconnects per second and burst; a
# reconnect waits at most WORKER_RECONNECT_WAIT for the worker's budget, then fails.
WORKER_RECONNECT_RATE = (10.0, 50.0)
WORKER_RECONNECT_WAIT = 10.0


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self, now: float) -> bool:
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True

    def wait_for_token(self, now: float) -> float:
        """Seconds until a token is there (0: take one now)."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate


def backoff(streak: int) -> float:
    """The delay after `streak` young connections in a row (0 for none), with jitter."""
    if streak <= 0:
        return 0.0
    first, cap = HANDOVER_BACKOFF
    return min(cap, first * 2 ** (streak - 1)) * random.uniform(0.8, 1.2)


class ReconnectBudget:
    """One session's reconnects and handovers in a sliding window (SESSION_RECONNECTS)."""

    __slots__ = ("_stamps", "limit", "window")

    def __init__(self) -> None:
        self.limit, self.window = SESSION_RECONNECTS
        self._stamps: collections.deque[float] | None = None  # made at the first reconnect

    def take(self, now: float) -> bool:
        if self._stamps is None:
            self._stamps = collections.deque()
        stamps = self._stamps
        while stamps and now - stamps[0] >= self.window:
            stamps.popleft()
        if len(stamps) >= self.limit:
            return False
        stamps.append(now)
        return True


_worker_reconnects = TokenBucket(*WORKER_RECONNECT_RATE)


async def worker_reconnect_slot() -> bool:
    """Take one of this worker's reconnects, waiting for it at most WORKER_RECONNECT_WAIT
    seconds. False when the worker's budget stayed spent that long."""
    deadline = time.monotonic() + WORKER_RECONNECT_WAIT
    bucket = _worker_reconnects
    while True:
        now = time.monotonic()
        wait = bucket.wait_for_token(now)
        if wait <= 0.0 and bucket.take(now):
            return True
        if now + wait > deadline:
            return False
        await asyncio.sleep(wait * random.uniform(1.0, 1.2))


class Limiter:
    """Checks one session's inbound messages; raises SessionEnd (TOO_LARGE / RATE_LIMITED)."""

    __slots__ = ("audio", "control", "video")

    def __init__(self) -> None:
        self.audio = TokenBucket(*AUDIO_RATE)
        self.video = TokenBucket(*VIDEO_RATE)
        self.control = TokenBucket(*CONTROL_RATE)

    def check_audio(self, size: int) -> None:
        if size > MAX_AUDIO_BYTES:
            raise _too_large("Audio", size, MAX_AUDIO_BYTES)
        if not self.audio.take(time.monotonic()):
            raise _too_fast("audio", AUDIO_RATE[0])

    def check_video(self, size: int) -> None:
        if size > MAX_VIDEO_BYTES:
            raise _too_large("Video", size, MAX_VIDEO_BYTES)
        if not self.video.take(time.monotonic()):
            raise _too_fast("video", VIDEO_RATE[0])

    def check_control(self, size: int, *, limit: int = MAX_CONTROL_BYTES) -> None:
        if size > limit:
            raise _too_large("Control", size, limit)
        if not self.control.take(time.monotonic()):
            raise _too_fast("control", CONTROL_RATE[0])


def _too_large(kind: str, size: int, limit: int) -> SessionEnd:
    return SessionEnd(
        EndKind.TOO_LARGE, f"{kind} message too large: {size} bytes (the limit is {limit})."
    )


def _too_fast(kind: str, rate: float) -> SessionEnd:
    return SessionEnd(
        EndKind.RATE_LIMITED, f"Too many {kind} messages (more than {rate:g} per second)."
    )
