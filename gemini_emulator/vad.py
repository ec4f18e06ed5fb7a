"""Energy-based voice activity detection over PCM16 input, in 20 ms frames."""

from __future__ import annotations

import math
import sys
from array import array
from operator import mul

FRAME_MS = 20

# Defaults by sensitivity (Google documents the knobs, not their defaults).
PREFIX_MS = {"START_SENSITIVITY_LOW": 100}
DEFAULT_PREFIX_MS = 20
SILENCE_MS = {"END_SENSITIVITY_LOW": 1000}
DEFAULT_SILENCE_MS = 500

START = "start"
END = "end"


def frame_rms(frame: bytes) -> float:
    """RMS of a little-endian PCM16 frame (every other sample: plenty for a threshold)."""
    samples = array("h")
    samples.frombytes(frame)
    if sys.byteorder == "big":  # pragma: no cover
        samples.byteswap()
    picked = samples[::2]
    if not picked:
        return 0.0
    return math.sqrt(sum(map(mul, picked, picked)) / len(picked))


class EnergyVAD:
    """Detects start and end of speech; `feed` returns ("start", offset) / ("end", seconds,
    offset) events, offsets in seconds of audio since the stream began (speech start, last
    speech frame's end).

    Start is committed after `prefix_ms` of consecutive loud frames; end after
    `silence_ms` of quiet frames. The reported duration runs from the first loud frame to
    the last one, so trailing silence is not counted.
    """

    def __init__(self, threshold: float, prefix_ms: int, silence_ms: int) -> None:
        self.threshold = threshold
        self.prefix_ms = max(FRAME_MS, prefix_ms)
        self.silence_ms = max(FRAME_MS, silence_ms)
        self.in_speech = False
        self._rate = 0
        self._frame_bytes = 0
        self._rest = b""
        self._now_ms = 0
        self._candidate_ms = 0
        self._candidate_start = 0
        self._speech_start = 0
        self._speech_end = 0
        self._quiet_ms = 0

    def feed(self, pcm: bytes, rate: int) -> list[tuple]:
        if rate != self._rate:
            self._rate = rate
            self._frame_bytes = max(2, rate * FRAME_MS // 1000 * 2)
            self._rest = b""
        data = self._rest + pcm if self._rest else pcm
        size = self._frame_bytes
        events: list[tuple] = []
        end = len(data) - len(data) % size
        for offset in range(0, end, size):
            event = self._frame(frame_rms(data[offset : offset + size]) >= self.threshold)
            if event:
                events.append(event)
        self._rest = data[end:]
        return events

    def flush(self) -> list[tuple]:
        """End of stream (audioStreamEnd): a running utterance ends now."""
        self._rest = b""
        if not self.in_speech:
            self._candidate_ms = 0
            return []
        return [self._end()]

    def _frame(self, loud: bool) -> tuple | None:
        now = self._now_ms
        self._now_ms = now + FRAME_MS
        if not self.in_speech:
            if not loud:
                self._candidate_ms = 0
                return None
            if self._candidate_ms == 0:
                self._candidate_start = now
            self._candidate_ms += FRAME_MS
            if self._candidate_ms < self.prefix_ms:
                return None
            self.in_speech = True
            self._speech_start = self._candidate_start
            self._speech_end = self._now_ms
            self._quiet_ms = 0
            return (START, self._speech_start / 1000)
        if loud:
            self._speech_end = self._now_ms
            self._quiet_ms = 0
            return None
        self._quiet_ms += FRAME_MS
        if self._quiet_ms >= self.silence_ms:
            return self._end()
        return None

    @property
    def speech_seconds(self) -> float:
        """Length of the running utterance so far (0 outside speech)."""
        return (self._speech_end - self._speech_start) / 1000 if self.in_speech else 0.0

    def _end(self) -> tuple:
        seconds = (self._speech_end - self._speech_start) / 1000
        self.in_speech = False
        self._candidate_ms = 0
        self._quiet_ms = 0
        return (END, seconds, self._speech_end / 1000)
