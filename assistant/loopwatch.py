"""Event-loop health of this worker for Prometheus: scheduling lag and the number of tasks.

One watcher per event loop, started by the first live session (`watch()`), sleeps
`INTERVAL` at a time and records how late it woke: a loop busy with one slow callback or
CPU-bound past its core shows as lag every session on it feels (audio queued, pings late).
"""

from __future__ import annotations

import asyncio

from assistant import metrics

INTERVAL = 0.05  # 20 samples a second: negligible work, a lag of one tick is 50 ms at most
TASKS_EVERY = 20  # count the tasks once a second

_watchers: dict[int, asyncio.Task] = {}  # loop id -> its watcher (a strong reference)


async def _watch() -> None:
    tick = 0
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + INTERVAL
        await asyncio.sleep(INTERVAL)
        metrics.LOOP_LAG.observe(max(0.0, loop.time() - due))
        tick += 1
        if tick % TASKS_EVERY == 0:
            metrics.TASKS.set(len(asyncio.all_tasks(loop)))


def watch() -> None:
    """Start this loop's watcher unless it runs already (idempotent, cheap)."""
    loop = asyncio.get_running_loop()
    key = id(loop)
    if key in _watchers and not _watchers[key].done():
        return
    _watchers[key] = loop.create_task(_watch(), name="event-loop watcher")
    metrics.TASKS.set(len(asyncio.all_tasks(loop)))
