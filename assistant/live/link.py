"""A session's link to Gemini: one upstream connection at a time, opened with the latest
resumption handle and reopened after a goAway handover or an abnormal close (backoff with
jitter, flap counting), a generation number per connection, and the reader and writer
loops between it and the session.

Reconnects and handovers are bounded (limits.py): after a connection that ended young (a
goAway or a loss soon after it opened) the next connection holds its handover back and the
reconnect is delayed (doubling backoff, jitter); a session may reconnect SESSION_RECONNECTS
times per window, the worker WORKER_RECONNECT_RATE times per second; past either the
session ends with UPSTREAM_UNAVAILABLE (web 4502, Gemini path 1011) instead of a storm.

The reader hands each raw message to the session (`on_message`) and stops reading once the
handover planner says `handover_now`; the writer drains the bounded uplink, holding items
while no connection is up (`send_now` sends for it while it waits idle). 1007/1008 from
Gemini are final (no retry loop), except that a refused resume is retried once as a fresh
upstream session (recorded `resume_failed`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from assistant import metrics
from assistant.live import limits
from assistant.live.buffers import Item, Uplink
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.handover import HandoverPlanner
from assistant.live.recorder import Recorder
from assistant.live.upstream import Upstream, UpstreamClosed
from assistant.live.wake import Wake

logger = logging.getLogger(__name__)

STABLE_SECONDS = 10.0  # an upstream connection that lived this long is not "flapping"
MAX_FLAPS = 4
START_DELAYS = (0.0, 0.25, 0.5, 1.0)
RECONNECT_DELAYS = (0.25, 0.5, 1.0, 2.0)


def rejected(closed: UpstreamClosed) -> SessionEnd:
    return SessionEnd(
        EndKind.UPSTREAM_REJECTED,
        f"The assistant rejected the session: {closed.reason or closed.code}",
        upstream_code=closed.code,
        upstream_reason=closed.reason,
    )


class UpstreamLink:
    """`setup(handle)` builds the setup message; `on_message(raw)` handles one upstream
    message; `on_state(state)` says "ready" (first connection), "reconnecting", "reconnected";
    `on_lost(cut)` runs whenever a connection ends (`cut`: a reply was in progress and lost);
    `fallback()` leaves out what Pastra added to the setup when Gemini refuses it, and names
    what it left out (nothing: the refusal stands)."""

    def __init__(
        self,
        *,
        uplink: Uplink,
        recorder: Recorder,
        setup: Callable[[str | None], dict],
        on_message: Callable[[bytes], None],
        on_state: Callable[[str], None],
        on_lost: Callable[[bool], None],
        fallback: Callable[[], list[str]],
    ) -> None:
        self.uplink = uplink
        self.planner = HandoverPlanner()
        self.handle: str | None = None  # the latest resumable upstream handle
        self.generation = 0  # +1 per opened connection
        self.resumed = False  # the open connection resumed with a handle Gemini accepted
        self.reconnects = 0
        self._recorder = recorder
        self._setup = setup
        self._on_message = on_message
        self._on_state = on_state
        self._on_lost = on_lost
        self._fallback = fallback
        self._upstream: Upstream | None = None
        self._ready = Wake()  # a connection is up (the writer waits on it)
        self._connected_at = 0.0
        self._flaps = 0
        self._young = 0  # connections in a row that ended soon after they opened
        # The user's latest turn (a text), the connection it went up on, whether re-sent.
        self._turn: bytes | None = None
        self._turn_generation = -1
        self._turn_resent = False
        self._cut = False
        self._budget = limits.ReconnectBudget()
        uplink.send_now = self.send_now

    def turn_completed(self) -> None:
        """A turn completed on this connection: it is not flapping."""
        self._flaps = 0

    # --- the reader ---------------------------------------------------------------------------

    async def read(self) -> None:
        """Connect, then read until the session ends; raises SessionEnd when the upstream is
        gone for good."""
        await self._connect(reason="start")
        self._on_state("ready")
        planner = self.planner
        while True:
            upstream = self._upstream
            assert upstream is not None
            closed: UpstreamClosed | None = None
            try:
                while not planner.handover_now:
                    self._on_message(await upstream.recv())
            except UpstreamClosed as exc:
                closed = exc
            handover = closed is None or planner.goaway_seen
            lived = time.monotonic() - self._connected_at
            self._go_offline()
            if closed is None:
                await upstream.close(1000, "handover")
            if handover:
                reason = "go_away"
                logger.info("upstream handover after goAway")
            else:
                assert closed is not None
                if closed.rejected:
                    raise rejected(closed)
                reason = "abnormal_close"
                self._flaps = 0 if lived >= STABLE_SECONDS else self._flaps + 1
                logger.warning("upstream closed %s %s; reconnecting", closed.code, closed.reason)
                if self._flaps > MAX_FLAPS:
                    raise SessionEnd(EndKind.UPSTREAM_UNAVAILABLE)
            self._on_state("reconnecting")
            await self._pace(reason, lived=lived)
            lost_generation = self.generation
            await self._connect(reason=reason)
            if reason == "abnormal_close":  # a handover waits for the turn's reply
                self._resend_turn(lost_generation)
            self._on_state("reconnected")
            # The new connection holds a goAway handover back while the streak lasts.
            self.planner.hold_until = time.monotonic() + limits.backoff(self._young)

    async def _pace(self, reason: str, *, lived: float) -> None:
        """Before a reconnect or handover: the session's and the worker's budgets, and a
        backoff after young connections. Raises SessionEnd when a budget is spent."""
        self._young = self._young + 1 if lived < limits.YOUNG_CONNECTION_SECONDS else 0
        window = self._budget.window
        if not self._budget.take(time.monotonic()):
            metrics.UPSTREAM_RECONNECTS.labels(reason, "failed").inc()
            logger.warning(
                "upstream reconnect budget spent (%d in %.0fs)", self._budget.limit, window
            )
            raise SessionEnd(
                EndKind.UPSTREAM_UNAVAILABLE,
                f"The assistant's connection keeps dropping ({self._budget.limit} reconnects "
                f"in {window:.0f} s). Try again in a moment.",
            )
        if reason == "go_away" and self._young > 1 and lived < limits.SHORTEST_CONNECTION:
            # A goAway whose deadline came before the hold ended: wait offline instead.
            await asyncio.sleep(min(limits.backoff(self._young - 1), limits.SHORTEST_CONNECTION))
        if not await limits.worker_reconnect_slot():
            metrics.UPSTREAM_RECONNECTS.labels(reason, "failed").inc()
            logger.warning("this worker's upstream reconnect budget is spent")
            raise SessionEnd(
                EndKind.UPSTREAM_UNAVAILABLE,
                "The server is reconnecting too many sessions at once. Try again in a moment.",
            )

    def user_turn(self, payload: bytes) -> bytes:
        """The user's turn as sent upstream (a text): re-sent once after a lost connection
        that never answered it. Returns it."""
        self._turn, self._turn_generation, self._turn_resent = payload, -1, False
        return payload

    def _resend_turn(self, lost_generation: int) -> None:
        """A turn that went up on the lost connection and got no reply at all (not even a
        cut one): the new connection does not know it (its handle is older). Once."""
        turn = self._turn
        if turn is None or self._turn_resent or self._cut or not self.planner.awaiting_reply:
            return
        if self._turn_generation != lost_generation:
            return  # never sent (still queued, the writer sends it) or answered long ago
        self._turn_resent = True
        self._recorder.session_event("turn_resent")
        logger.info("the user's turn was lost with the upstream connection: sent again")
        self.uplink.put_control(turn)

    def _go_offline(self) -> None:
        self._ready.clear()
        self._upstream = None
        self.uplink.set_offline(True)
        self._cut = self.planner.connection_closed()
        self._on_lost(self._cut)

    async def _connect(self, *, reason: str) -> None:
        """Open an upstream session, resuming with the latest handle; backoff and jitter
        between attempts. Raises SessionEnd when Gemini rejects us or retries run out."""
        delays = RECONNECT_DELAYS if reason == "abnormal_close" else START_DELAYS
        last: UpstreamClosed | None = None
        attempt = 0
        while attempt < len(delays):
            delay = delays[attempt]
            attempt += 1
            if delay:
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            handle = self.handle
            try:
                upstream = await Upstream.open(self._setup(handle))
            except UpstreamClosed as closed:
                last = closed
                metrics.ERRORS.labels("upstream_connect").inc()
                logger.warning(
                    "upstream open failed (%s, attempt %d): %s %s",
                    reason,
                    attempt,
                    closed.code,
                    closed.reason,
                )
                if closed.rejected:
                    refused = {"code": closed.code, "reason": closed.reason[:120]}
                    if handle:
                        # The handle is stale or refused: go on with a fresh upstream session.
                        self.handle = None
                        self._recorder.session_event("resume_failed", **refused)
                    elif left_out := self._fallback():
                        # Something Pastra added (not the client) may be what Gemini refused:
                        # once more without it, rather than a dead session.
                        self._recorder.session_event(
                            "features_unavailable", features=left_out, **refused
                        )
                    else:
                        raise rejected(closed) from None
                    attempt -= 1
                continue
            self._upstream = upstream
            self.resumed = bool(handle)
            self.generation += 1
            self._connected_at = time.monotonic()
            self.uplink.set_offline(False)
            self._ready.set()
            if reason != "start":
                self.reconnects += 1
                self._recorder.session_event("reconnected", reason=reason, resumed=bool(handle))
                metrics.UPSTREAM_RECONNECTS.labels(reason, "ok").inc()
                logger.info("upstream reconnected (%s, resumed=%s)", reason, bool(handle))
            return
        if reason != "start":
            metrics.UPSTREAM_RECONNECTS.labels(reason, "failed").inc()
        detail = f" (last: {last.code} {last.reason})" if last else ""
        logger.warning("upstream unavailable%s", detail)
        raise SessionEnd(EndKind.UPSTREAM_UNAVAILABLE)

    # --- the writer ---------------------------------------------------------------------------

    def send_now(self, item: Item) -> bool:
        """The writer's send, made by the caller's task while the writer waits with nothing
        queued: True if `item` went out (a steady stream takes no task switch per message);
        False if it must wait its turn (no connection, the transport's buffer is full): the
        uplink queues it for the writer, which handles it as it would have."""
        upstream = self._upstream
        if upstream is None or not self._ready.is_set():
            return False
        if item.call_generation >= 0 and item.call_generation != self.generation:
            return False  # the writer drops it, and says so
        if not upstream.send_now(item.payload):
            return False
        if item.payload is self._turn:
            self._turn_generation = self.generation
        return True

    async def write(self) -> None:
        uplink = self.uplink
        while True:
            item = upstream = None  # what was sent is not kept while the writer waits
            if not self._ready.is_set():
                await self._ready.wait()
            item = await uplink.get()
            upstream = self._upstream
            if upstream is None:
                uplink.push_front(item)
                continue
            if item.call_generation >= 0 and item.call_generation != self.generation:
                logger.info("tool results of an earlier upstream connection not sent")
                continue
            try:
                await upstream.send(item.payload)
                if item.payload is self._turn:
                    self._turn_generation = self.generation
            except UpstreamClosed:
                uplink.push_front(item)
                if self._upstream is upstream:
                    self._ready.clear()  # the reader sees the close too and reconnects

    # --- forced handover and the end ------------------------------------------------------------

    async def hand_over(self) -> None:
        """The goAway deadline passed: close the connection; the reader reconnects."""
        if (upstream := self._upstream) is not None:
            logger.info("goAway deadline: handing over now")
            await upstream.close(1000, "handover")

    async def close(self, limit: float = 2.0) -> None:
        if self._upstream is not None:
            upstream, self._upstream = self._upstream, None
            try:
                async with asyncio.timeout(limit):
                    await upstream.close(1000, "client session ended")
            except TimeoutError:
                pass
