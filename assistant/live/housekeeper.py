"""The session's timers, in one task: the daily quota, the idle limit, a client stalled on a
send, the goAway deadline (forced handover), and the lease renewal every RENEW_SECONDS (which
also accounts the live seconds so far and re-reads the user's allowance)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from assistant.live import lease
from assistant.live.errors import EndKind, SessionEnd

if TYPE_CHECKING:
    from assistant.live.session import LiveSession

STALL_SECONDS = 10.0  # a single send to the client pending this long ends the session


class Housekeeper:
    def __init__(self, session: LiveSession) -> None:
        self._session = session
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A deadline moved: recompute when to wake up."""
        self._wake.set()

    async def run(self) -> None:
        session = self._session
        planner = session.link.planner
        renew_at = time.monotonic() + lease.RENEW_SECONDS
        while True:
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
            if planner.due(now, calls_pending=session.tools.pending()):
                await session.link.hand_over()
            if now >= renew_at:
                renew_at = now + lease.RENEW_SECONDS
                await self._renew()
            wake = min(
                renew_at,
                session.quota_deadline,
                session.last_activity + session.idle_seconds,
                planner.deadline or float("inf"),
                now + STALL_SECONDS / 2,
            )
            try:
                async with asyncio.timeout(max(0.01, wake - time.monotonic())):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def _renew(self) -> None:
        session = self._session
        session.flush_counters()
        session.recorder.account_seconds()
        await session.recorder.wait_written(5.0)
        remaining = await lease.arenew(lease_id=session.lease_id, user_id=session.spec.user_id)
        session.quota_deadline = time.monotonic() + max(0.0, remaining)
