"""Out-of-band server messages sent beside the turns: `voiceActivity` and interim transcripts.

The input side (`Inputs`) must not send or block, so it `push`es these messages; the session's
signals task sends them in order. The turn runner calls `flushed()` before a turn's
`inputTranscription`, so every interim update and the `ACTIVITY_END` of an utterance go out
before the final transcript of that turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from . import protocol as p

Send = Callable[[dict[str, Any]], Awaitable[None]]

ACTIVITY_START = "ACTIVITY_START"
ACTIVITY_END = "ACTIVITY_END"


class Signals:
    """A FIFO of server messages that do not belong to a model turn."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def push(self, message: dict[str, Any]) -> None:
        self._queue.put_nowait(message)

    def voice_activity(self, kind: str, offset_seconds: float) -> None:
        """`voiceActivity` as google-genai 3.6.1 reads it (`_VoiceActivity_from_mldev`: wire
        keys `type` and `audioOffset`, a Duration from the start of the audio stream)."""
        self.push({"voiceActivity": {"type": kind, "audioOffset": p.duration_text(offset_seconds)}})

    def interim(self, text: str) -> None:
        self.push({"serverContent": {"interimInputTranscription": {"text": text}}})

    async def flushed(self) -> None:
        """Wait until everything pushed so far has been sent."""
        await self._queue.join()

    async def run(self, send: Send) -> None:
        while True:
            message = await self._queue.get()
            try:
                await send(message)
            finally:
                self._queue.task_done()
