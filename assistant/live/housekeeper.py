"""The session's timers: the daily quota, the idle limit, a client stalled on a send, the
goAway deadline (forced handover), and the lease renewal every RENEW_SECONDS (which also
accounts the live seconds so far and re-reads the user's allowance).

One timer in the session's task group (tasks.py `call_later`), not a task that sleeps: each
round checks the deadlines and arms the next round at the earliest of them. A forced
handover or a renewal runs as a short task ("housekeeper"); the next round follows it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from assistant.live import lease
from assistant.live.errors import EndKind, SessionEnd

if TYPE_CHECKING:
    from assistant.live.session import LiveSession

STALL_SECONDS = 10.0  # a single send to the client pending this long ends the session
ROLE = "housekeeper"


class Housekeeper:
    __slots__ = ("_busy", "_renew_at", "_session", "_started", "_woken")

    def __init__(self, session: LiveSession) -> None:
        self._session = session
        self._renew_at = 0.0
        self._started = False
        self._busy = False  # a handover or renewal is under way: the next round follows it
        self._woken = False  # a deadline moved meanwhile

    def start(self) -> None:
        """The first round, as soon as the session's tasks have started."""
        self._started = True
        self._renew_at = time.monotonic() + lease.RENEW_SECONDS
        self._session.tasks.call_later(0, self._round, ROLE)

    def wake(self) -> None:
        """A deadline moved: a round now, which recomputes when to check next."""
        if self._busy:
            self._woken = True
        elif self._started:
            self._session.tasks.call_later(0, self._round, ROLE)

    def _round(self) -> None:
        session = self._session
        now = time.monotonic()
        if now >= session.quota_deadline:
            raise SessionEnd(EndKind.DAILY_LIMIT)
        if now - session.last_activity >= session.idle_seconds:
            raise SessionEnd(
                EndKind.IDLE,
                f"Session ended after {round(session.idle_seconds)} seconds without activity.",
            )
        if session.downlink.stalled_for(now) >= STALL_SECONDS:
            raise SessionEnd(EndKind.SLOW_CLIENT)
        hand_over = session.link.planner.due(now, calls_pending=session.tools.pending())
        renew = now >= self._renew_at
        if renew:
            self._renew_at = now + lease.RENEW_SECONDS
        if hand_over or renew:
            self._busy, self._woken = True, False
            session.tasks.spawn(self._work(now, hand_over, renew), ROLE)
        else:
            self._arm(now)

    async def _work(self, now: float, hand_over: bool, renew: bool) -> None:
        if hand_over:
            await self._session.link.hand_over()
        if renew:
            await self._renew()
        self._busy = False
        if self._woken:
            self._woken = False
            self._session.tasks.call_later(0, self._round, ROLE)
        else:
            self._arm(now)

    def _arm(self, now: float) -> None:
        session = self._session
        wake = min(
            self._renew_at,
            session.quota_deadline,
            session.last_activity + session.idle_seconds,
            session.link.planner.deadline or float("inf"),
            now + STALL_SECONDS / 2,
        )
        session.tasks.call_later(max(0.01, wake - time.monotonic()), self._round, ROLE)

    async def _renew(self) -> None:
        session = self._session
        session.flush_counters()
        session.recorder.account_seconds()
        await session.recorder.wait_written(5.0)
        remaining = await lease.arenew(lease_id=session.lease_id, user_id=session.spec.user_id)
        session.quota_deadline = time.monotonic() + max(0.0, remaining)
