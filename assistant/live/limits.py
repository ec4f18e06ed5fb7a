"""Every per-message limit of the live sockets: sizes per message kind on both client paths
(web UI and Gemini-compatible) and the per-session token buckets that bound their rates,
checked in the adapters' receive path with no I/O. static/js/protocol.js mirrors the web
UI's sizes (tests/js/logic.test.mjs compares them)."""

from __future__ import annotations

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
MAX_TOOL_ARGS_CHARS = 500  # a `tool` event's `args`: longer JSON is sent cut, as a string
# Gemini path: setup / clientContent / toolResponse / contextUpdate may carry history or
# declarations.
MAX_CONTENT_BYTES = 256 * 1024
# Gemini path: the largest whole message, a video frame in base64 plus its envelope.
MAX_MESSAGE_BYTES = MAX_VIDEO_BYTES * 4 // 3 + 4096

# --- rates: (sustained messages per second, burst) -------------------------------------------

AUDIO_RATE = (20.0, 40.0)
VIDEO_RATE = (2.0, 4.0)
CONTROL_RATE = (10.0, 20.0)


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


class Limiter:
    """Checks one session's inbound messages; raises SessionEnd (TOO_LARGE / RATE_LIMITED)."""

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
