"""One connection's lifecycle: handshake, its tasks, the lifetime timers and the close.

Tasks per connection, all owned by `Session.run`: the reader (client messages, handed
to `Inputs`; it never blocks on model output), the responder (`TurnRunner.run`: runs queued
model turns one at a time, so every turn's messages go out in order), the signals sender
(`voiceActivity`, interim transcripts), the lifetime timer and, for a session opened with
an ephemeral token, its expiry. A turn runs in its own task so that barge-in is a
`cancel()`; the responder then sends `interrupted` and `turnComplete`. Any task may decide
the connection's end by calling `_finish(code, reason)`; `run` then cancels everything and
sends the close frame, so nothing is sent after that decision. Shared state comes from the
`EmulatorContext`; this module never imports the server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from . import protocol as p
from .context import EmulatorContext
from .handshake import SessionSetup, configure, read_setup
from .inputs import Inputs
from .models import ModelSpec
from .resumption import SessionState
from .signals import Signals
from .stats import Counters
from .tokens import REASON_TOKEN_EXPIRED
from .turns import TurnRunner

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

logger = logging.getLogger(__name__)


class Session:
    """The emulated model behind one WebSocket connection."""

    def __init__(
        self, context: EmulatorContext, ws: ServerConnection, version: str, *, constrained=False
    ) -> None:
        self.context = context
        self.config = context.config
        self.ws = ws
        self.version = version
        self.constrained = constrained  # BidiGenerateContentConstrained: an ephemeral token
        self.id = context.next_connection_id()
        self.counters = Counters()
        self.model: ModelSpec | None = None
        self.state: SessionState | None = None
        self.setup: SessionSetup | None = None
        self.ready = False  # past setup: admitted, counts against max_sessions
        self._text_frames = self.config.frames == "text"
        self._done: asyncio.Future[tuple[int, str] | None] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._goaway_task: asyncio.Task | None = None
        self._turns: TurnRunner | None = None
        self._inputs: Inputs | None = None
        self._signals = Signals()

    @property
    def closing(self) -> bool:
        return self._done is not None and self._done.done()

    async def run(self) -> None:
        """Serve the connection until it ends; then give back what it held in the context."""
        try:
            await self._serve()
        finally:
            self._release()

    def stats(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model.name if self.model else None,
            **self.counters.as_dict(),
        }

    # --- lifecycle ---------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            await self._setup()
        except p.ProtocolError as error:
            logger.info("emulator connection %s refused: %s", self.id, error)
            await self._close(error.code, error.reason)
            return
        except TimeoutError:  # no setup within the connection lifetime
            await self._close(p.INTERNAL, p.REASON_DEADLINE)
            return
        except ConnectionClosed:
            return
        assert self._turns is not None
        self._done = asyncio.get_running_loop().create_future()
        self._spawn(self._reader())
        self._spawn(self._turns.run())
        self._spawn(self._signals.run(self._send))
        if self.config.connection_seconds > 0:
            self._spawn(self._lifetime())
        if self.setup is not None and self.setup.token is not None:
            self._spawn(self._token_expiry(self.setup.token))
        try:
            outcome = await asyncio.shield(self._done)
        finally:
            await self._cancel_tasks()
        if outcome is not None:
            await self._close(*outcome)

    def _release(self) -> None:
        if self.state is not None and self.state.owner is self:
            self.context.store.release(self.state)
        if self.ready:
            self.context.dismiss()
        self.context.connection_closed(self.counters)

    def _finish(self, code: int | None = None, reason: str = "") -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None if code is None else (code, p.close_reason(reason)))

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro) -> None:
        try:
            await coro
        except p.ProtocolError as error:
            logger.info("emulator connection %s: closing %s", self.id, error)
            self._finish(error.code, error.reason)
        except ConnectionClosed:
            self._finish()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("emulator connection %s failed", self.id)
            self._finish(p.INTERNAL, p.REASON_INTERNAL)

    async def _cancel_tasks(self) -> None:
        turns = self._turns
        turn_task = turns.turn_task if turns is not None else None
        tasks = [*self._tasks, *([turn_task] if turn_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if turns is not None:
            turns.abandon()

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code, p.close_reason(reason))
        except Exception:  # the peer may already be gone
            logger.debug("emulator connection %s: close failed", self.id, exc_info=True)

    async def _send(self, message: dict[str, Any]) -> None:
        if self.closing:  # decided to close: nothing more goes out
            return
        await self.ws.send(p.dumps(message), text=self._text_frames)

    async def _lifetime(self) -> None:
        total = self.config.connection_seconds
        notice = min(self.config.goaway_seconds, total)
        await asyncio.sleep(total - notice)
        await self._goaway(notice)

    async def _token_expiry(self, token) -> None:
        """An ephemeral token's expireTime also ends the sessions it opened (Google "may
        preemptively close the session after this time")."""
        await asyncio.sleep(self.context.tokens.seconds_left(token))
        self._finish(p.POLICY, REASON_TOKEN_EXPIRED)

    def _goaway_soon(self) -> None:
        """`/goaway`: goAway now, the close a second later (once per connection)."""
        if self._goaway_task is None:
            self._goaway_task = self._spawn(self._goaway(1.0))

    async def _goaway(self, seconds: float) -> None:
        await self._send({"goAway": {"timeLeft": p.duration_text(seconds)}})
        await asyncio.sleep(seconds)
        self._finish(p.INTERNAL, p.REASON_DEADLINE)

    # --- setup and reading -------------------------------------------------------------

    async def _setup(self) -> None:
        limit = self.config.connection_seconds or None
        async with asyncio.timeout(limit):
            raw = await self.ws.recv()
        tokens = self.context.tokens if self.constrained else None
        self.model, body, token = read_setup(
            raw, self.ws.request, self.config.api_key, self.version, tokens
        )
        setup = configure(self.model, body, self.context.store)
        self.state = setup.state
        if not self.context.admit():
            reason = p.reason_resource_exhausted(self.context.trace_id())
            raise p.ProtocolError(p.INTERNAL, reason)
        self.ready = True
        if token is not None:
            setup.token = token
            if not (body.get("sessionResumption") or {}).get("handle"):
                token.consume()  # resuming a session is not a use
        setup.state.owner = self
        self.setup = setup
        self._turns = TurnRunner(self.context, setup, self.counters, self._send, self._signals)
        self._inputs = Inputs(
            setup,
            self.config,
            self.counters,
            self._turns,
            goaway=self._goaway_soon,
            finish=self._finish,
            signals=self._signals,
        )
        self.counters.setups += 1
        await self._send({"setupComplete": {}})
        logger.info("emulator connection %s: setup for %s", self.id, setup.model.name)

    async def _reader(self) -> None:
        assert self._inputs is not None
        inputs = self._inputs
        echo = self.config.mode == "echo"
        async for raw in self.ws:
            if self.closing:
                return
            if echo:
                reply = inputs.echo(raw)
                if reply is not None:
                    await self.ws.send(reply, text=self._text_frames)
                    continue
            kind, body = p.parse_message(raw)
            inputs.handle(kind, body)
        self._finish()
