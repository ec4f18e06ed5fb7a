"""Conversation recording: assembles transcript fragments per turn and writes each turn as
one batch (services.conversation_record) from its own flusher task, never per fragment."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from django.db import InterfaceError, OperationalError
from django.utils import timezone

from assistant import live_view, metrics, services
from assistant.live.db import live_db
from assistant.models import Conversation, ConversationEvent

logger = logging.getLogger(__name__)

# Admin live view: after each written batch with events, one small group_send to the
# conversation's watchers (assistant/live_view.py). Best effort, bounded, and paused for a
# while after a failure, so a channel-layer outage never slows recording down.
BROADCAST_TIMEOUT_SECONDS = 1.0
BROADCAST_PAUSE_SECONDS = 5.0
RETRY_FIRST_SECONDS = 0.5  # database unreachable: retry after 0.5, 1, 2, 4, 5, 5, ... s
RETRY_MAX_SECONDS = 5.0
_broadcast_paused_until = 0.0

Kind = ConversationEvent.Kind
_USER_KINDS = (Kind.USER_TEXT, Kind.INPUT_TRANSCRIPT)
_TEXT_KINDS = (Kind.INPUT_TRANSCRIPT, Kind.OUTPUT_TRANSCRIPT, Kind.MODEL_TEXT)
_MODEL_KINDS = (
    Kind.OUTPUT_TRANSCRIPT,
    Kind.MODEL_TEXT,
    Kind.TOOL_CALL,
    Kind.CODE_EXECUTION,
    Kind.GROUNDING,
)

arecord = live_db(services.conversation_record)


@dataclass(frozen=True)
class TurnSummary:
    turn: int
    user: str
    model: str
    interrupted: bool


class _Entry:
    __slots__ = ("at", "data", "duration_ms", "kind", "parts")

    def __init__(self, kind: str, text: str = "", data=None, duration_ms=None) -> None:
        self.kind = kind
        self.parts = [text] if text else []
        self.data = data or {}
        self.duration_ms = duration_ms
        self.at: datetime = timezone.now()

    @property
    def text(self) -> str:
        return "".join(self.parts).strip() if self.kind in _TEXT_KINDS else "".join(self.parts)


class _Batch:
    __slots__ = ("events", "handle", "seconds", "usage")

    def __init__(self, events, usage, seconds: float, handle: str | None) -> None:
        self.events = events
        self.usage = usage
        self.seconds = seconds
        self.handle = handle


class Recorder:
    """Buffers one turn in memory; `end_turn()` queues it; `run()` writes queued batches in
    order. `finish()` (on close) queues what is left and waits for the writes."""

    def __init__(self, *, conversation_id, first_turn: int = 1) -> None:
        self.conversation_id = conversation_id
        self.turn = first_turn
        self._entries: list[_Entry] = []
        self._input: _Entry | None = None
        self._output: _Entry | None = None
        self._text: _Entry | None = None
        self._usage = [0, 0, 0]
        self._interrupted = False
        self._handle: str | None = None
        self._accounted = time.monotonic()
        self._queue: deque[_Batch] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._running = False
        self._inflight: _Batch | None = None  # being written: too late to amend
        self.written = 0
        self.gone = False  # the conversation was deleted while live: nothing left to write to

    # --- collecting (sync, cheap) -------------------------------------------------------

    def _add(self, kind: str, text: str = "", data=None, duration_ms=None) -> _Entry:
        entry = _Entry(kind, text, data, duration_ms)
        self._entries.append(entry)
        return entry

    def user_text(self, text: str) -> None:
        if text.strip():
            self._add(Kind.USER_TEXT, text.strip())

    def input_fragment(self, text: str) -> None:
        if self._input is None:
            self._input = self._add(Kind.INPUT_TRANSCRIPT)
        self._input.parts.append(text)

    def output_fragment(self, text: str) -> None:
        if self._output is None:
            self._output = self._add(Kind.OUTPUT_TRANSCRIPT)
        self._output.parts.append(text)

    def model_text(self, text: str) -> None:
        if self._text is None:
            self._text = self._add(Kind.MODEL_TEXT)
        self._text.parts.append(text)

    def tool_call(self, *, call_id: str, name: str, args, executor: str) -> None:
        self._add(
            Kind.TOOL_CALL,
            name,
            {"id": call_id, "name": name, "args": args, "executor": executor},
        )

    def tool_result(
        self, *, call_id: str, name: str, response, ok: bool, duration_ms: int | None
    ) -> None:
        data = {"id": call_id, "name": name, "response": response, "ok": ok}
        self._add(Kind.TOOL_RESULT, name, data, duration_ms)

    def code(self, kind: str, first: str, second: str) -> None:
        if kind == "code":
            self._add(Kind.CODE_EXECUTION, second, {"language": first})
        else:
            self._add(Kind.CODE_RESULT, second, {"outcome": first})

    def grounding(self, summary: dict) -> None:
        self._add(Kind.GROUNDING, "", summary)

    def interruption(self) -> None:
        self._interrupted = True
        self._add(Kind.INTERRUPTION)

    def error(self, message: str, **data) -> None:
        self._add(Kind.ERROR, message[:500], data)

    def session_event(self, what: str, **data) -> None:
        self._add(Kind.SESSION, what, data)

    def session_opened(self, what: str, **data) -> None:
        """ "started"/"resumed": first in the record, before whatever the client sent while
        the session was being set up."""
        entry = _Entry(Kind.SESSION, what, data)
        if self._entries:
            entry.at = min(entry.at, self._entries[0].at)
        self._entries.insert(0, entry)

    def usage(self, prompt: int, response: int, total: int) -> None:
        self._usage[0] += prompt
        self._usage[1] += response
        self._usage[2] += total

    def set_handle(self, handle: str) -> None:
        """The latest resumable upstream handle: rides on the pending batch if there is one
        (it usually arrives just after turnComplete), else on its own small write."""
        self._handle = handle
        if self._queue and self._queue[-1] is not self._inflight:
            self._queue[-1].handle = handle
        else:
            self._enqueue(_Batch([], None, 0.0, handle))

    # --- batching ---------------------------------------------------------------------

    def _take_seconds(self) -> float:
        now = time.monotonic()
        seconds, self._accounted = now - self._accounted, now
        return seconds

    def _take_events(self) -> tuple[list[services.EventRecord], TurnSummary]:
        # Arrival order, except that the user's (late-arriving) speech transcript goes
        # before the model's first output of the turn.
        entries = [e for e in self._entries if e is not self._input]
        if self._input is not None:
            first = next((i for i, e in enumerate(entries) if e.kind in _MODEL_KINDS), None)
            entries.insert(len(entries) if first is None else first, self._input)
        if any(self._usage):
            usage_entry = _Entry(
                Kind.USAGE,
                data={
                    "prompt_tokens": self._usage[0],
                    "response_tokens": self._usage[1],
                    "total_tokens": self._usage[2],
                },
            )
            entries.append(usage_entry)
        events = [
            services.EventRecord(
                kind=e.kind,
                text=e.text,
                data=e.data,
                turn=self.turn,
                duration_ms=e.duration_ms,
                created_at=e.at,
            )
            for e in entries
            if e.kind not in _TEXT_KINDS or e.text
        ]
        user = " ".join(e.text for e in entries if e.kind in _USER_KINDS and e.text)
        model = (self._output or self._text).text if (self._output or self._text) else ""
        summary = TurnSummary(self.turn, user, model, self._interrupted)
        return events, summary

    def _reset_turn(self) -> None:
        self._entries = []
        self._input = self._output = self._text = None
        self._usage = [0, 0, 0]
        self._interrupted = False

    def end_turn(self) -> TurnSummary:
        events, summary = self._take_events()
        usage = services.Usage(*self._usage) if any(self._usage) else None
        self._enqueue(_Batch(events, usage, self._take_seconds(), None))
        self._reset_turn()
        self.turn += 1
        return summary

    def account_seconds(self) -> None:
        """Queue the live seconds so far (the lease timer's quota check reads them)."""
        self._enqueue(_Batch([], None, self._take_seconds(), None))

    def flush_pending(self) -> None:
        """Queue what the current turn holds so far without ending it (periodic seconds,
        shutdown). Fragments still to come start a new entry."""
        events, _ = self._take_events()
        usage = services.Usage(*self._usage) if any(self._usage) else None
        self._enqueue(_Batch(events, usage, self._take_seconds(), None))
        self._reset_turn()

    def _enqueue(self, batch: _Batch) -> None:
        self._queue.append(batch)
        self._drained.clear()
        self._wake.set()

    # --- writing ----------------------------------------------------------------------

    async def run(self) -> None:
        self._running = True
        try:
            while True:
                if not self._queue:
                    self._drained.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._inflight = self._queue[0]
                await self._write(self._inflight)
                self._queue.popleft()
                self._inflight = None
        finally:
            self._running = False

    async def _write(self, batch: _Batch) -> None:
        """Write one batch. A database that is unreachable (restart, failover) is retried with
        backoff for as long as the session lives, so a turn is not lost to a short outage;
        `finish` bounds the wait at the end. Any other error is tried twice, then the batch
        is dropped (counted) so the batches behind it still get written."""
        if self.gone:
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                self.written += await arecord(
                    conversation_id=self.conversation_id,
                    events=batch.events,
                    usage=batch.usage,
                    seconds=batch.seconds,
                    resumption_handle=batch.handle,
                )
            except Conversation.DoesNotExist:
                # Deleted by its owner (or an admin) while live: retrying cannot help.
                self.gone = True
                logger.warning(
                    "conv=%s conversation deleted while live; %d events not recorded",
                    self.conversation_id,
                    len(batch.events),
                )
                return
            except (OperationalError, InterfaceError):
                delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (attempt - 1))
                logger.warning(
                    "conv=%s database unavailable (attempt %d, %d events); retrying in %.1fs",
                    self.conversation_id,
                    attempt,
                    len(batch.events),
                    delay,
                )
                metrics.ERRORS.labels("recording").inc()
                await asyncio.sleep(delay)
                continue
            except Exception:
                logger.exception(
                    "conv=%s recording failed (attempt %d, %d events)",
                    self.conversation_id,
                    attempt,
                    len(batch.events),
                )
                metrics.ERRORS.labels("recording").inc()
                if attempt >= 2:
                    metrics.RECORDING_LOST.inc(len(batch.events))
                    return
                await asyncio.sleep(RETRY_FIRST_SECONDS)
                continue
            if batch.events:
                await self._broadcast(batch.events)
            return

    async def _broadcast(self, events) -> None:
        """Tell admin watchers what was just written. Never raises (but for cancellation)."""
        global _broadcast_paused_until
        if time.monotonic() < _broadcast_paused_until:
            return
        try:
            async with asyncio.timeout(BROADCAST_TIMEOUT_SECONDS):
                await live_view.broadcast(self.conversation_id, events)
        except Exception:
            _broadcast_paused_until = time.monotonic() + BROADCAST_PAUSE_SECONDS
            metrics.ERRORS.labels("channel_layer").inc()
            logger.warning(
                "conv=%s live-view broadcast failed; paused for %.0fs",
                self.conversation_id,
                BROADCAST_PAUSE_SECONDS,
                exc_info=True,
            )

    def _pending_events(self) -> int:
        return sum(len(b.events) for b in self._queue)

    async def wait_written(self, limit: float = 10.0) -> None:
        try:
            async with asyncio.timeout(limit):
                await self._drained.wait()
        except TimeoutError:
            logger.warning(
                "conv=%s recording still pending after %.0fs (%d events)",
                self.conversation_id,
                limit,
                self._pending_events(),
            )

    async def finish(self, limit: float = 8.0) -> None:
        """Queue the rest (with the latest handle) and wait for every write. Call shielded.
        What is still unwritten after `limit` (the database down past the session's end) is
        lost: logged and counted."""
        self.flush_pending()
        if self._handle:
            self._queue[-1].handle = self._handle
        try:
            async with asyncio.timeout(limit):
                if self._running:
                    await self._drained.wait()
                else:  # no flusher task (it never started): write here
                    while self._queue:
                        await self._write(self._queue[0])
                        self._queue.popleft()
        except TimeoutError:
            lost = self._pending_events()
            metrics.RECORDING_LOST.inc(lost)
            logger.error(
                "conv=%s %d events not recorded: the database was unavailable for %.0fs "
                "after the session ended",
                self.conversation_id,
                lost,
                limit,
            )
