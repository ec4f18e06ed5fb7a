"""The drain on SIGTERM, under either ASGI server: end every live application, and wait.

The server stops listening, then calls `begin` with its running applications (daphne, every
one: assistant/live/compat.py; uvicorn, the WebSockets': pastra_site/serve.py, where HTTP
requests finish by themselves). Each is cancelled, which a live
consumer turns into `on_server_shutdown()` (compat.BridgeConsumer): its session ends as
SHUTDOWN ("server restarting": web 4001 after an `error` event, Gemini path 1012, both with
the reason) and records what it holds; the drain waits for them at most PASTRA_DRAIN_SECONDS.
While draining, no send waits for a slow client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from django.conf import settings

logger = logging.getLogger(__name__)

draining = False


def begin(applications: Iterable[asyncio.Future]) -> asyncio.Task:
    """Cancel every application still running; the returned task ends once they all have,
    or after PASTRA_DRAIN_SECONDS (the rest are abandoned, and logged)."""
    global draining
    draining = True
    started = time.monotonic()
    limit = settings.PASTRA_DRAIN_SECONDS
    wait_for = [instance for instance in applications if not instance.done()]
    for instance in wait_for:
        instance.cancel()
    logger.info(
        "shutdown: stopped listening; draining %d application instances (at most %.0fs)",
        len(wait_for),
        limit,
    )
    return asyncio.get_event_loop().create_task(
        _wait(wait_for, started, limit), name="shutdown drain"
    )


async def _wait(wait_for: list[asyncio.Future], started: float, limit: float) -> None:
    if not wait_for:
        return
    done, pending = await asyncio.wait(wait_for, timeout=limit)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            logger.warning("shutdown: an application failed while draining: %r", task.exception())
    logger.info(
        "shutdown: drained %d application instances in %.2fs%s",
        len(done),
        time.monotonic() - started,
        f", {len(pending)} still running (abandoned)" if pending else "",
    )
