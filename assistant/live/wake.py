"""Wake: a flag one task waits on (asyncio.Event's `set`, `clear`, `is_set`, `wait`), whose
future exists only while that task waits: a session has several, and an Event's deque of
waiters is most of its 0.8 KB (docs/memory-profile.md)."""

from __future__ import annotations

import asyncio


class Wake:
    """asyncio.Event for one waiting task at a time (a second waiter is an error)."""

    __slots__ = ("_set", "_waiter")

    def __init__(self, value: bool = False) -> None:
        self._set = value
        self._waiter: asyncio.Future | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    def waiting(self) -> bool:
        """A task waits on it now."""
        return self._waiter is not None and not self._waiter.done()

    async def wait(self) -> None:
        if self._set:
            return
        if self._waiter is not None and not self._waiter.done():
            raise RuntimeError("a Wake has one waiter at a time")
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None
