"""One channel-layer listener per worker process: the control events for the sessions it holds.

A control event (control.py: `live.end`; lease.py: `live.superseded`) is addressed to a group
(`user.<id>`, `conversation.<uuid>`, `token.<id>`). `send(group, event)` puts it once on the
layer's BROADCAST group, which every worker's hub has joined with its one channel; each hub
hands it to the sockets it has registered under that group. So a socket joins and leaves its
groups in memory: no channel-layer round trip at connect or close, and no channel, queue or
receive task per socket (docs/performance.md). Control events are rare (staff, sign-outs,
lost credentials, a takeover), so every worker seeing each one costs nothing that matters.

The listener starts with the first registered socket (never at import) and outlives it. A
layer outage (Redis down or restarted) is waited out here, once per process: the receive is
retried with back-off and BROADCAST rejoined (a restarted Redis has forgotten it); the
membership is also renewed every REJOIN_SECONDS, well within channels_redis's group expiry
(a day by default). Live sessions never depend on the layer being up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from channels.layers import get_channel_layer

from assistant import metrics

logger = logging.getLogger(__name__)

BROADCAST = "pastra.control"
REJOIN_SECONDS = 600.0
READY_SECONDS = 2.0
GROUP_KEY = "to_group"  # where `send` writes the addressed group inside the event


class Member(Protocol):
    def control(self, event: dict) -> None: ...


async def send(group: str, event: dict) -> None:
    """Ask every worker to hand `event` to its sockets in `group`. Raises if the layer is down."""
    await get_channel_layer().group_send(BROADCAST, {**event, GROUP_KEY: group})


class Hub:
    """The process's registry of sockets by group, and the one task that listens for them."""

    def __init__(self) -> None:
        self._members: dict[str, set[Member]] = {}
        self._task: asyncio.Task | None = None
        self._layer = None
        self._ready: asyncio.Future | None = None  # the listener's first join, once tried
        self.layer_down = False

    async def join(self, member: Member, groups: tuple[str, ...]) -> None:
        """Register `member` under `groups` until it `leave`s (BridgeConsumer leaves when its
        socket's application ends, however it ends). Only a process's first join waits, for the
        listener's first attempt to join BROADCAST (at most READY_SECONDS): an event sent
        right after a socket joined must find it listening."""
        for group in groups:
            self._members.setdefault(group, set()).add(member)
        if groups:
            self._listen_soon()
            if self._ready is not None and not self._ready.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._ready), READY_SECONDS)

    def leave(self, member: Member, groups: tuple[str, ...]) -> None:
        for group in groups:
            members = self._members.get(group)
            if members is not None:
                members.discard(member)
                if not members:
                    del self._members[group]

    def members(self, group: str) -> list[Member]:
        return list(self._members.get(group, ()))

    def deliver(self, event: dict) -> int:
        """Hand one received event to its group's sockets; returns how many."""
        group = event.pop(GROUP_KEY, None)
        members = self.members(group) if isinstance(group, str) else []
        for member in members:
            try:
                member.control(dict(event))
            except Exception:
                logger.exception("control event %s not delivered", event.get("type"))
        return len(members)

    def _listen_soon(self) -> None:
        loop, layer = asyncio.get_running_loop(), get_channel_layer()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop or self._layer is not layer:
            if task is not None and not task.done() and task.get_loop() is loop:
                task.cancel()  # the layer was replaced (tests): listen on the new one
            self._layer = layer
            self._ready = loop.create_future()
            if layer is None:
                self._ready.set_result(None)
            else:
                self._task = loop.create_task(self._listen(layer), name="control hub")

    async def _listen(self, layer) -> None:
        # The default prefix: channels_redis serves every local channel of a process from one
        # receive loop on that prefix's key; a channel of another prefix would hold the
        # loop's lock on its own key and starve the process's other consumers (the admin
        # live view's watchers) of their messages.
        channel = await layer.new_channel()
        renewal = asyncio.get_running_loop().create_task(
            self._renew(layer, channel), name="control hub renewal"
        )
        joined, delay = False, 0.25
        try:
            while True:
                try:
                    if not joined:
                        try:
                            await layer.group_add(BROADCAST, channel)
                        finally:  # joined or not: the first join stops waiting
                            if self._ready is not None and not self._ready.done():
                                self._ready.set_result(None)
                        joined = True
                        if self.layer_down:
                            self.layer_down = False
                            logger.info("channel layer back: control events resumed")
                    event = await layer.receive(channel)
                except Exception:
                    if not self.layer_down:
                        self.layer_down = True
                        metrics.ERRORS.labels("channel_layer").inc()
                        logger.warning(
                            "channel layer unavailable: control events paused", exc_info=True
                        )
                    joined = False  # rejoined once it answers: a restarted Redis forgot it
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 4.0)
                    continue
                delay = 0.25
                self.deliver(event)
        finally:
            renewal.cancel()

    @staticmethod
    async def _renew(layer, channel: str) -> None:
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            try:
                await layer.group_add(BROADCAST, channel)
            except Exception:
                logger.debug("control hub membership not renewed", exc_info=True)

    async def stop(self) -> None:
        """Cancel the listener (tests, and a loop that ends)."""
        task, self._task = self._task, None
        loop = asyncio.get_running_loop()
        if task is not None and not task.done() and task.get_loop() is loop:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


_hub: Hub | None = None


def hub() -> Hub:
    """This process's hub, made at first use."""
    global _hub
    if _hub is None:
        _hub = Hub()
    return _hub
