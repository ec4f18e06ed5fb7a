"""The one owner of a live session's tasks and timers. Every task is named `<owner> <role>`
(owner: `conv=<uuid>`, or `user=<id>` before the conversation exists), belongs to a stage, and
is guarded: a SessionEnd it raises ends the session with that reason, a crash is logged and
ends it as INTERNAL. A timer (`call_later`, one per role) stands in for a task that would
only sleep, under the same guard. `stop(stage)` cancels a stage's timers and tasks and waits
for the tasks, so the session shuts down stage by stage in the order it states
(assistant/live/session.py SHUTDOWN).

The guard is a done callback, not a wrapping coroutine: a session keeps several tasks for
its whole life, and each wrapper (its coroutine, frame and closure) cost memory per session
(docs/memory-profile.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from assistant import metrics
from assistant.live.errors import EndKind, SessionEnd

logger = logging.getLogger(__name__)

# Stages, stopped in this order at shutdown.
WORKERS = "workers"  # upstream reader and writer, housekeeper, tool calls
OUTPUT = "output"  # recorder writer and downlink writer: they carry the final flush


class SessionTasks:
    __slots__ = ("_on_end", "_owner", "_stopped", "_tasks", "_timers")

    def __init__(self, owner: str, on_end: Callable[[SessionEnd], None]) -> None:
        self._owner = owner
        self._on_end = on_end
        self._tasks: dict[asyncio.Task, tuple[str, str]] = {}  # task → (role, stage)
        self._timers: dict[str, tuple[asyncio.TimerHandle, str]] = {}  # role → (timer, stage)
        self._stopped: tuple[str, ...] = ()

    @property
    def owner(self) -> str:
        return self._owner

    @owner.setter
    def owner(self, owner: str) -> None:
        self._owner = owner
        for task, (role, _) in self._tasks.items():
            task.set_name(f"{owner} {role}")

    def spawn(self, coro: Coroutine[Any, Any, Any], role: str, *, stage: str = WORKERS):
        task = asyncio.create_task(coro, name=f"{self._owner} {role}")
        self._tasks[task] = (role, stage)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._failed(error, task.get_name() + " task")

    def _failed(self, error: BaseException, what: str) -> None:
        if isinstance(error, SessionEnd):
            self._on_end(error)
        elif isinstance(error, Exception):
            logger.error("%s failed", what, exc_info=error)
            metrics.ERRORS.labels("session").inc()
            self._on_end(SessionEnd(EndKind.INTERNAL))

    def call_later(
        self, delay: float, callback: Callable[[], None], role: str, *, stage: str = WORKERS
    ) -> None:
        """Run `callback()` in `delay` seconds, guarded like a task; it replaces the role's
        timer still pending. Nothing once its stage has stopped."""
        if stage in self._stopped:
            return
        self.cancel_timer(role)
        timer = asyncio.get_running_loop().call_later(delay, self._fire, role, callback)
        self._timers[role] = (timer, stage)

    def cancel_timer(self, role: str) -> None:
        if (pending := self._timers.pop(role, None)) is not None:
            pending[0].cancel()

    def _fire(self, role: str, callback: Callable[[], None]) -> None:
        self._timers.pop(role, None)
        try:
            callback()
        except Exception as error:
            self._failed(error, f"{self._owner} {role} timer")

    def names(self) -> list[str]:
        return sorted(task.get_name() for task in self._tasks)

    async def stop(self, stage: str) -> None:
        """Cancel every timer and task of `stage` (but the caller's own) and wait until the
        tasks are done. No timer of `stage` is started afterwards."""
        self._stopped += (stage,)
        for role in [role for role, (_, s) in self._timers.items() if s == stage]:
            self.cancel_timer(role)
        current = asyncio.current_task()
        stopping = [t for t, (_, s) in self._tasks.items() if s == stage and t is not current]
        for task in stopping:
            task.cancel()
        await asyncio.gather(*stopping, return_exceptions=True)
