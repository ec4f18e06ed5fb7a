"""Writes a session's recorded batches in order, one transaction each
(services.conversation_record) from its own task: retried through database outages, dropped
(and counted) after repeated other errors, and announced to admin watchers after each write."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from django.db import InterfaceError, OperationalError

from assistant import live_view, metrics, services
from assistant.live.db import live_db
from assistant.live.wake import Wake
from assistant.models import Conversation

logger = logging.getLogger(__name__)

# Admin live view: after each written batch with events, one small group_send to the
# conversation's watchers (assistant/live_view.py). Best effort, bounded, and paused for a
# while after a failure, so a channel-layer outage never slows recording down.
BROADCAST_TIMEOUT_SECONDS = 1.0
BROADCAST_PAUSE_SECONDS = 5.0
RETRY_FIRST_SECONDS = 0.5  # database unreachable: retry after 0.5, 1, 2, 4, 5, 5, ... s
RETRY_MAX_SECONDS = 5.0
_broadcast_paused_until = 0.0

arecord = live_db(services.conversation_record)


class Batch:
    """One write: a turn's events (or none), its usage and live seconds, the latest handle."""

    __slots__ = ("events", "handle", "seconds", "usage")

    def __init__(self, events, usage, seconds: float, handle: str | None) -> None:
        self.events = events
        self.usage = usage
        self.seconds = seconds
        self.handle = handle


class RecordWriter:
    def __init__(self) -> None:
        self.conversation_id = None
        self._queue: deque[Batch] = deque()
        self._wake = Wake()  # the writer task is its one waiter
        # Who waits for the queue to empty: futures made only while someone waits (an
        # asyncio.Event's deque would be ~1.2 KB a session).
        self._drain_waiters: list[asyncio.Future] | None = None
        self._running = False
        self._inflight: Batch | None = None  # being written: too late to amend
        self.written = 0
        self.gone = False  # the conversation was deleted while live: nothing left to write to

    def put(self, batch: Batch) -> None:
        self._queue.append(batch)
        self._wake.set()

    def set_handle(self, handle: str) -> None:
        """The latest upstream handle rides on the last queued batch not yet being written,
        else on its own small write."""
        if self._queue and self._queue[-1] is not self._inflight:
            self._queue[-1].handle = handle
        else:
            self.put(Batch([], None, 0.0, handle))

    async def run(self) -> None:
        self._running = True
        try:
            while True:
                if not self._queue:
                    self._set_drained()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._inflight = self._queue[0]
                await self._write(self._inflight)
                self._queue.popleft()
                self._inflight = None
        finally:
            self._running = False

    async def _write(self, batch: Batch) -> None:
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
                    "conversation deleted while live; %d events not recorded", len(batch.events)
                )
                return
            except (OperationalError, InterfaceError):
                delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (attempt - 1))
                logger.warning(
                    "database unavailable (attempt %d, %d events); retrying in %.1fs",
                    attempt,
                    len(batch.events),
                    delay,
                )
                metrics.ERRORS.labels("recording").inc()
                await asyncio.sleep(delay)
                continue
            except Exception:
                logger.exception(
                    "recording failed (attempt %d, %d events)", attempt, len(batch.events)
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
                "live-view broadcast failed; paused for %.0fs",
                BROADCAST_PAUSE_SECONDS,
                exc_info=True,
            )

    def _set_drained(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, None
        for waiter in waiters or ():
            if not waiter.done():  # a waiter whose wait timed out is cancelled already
                waiter.set_result(None)

    async def _until_drained(self) -> None:
        """Until the queue is empty (`wait_written`, `finish`: two may wait at once)."""
        if not self._queue:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:  # its time is up (an outage): it waits no more
            if self._drain_waiters is not None and waiter in self._drain_waiters:
                self._drain_waiters.remove(waiter)
            raise

    def _pending_events(self) -> int:
        return sum(len(b.events) for b in self._queue)

    async def wait_written(self, limit: float = 10.0) -> None:
        try:
            async with asyncio.timeout(limit):
                await self._until_drained()
        except TimeoutError:
            logger.warning(
                "recording still pending after %.0fs (%d events)", limit, self._pending_events()
            )

    async def finish(self, limit: float, handle: str | None) -> None:
        """Wait for every write (the last batch carries `handle`). What is still unwritten
        after `limit` (the database down past the session's end) is lost: logged, counted."""
        if handle and self._queue:
            self._queue[-1].handle = handle
        try:
            async with asyncio.timeout(limit):
                if self._running:
                    await self._until_drained()
                else:  # no writer task (it never started): write here
                    while self._queue:
                        await self._write(self._queue[0])
                        self._queue.popleft()
        except TimeoutError:
            lost = self._pending_events()
            metrics.RECORDING_LOST.inc(lost)
            logger.error(
                "%d events not recorded: the database was unavailable for %.0fs after the "
                "session ended",
                lost,
                limit,
            )
