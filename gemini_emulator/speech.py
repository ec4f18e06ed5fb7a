"""Reply audio: 24 kHz PCM16 speech from espeak-ng when installed, else a speech-like signal.

Never silence: a client (or a browser test) that checks "did audio arrive" must be able to
tell. Results are cached by text, so a repeated reply costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import struct
import subprocess
import sys
import zlib
from array import array
from collections import OrderedDict

logger = logging.getLogger(__name__)

OUTPUT_RATE = 24000
BYTES_PER_SECOND = OUTPUT_RATE * 2
MAX_TTS_CHARS = 1000
_CACHE_SIZE = 128


def _to_bytes(samples: array) -> bytes:
    if sys.byteorder == "big":  # pragma: no cover
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


# --- Synthetic "speech": harmonic syllables with a syllable-rate envelope ---------------

_SYLLABLE_SECONDS = 0.18
_GAP_SECONDS = 0.06
_VARIANTS = 12


def _build_syllables() -> list[bytes]:
    """A small bank of voiced syllables: 3-6 harmonics of a gliding pitch, raised-cosine
    envelope. Built once; replies are concatenations, so rendering is a join."""
    bank = []
    count = int(OUTPUT_RATE * _SYLLABLE_SECONDS)
    for variant in range(_VARIANTS):
        f0 = 110.0 + 9.0 * variant
        glide = 1.0 + (0.08 if variant % 2 else -0.06)
        weights = [1.0, 0.6 + 0.03 * variant, 0.35, 0.2 + 0.02 * (variant % 4), 0.12][
            : 3 + variant % 3
        ]
        samples = array("h")
        phase = 0.0
        for index in range(count):
            progress = index / count
            phase += 2 * math.pi * f0 * (1 + (glide - 1) * progress) / OUTPUT_RATE
            envelope = 0.5 - 0.5 * math.cos(2 * math.pi * progress)
            value = sum(w * math.sin((h + 1) * phase) for h, w in enumerate(weights))
            samples.append(int(7000 * envelope * value))
        bank.append(_to_bytes(samples))
    return bank


_BANK: list[bytes] = []
_GAP = b""


def synthetic_speech(text: str) -> bytes:
    """Deterministic speech-like PCM16 at 24 kHz: one syllable per vowel group."""
    global _GAP
    if not _BANK:
        _BANK.extend(_build_syllables())
        gap = array("h", (((i * 7919) % 61) - 30 for i in range(int(OUTPUT_RATE * _GAP_SECONDS))))
        _GAP = _to_bytes(gap)  # breath-level noise, not digital silence
    pieces: list[bytes] = []
    for word in text.split() or ["..."]:
        syllables = max(1, _vowel_groups(word))
        for index in range(syllables):
            pick = zlib.crc32(f"{word}/{index}".encode()) % _VARIANTS
            pieces.append(_BANK[pick])
        pieces.append(_GAP)
    return b"".join(pieces)


def _vowel_groups(word: str) -> int:
    groups, previous = 0, False
    for char in word.lower():
        vowel = char in "aeiouy"
        if vowel and not previous:
            groups += 1
        previous = vowel
    return groups


# --- espeak-ng ---------------------------------------------------------------------------


def _parse_wav(data: bytes) -> tuple[int, bytes]:
    """(sample rate, PCM) of a mono PCM16 WAV; tolerates espeak's streaming sizes."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    rate = 22050
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = (
            data[offset : offset + 4],
            struct.unpack("<I", data[offset + 4 : offset + 8])[0],
        )
        body = offset + 8
        if chunk == b"fmt ":
            rate = struct.unpack("<I", data[body + 4 : body + 8])[0]
        elif chunk == b"data":
            pcm = data[body:]
            return rate, pcm[: len(pcm) - len(pcm) % 2]
        offset = body + size + (size & 1)
    raise ValueError("no data chunk")


def resample(pcm: bytes, rate: int, target: int = OUTPUT_RATE) -> bytes:
    """Linear-interpolation resampling of PCM16 mono (good enough for a test voice)."""
    if rate == target:
        return pcm
    source = array("h")
    source.frombytes(pcm)
    if sys.byteorder == "big":  # pragma: no cover
        source.byteswap()
    count = len(source)
    if count < 2:
        return pcm
    out_count = count * target // rate
    step = rate / target
    out = array("h", bytes(out_count * 2))
    last = count - 1
    for index in range(out_count):
        position = index * step
        base = int(position)
        if base >= last:
            out[index] = source[last]
            continue
        frac = position - base
        first = source[base]
        out[index] = int(first + (source[base + 1] - first) * frac)
    return _to_bytes(out)


def espeak_speech(text: str, binary: str) -> bytes:
    """Speech from espeak-ng (text on stdin, so no argument injection), at 24 kHz."""
    result = subprocess.run(  # noqa: S603 - fixed argv, text goes through stdin
        [binary, "--stdout", "--stdin", "-v", "en-us", "-s", "175"],
        input=text.encode(),
        capture_output=True,
        timeout=20,
        check=True,
    )
    rate, pcm = _parse_wav(result.stdout)
    return resample(pcm, rate)


def _is_silent(pcm: bytes) -> bool:
    return not pcm.strip(b"\x00")


class SpeechSynth:
    """Renders reply text to 24 kHz PCM16, with an LRU cache shared by all sessions."""

    def __init__(self, tts: str = "auto") -> None:
        binary = shutil.which("espeak-ng") if tts in ("auto", "espeak") else None
        if tts == "espeak" and binary is None:
            logger.warning("espeak-ng is not installed; using the synthetic voice")
        self.espeak = binary
        self._cache: OrderedDict[tuple[str, float], bytes] = OrderedDict()

    @property
    def engine(self) -> str:
        return "espeak-ng" if self.espeak else "synthetic"

    async def render(self, text: str, seconds: float = 0.0) -> bytes:
        """PCM for `text`; with `seconds`, looped or cut to exactly that long."""
        key = (text, seconds)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        pcm = await self._speak(text[:MAX_TTS_CHARS])
        if seconds > 0:
            target = int(seconds * OUTPUT_RATE) * 2
            pcm = (pcm * (target // max(len(pcm), 1) + 1))[:target]
        self._cache[key] = pcm
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return pcm

    async def _speak(self, text: str) -> bytes:
        if self.espeak:
            try:
                pcm = await asyncio.to_thread(espeak_speech, text, self.espeak)
                if not _is_silent(pcm):
                    return pcm
            except (OSError, ValueError, subprocess.SubprocessError):
                logger.warning("espeak-ng failed; using the synthetic voice", exc_info=True)
        if not _BANK:
            return await asyncio.to_thread(synthetic_speech, text)
        return synthetic_speech(text)
