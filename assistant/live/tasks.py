"""The one owner of a live session's tasks. Every task is named `<owner> <role>` (owner:
`conv=<uuid>`, or `user=<id>` before the conversation exists), belongs to a stage, and is
guarded: a SessionEnd it raises ends the session with that reason, a crash is logged and
ends it as INTERNAL. `stop(stage)` cancels a stage's tasks and waits for them, so the session
shuts down stage by stage in the order it states (assistant/live/session.py SHUTDOWN)."""

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
    def __init__(self, owner: str, on_end: Callable[[SessionEnd], None]) -> None:
        self._owner = owner
        self._on_end = on_end
        self._tasks: dict[asyncio.Task, tuple[str, str]] = {}  # task → (role, stage)

    @property
    def owner(self) -> str:
        return self._owner

    @owner.setter
    def owner(self, owner: str) -> None:
        self._owner = owner
        for task, (role, _) in self._tasks.items():
            task.set_name(f"{owner} {role}")

    def spawn(self, coro: Coroutine[Any, Any, Any], role: str, *, stage: str = WORKERS):
        task = asyncio.create_task(self._guard(coro), name=f"{self._owner} {role}")
        self._tasks[task] = (role, stage)
        task.add_done_callback(lambda done: self._forget(done, coro))
        return task

    def _forget(self, task: asyncio.Task, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.pop(task, None)
        coro.close()  # a task cancelled before its first step never ran it: no warning

    async def _guard(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except SessionEnd as end:
            self._on_end(end)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s task failed", asyncio.current_task().get_name())
            metrics.ERRORS.labels("session").inc()
            self._on_end(SessionEnd(EndKind.INTERNAL))

    def names(self) -> list[str]:
        return sorted(task.get_name() for task in self._tasks)

    async def stop(self, stage: str) -> None:
        """Cancel every task of `stage` (but the caller's own) and wait until they are done."""
        current = asyncio.current_task()
        stopping = [t for t, (_, s) in self._tasks.items() if s == stage and t is not current]
        for task in stopping:
            task.cancel()
        await asyncio.gather(*stopping, return_exceptions=True)
