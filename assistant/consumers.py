"""Channels glue for the two live sockets: accept or refuse, hand frames to the client
adapter (assistant/live/adapters/), run its LiveSession, join the control groups, close with
the adapter's code and reason. No protocol or policy here.

LiveConsumer: the web UI on /ws/live/ (session cookie and Origin checked in routing).
GeminiConsumer: any Gemini Live client, with a personal access token (or, on the
Constrained method, an ephemeral token: assistant/live/credentials.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from assistant import control, loopwatch, metrics
from assistant.live import browser_protocol as bp
from assistant.live import credentials
from assistant.live.adapters.gemini import GeminiAdapter
from assistant.live.adapters.web import WebAdapter
from assistant.live.buffers import Downlink
from assistant.live.close_codes import CloseCode, GeminiCode
from assistant.live.compat import BridgeConsumer
from assistant.live.contract import SessionSpec
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.session import LiveSession
from pastra_site import logs

logger = logging.getLogger(__name__)

SETUP_TIMEOUT_SECONDS = 30.0


class _SessionConsumer(BridgeConsumer):
    """What both sockets share: the session's main task, groups, control events, close."""

    adapter: WebAdapter | GeminiAdapter
    session: LiveSession | None = None
    _main: asyncio.Task | None = None
    _watchdog: asyncio.Task | None = None
    _closed = False
    _close_counted = False
    access_token_id: int | None = None  # the token behind a Gemini-path session

    def receive_now(self, message):
        session = self.session
        if self._closed or (session is not None and session.ended):
            return None
        text = message.get("text")
        data = text if text is not None else message.get("bytes") or b""
        if session is not None:
            session.bytes_in += len(data)
        try:
            spec = self.adapter.on_text(text) if text is not None else self.adapter.on_bytes(data)
            if spec is not None:
                self.start_session(spec)  # may refuse the setup (its tools, say)
        except SessionEnd as end:
            return self.end(end)
        except Exception:  # a bug: end this session only, at once, freeing lease and upstream
            logger.exception("%s: a client message could not be handled", self.adapter.path_name)
            metrics.ERRORS.labels("session").inc()
            return self.end(SessionEnd(EndKind.INTERNAL))
        return None if self.session is None else self.session.uplink.pace()

    async def end(self, end: SessionEnd) -> None:
        """End the session (its main task closes the socket), or close now if none."""
        if self.session is not None:
            self.session.end(end)
            return
        if not self._closed:
            self._closed = True
            await self.close_for(end)

    async def close_for(self, end: SessionEnd) -> None:
        close = self.adapter.close_for(end)
        if close is None:
            return
        frames, code, reason = close
        self.count_close(code)
        for frame in frames:
            await self.send(text_data=frame)
        await self.close(code=code, reason=reason)

    def count_close(self, code: int) -> None:
        """Count this socket's close once: the code sent, or the client's if it closed first."""
        if not self._close_counted:
            self._close_counted = True
            metrics.CLOSES.labels(self.adapter.path_name, str(int(code))).inc()

    def start_session(self, spec: SessionSpec) -> None:
        loopwatch.watch()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None  # not kept for the session's life: it has nothing to do
        self.scope.pop("user", None)  # the web path's User (2 KB) served its purpose at connect
        # Log lines of this connection carry its ids; the session adds the conversation id
        # for its own tasks once it exists.
        logs.bind(user=spec.user_id, client=spec.client_kind, conversation=spec.conversation_id)
        spec = dataclasses.replace(spec, access_token_id=self.access_token_id)
        self.session = LiveSession(
            spec, self.adapter, Downlink(self._transmit, self.send_now), on_started=self._join
        )
        self.adapter.attach(self.session)
        self._main = asyncio.create_task(
            self._run(), name=f"user={spec.user_id} {self.adapter.path_name} socket"
        )

    async def _run(self) -> None:
        end = await self.session.run()
        self.leave_groups()
        if not self._closed:
            self._closed = True
            try:
                await self.close_for(end)
            except Exception:  # the socket may be gone already
                logger.debug("close after session end failed", exc_info=True)

    async def _wait_main(self) -> None:
        if self._main is not None:
            await asyncio.wait({self._main})
        elif self.session is not None:
            await self.session.close()

    async def _transmit(self, payload: bytes | str) -> None:
        kind = "bytes" if type(payload) is bytes else "text"
        await self.base_send({"type": "websocket.send", kind: payload})

    def watch(self, seconds: float, owner: str) -> None:
        """End the connection unless a session starts within `seconds`."""

        async def expire() -> None:
            await asyncio.sleep(seconds)
            if self.session is None:
                await self.end(SessionEnd(EndKind.START_TIMEOUT))

        self._watchdog = asyncio.create_task(expire(), name=f"{owner} start watchdog")

    async def disconnect(self, code):
        self._closed = True
        self.count_close(code if isinstance(code, int) else GeminiCode.ABNORMAL)
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self.session is not None:
            self.session.end(SessionEnd(EndKind.CLIENT_GONE))
            await self._wait_main()  # its end leaves the groups (and BridgeConsumer's at last)

    async def on_server_shutdown(self) -> None:
        """The server is stopping: record what we have, then let daphne go on."""
        if self.session is not None:
            self.session.end(SessionEnd(EndKind.SHUTDOWN))
            await self._wait_main()

    # --- channel layer: control events ------------------------------------------------------

    async def _join(self, session: LiveSession) -> None:
        spec = session.spec
        await self.join_groups(
            control.session_groups(
                user_id=spec.user_id,
                conversation_id=session.conversation_id,
                access_token_id=spec.access_token_id,
            )
        )

    async def live_end(self, event):
        """`live.end` from staff, `end_session`, logout, a credential lost (control.py)."""
        end = control.end_for(event, path=self.adapter.path_name, scope=self.scope)
        if end is not None:
            await self.end(end)

    async def live_superseded(self, event):
        """The conversation was resumed by another socket (maybe on another worker)."""
        await self.end(SessionEnd(EndKind.SUPERSEDED))

    async def conversation_events(self, event):
        """Recorder broadcasts are for admin watchers (assistant/live_view.py), who listen on
        their own group; a live session ignores one should it ever get it."""


class LiveConsumer(_SessionConsumer):
    """The web UI's socket: binary PCM16 both ways, JSON for the rest."""

    async def connect(self):
        user = self.scope.get("user")
        self.adapter = WebAdapter(user.pk if user is not None else None)
        if user is None or not user.is_authenticated:
            self.count_close(CloseCode.UNAUTHENTICATED)
            await self.close(code=CloseCode.UNAUTHENTICATED)  # before accept: no upstream
            return
        await self.accept()
        self.watch(bp.START_TIMEOUT_SECONDS, f"user={user.pk}")


class GeminiConsumer(_SessionConsumer):
    """The Gemini-compatible socket: a token (credentials.py says which and where); as at
    Google, the upgrade succeeds and a bad or missing key closes at the first message."""

    async def connect(self):
        version = self.scope.get("url_route", {}).get("kwargs", {}).get("version", "v1beta")
        caller = await credentials.identify(self.scope)
        self.access_token_id = caller.access_token_id
        self.adapter = GeminiAdapter(
            caller.user_id, version=version, refusal=caller.refusal, ephemeral=caller.ephemeral
        )
        await self.accept()
        self.watch(SETUP_TIMEOUT_SECONDS, f"user={caller.user_id or '-'}")
