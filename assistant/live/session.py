"""LiveSession: one live conversation between a client adapter and Gemini: its lifecycle
(lease, tasks, the shutdown order), the input API adapters call, and the wiring of its parts.

The parts: the upstream link (link.py, with the goAway handover planner), the messages it
reads (inbound.py), server tool calls (tool_calls.py), the timers (housekeeper.py), the
bounded buffers (buffers.py), the recorder (recorder.py) and the one task group that owns
every task (tasks.py). Adapters feed client input through the sync, non-blocking methods
below and receive typed events through the ClientSink they implement. No database or
channel-layer work per message: the database is touched at start, once per turn (recorder),
every lease.RENEW_SECONDS and at close.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from assistant import metrics, personas
from assistant.live import handles, lease
from assistant.live.buffers import Downlink, Uplink
from assistant.live.contract import ClientSink, SessionSpec
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.gemini import client as wire_client
from assistant.live.gemini import setup as policy
from assistant.live.gemini import wire
from assistant.live.housekeeper import Housekeeper
from assistant.live.inbound import Inbound
from assistant.live.limits import Limiter
from assistant.live.link import UpstreamLink
from assistant.live.recorder import Recorder
from assistant.live.tasks import OUTPUT, WORKERS, SessionTasks
from assistant.live.tool_calls import ToolCalls, server_tools
from pastra_site import logs

logger = logging.getLogger(__name__)

# The shutdown, step by step (each recorded in `LiveSession.shutdown_trace`):
SHUTDOWN = (
    "workers",  # stop the reader, writer, housekeeper (timer) and tool calls: nothing new in or up
    "upstream",  # close the upstream connection
    "drain",  # let the client have what is queued (not when it is gone or we restart)
    "start",  # wait for a start still in progress (its lease must be released too)
    "records",  # cancelled calls, the end, the final write; release the lease
    "output",  # stop the recorder and downlink writers
)


class LiveSession:
    """One live conversation as a client sees it: survives upstream reconnects."""

    def __init__(
        self,
        spec: SessionSpec,
        sink: ClientSink,
        downlink: Downlink,
        *,
        on_started: Callable[[LiveSession], Awaitable[None]] | None = None,
    ) -> None:
        self.spec = spec
        self.sink = sink
        self.downlink = downlink
        self.uplink = Uplink()
        self.limiter = Limiter()
        self.recorder = Recorder(conversation_id=None)
        self.conversation_id = None
        self.lease_id = None
        self.client_handle = ""  # Pastra's signed handle (Gemini path)
        self.resumed = False
        self.standing_instructions = ""  # the web user's own, read with the lease
        self.emulate_text = policy.emulate_text(spec.setup, spec.model)
        self._done: asyncio.Future[SessionEnd] = asyncio.get_running_loop().create_future()
        self.tasks = SessionTasks(f"user={spec.user_id}", self.end)
        self.inbound = Inbound(self)
        policy.check_fields(spec.setup, model=spec.model)
        self.setup_tools = policy.merge_tools(
            server_tools(spec.model), spec.setup.body.get("tools") or [], model=spec.model
        )
        self.link = UpstreamLink(
            uplink=self.uplink,
            recorder=self.recorder,
            setup=self._setup,
            on_message=self.inbound,
            on_state=self._on_link_state,
            on_lost=self._on_link_lost,
            fallback=self._leave_out_added_tools,
        )
        self.tools = ToolCalls(
            client_functions=self.setup_tools.client_functions,
            recorder=self.recorder,
            sink=sink,
            answer=self.uplink.put_control,
            spawn=self.tasks.spawn,
            generation=lambda: self.link.generation,
            spec=spec,
        )
        self.housekeeper = Housekeeper(self)
        self._on_started = on_started
        self._begin_task: asyncio.Task | None = None
        self._close_task: asyncio.Task | None = None
        self._started_at = time.monotonic()
        self.shutdown_trace: list[str] = []
        self.last_activity = time.monotonic()
        self.quota_deadline = float("inf")
        self.idle_seconds = float(settings.PASTRA_SESSION_IDLE_SECONDS)
        self.audio_in = self.audio_out = 0
        self.bytes_in = 0  # tallied by the adapter, added to the metric in batches

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._done.done()

    def end(self, end: SessionEnd) -> None:
        """Ask the session to end (idempotent; the first reason wins)."""
        if not self._done.done():
            self._done.set_result(end)

    async def run(self) -> SessionEnd:
        """The whole session: begin, bridge until something ends it, close. Returns why."""
        try:
            self._begin_task = asyncio.create_task(self._begin(), name=f"{self.tasks.owner} start")
            try:
                await asyncio.shield(self._begin_task)
            except SessionEnd as end:
                self.end(end)
                self._begin_task = None  # done: nothing for the shutdown to wait for
            else:
                self._begin_task = None
                # Every task started from here on logs with the conversation id.
                logs.bind(conversation=self.conversation_id)
                logger.info(
                    "user=%s live session %s (client=%s model=%s)",
                    self.spec.user_id,
                    "resumed" if self.resumed else "started",
                    self.spec.client_kind,
                    self.spec.model,
                )
                if self._on_started is not None:
                    await self._on_started(self)
                self.sink.started(self)
                spawn = self.tasks.spawn
                spawn(self.recorder.run(), "recorder", stage=OUTPUT)
                spawn(self.downlink.run(), "downlink", stage=OUTPUT)
                spawn(self.link.write(), "upstream writer")
                self.housekeeper.start()  # a timer, not a task (housekeeper.py)
                spawn(self.link.read(), "upstream reader")
            await asyncio.shield(self._done)
        except Exception:
            logger.exception("user=%s live session failed to start", self.spec.user_id)
            metrics.ERRORS.labels("session").inc()
            self.end(SessionEnd(EndKind.INTERNAL))
        finally:
            await self.close()
        return self._done.result()

    async def close(self) -> None:
        """Idempotent, cancellation-safe cleanup in the order of SHUTDOWN."""
        if self._close_task is None:
            self.end(SessionEnd(EndKind.CLIENT_GONE))
            self._close_task = asyncio.create_task(
                self._shutdown(), name=f"{self.tasks.owner} shutdown"
            )
        await asyncio.shield(self._close_task)

    async def _begin(self) -> None:
        spec = self.spec
        grant = await lease.acquire(
            user_id=spec.user_id,
            model=spec.model,
            voice=spec.voice,
            client_kind=spec.client_kind,
            conversation_id=spec.conversation_id,
            ephemeral_token_id=spec.ephemeral_token_id,
            access_token_id=spec.access_token_id,
        )
        if merged := await self.tools.load_mcp():  # the user's MCP tools (tools/mcp_tools.py)
            self.setup_tools = merged
        self.conversation_id = grant.conversation_id
        self.lease_id = grant.lease_id
        self.tasks.owner = f"conv={grant.conversation_id}"
        self.recorder.conversation_id = grant.conversation_id
        self.recorder.turn = grant.next_turn
        self.link.handle = grant.upstream_handle or None
        self.quota_deadline = time.monotonic() + max(0.0, grant.remaining_seconds)
        self.resumed, self.standing_instructions = grant.resumed, grant.standing_instructions
        if grant.resumed:
            self.client_handle = handles.issue(
                user_id=spec.user_id, conversation_id=grant.conversation_id
            )
        self.recorder.session_opened(
            "resumed" if grant.resumed else "started", client=spec.client_kind, model=spec.model
        )
        metrics.LIVE_SESSIONS.labels(spec.client_kind).inc()

    async def _shutdown(self) -> None:
        end = self._done.result()
        await self._step("workers", self.tasks.stop(WORKERS))
        await self._step("upstream", self.link.close())
        if end.kind not in (EndKind.CLIENT_GONE, EndKind.SHUTDOWN):
            await self._step("drain", self.downlink.drain(1.0))
        await self._step("start", self._await_begin())
        if self.lease_id is not None:
            await self._step("records", self._finish_records(end))
        await self._step("output", self.tasks.stop(OUTPUT))
        self.downlink.closed = True
        self.flush_counters()

    async def _step(self, name: str, work: Awaitable[None]) -> None:
        self.shutdown_trace.append(name)
        await work

    async def _await_begin(self) -> None:
        if self._begin_task is not None and not self._begin_task.done():
            try:
                async with asyncio.timeout(5.0):
                    await asyncio.wait({self._begin_task})
            except TimeoutError:
                logger.warning("user=%s session start still pending at close", self.spec.user_id)

    async def _finish_records(self, end: SessionEnd) -> None:
        self.tools.close()  # calls still open are recorded as cancelled
        await self.recorder.close(end)
        await lease.release(self.lease_id, self.conversation_id, end, self.spec.user_id)
        metrics.LIVE_SESSIONS.labels(self.spec.client_kind).dec()
        logger.info(
            "user=%s live session ended: %s after %.1fs (%d reconnects, %d/%d audio in/out, "
            "%d/%d audio dropped up/down)",
            self.spec.user_id,
            end.kind,
            time.monotonic() - self._started_at,
            self.link.reconnects,
            self.audio_in,
            self.audio_out,
            self.uplink.dropped_audio,
            self.downlink.dropped_audio,
        )

    def flush_counters(self) -> None:
        """Byte counts go to Prometheus in batches (lease timer, close): the hot path does
        one `inc()` per message, on the message counters."""
        if self.bytes_in:
            metrics.BYTES_IN.inc(self.bytes_in)
            self.bytes_in = 0
        if bytes_out := self.downlink.take_bytes():
            metrics.BYTES_OUT.inc(bytes_out)

    # --- wiring ---------------------------------------------------------------------------

    def _setup(self, handle: str | None) -> dict:
        built = policy.build_setup(
            self.spec.setup,
            model=self.spec.model,
            base_instruction=settings.PASTRA_SYSTEM_INSTRUCTION,
            tools=self.setup_tools.declared,
            handle=handle,
            emulate_text=self.emulate_text,
        )
        return personas.with_standing_instructions(built, self.standing_instructions)

    def _leave_out_added_tools(self) -> list[str]:
        """The upstream refused the setup: leave out the Google-run tools Pastra added (not
        the client's) for the rest of the session and tell the client. Returns their names."""
        added = sorted(self.setup_tools.added)
        if added:
            self.setup_tools = self.setup_tools.without_added()
            self.sink.features_unavailable(added)
        return added

    def _on_link_state(self, state: str) -> None:
        if state == "ready":  # the first connection: the client may start
            self.sink.ready()
        else:  # "reconnecting", and "ready" again once reconnected
            self.sink.state("ready" if state == "reconnected" else state)

    def _on_link_lost(self, cut: bool) -> None:
        if cut:  # the reply in progress is lost with the connection
            self.recorder.session_event("turn_cut")
            self.sink.turn_finished(self.recorder.end_turn())

    # --- client input (sync; adapters call these from their receive) -------------------

    def push_pcm(self, pcm: bytes) -> None:
        """Raw PCM16 16 kHz from the web UI: base64-encoded once, here."""
        self.limiter.check_audio(len(pcm))
        self.last_activity = time.monotonic()
        self.audio_in += 1
        metrics.AUDIO_IN.inc()
        self.uplink.put_audio(wire.audio_message(wire.b64encode(pcm)), len(pcm) / 32.0)

    def push_media(self, media: wire_client.Media) -> None:
        """Audio or video from a Gemini client: its base64 is passed through untouched."""
        size = media.size
        self.last_activity = time.monotonic()
        if media.kind is wire_client.AUDIO:
            self.limiter.check_audio(size)
            self.audio_in += 1
            metrics.AUDIO_IN.inc()
            payload = wire.audio_message(media.data, media.mime)
            self.uplink.put_audio(payload, wire.audio_ms(size, media.mime))
        else:
            self.limiter.check_video(size)
            metrics.VIDEO_IN.inc()
            self.uplink.put_video(wire.video_message(media.data, media.mime))

    def push_video(self, mime: str, data: str) -> None:
        self.push_media(wire_client.Media(wire_client.VIDEO, mime, data))

    def text(self, text: str) -> None:
        """User text (typed): recorded, sent as realtimeInput.text."""
        self.user_turn_ended()
        self.recorder.user_text(text)
        self.uplink.put_control(self.link.user_turn(wire.text_message(text)))

    def push_control(self, payload: bytes) -> None:
        self.last_activity = time.monotonic()
        self.uplink.put_control(payload)

    def audio_stream_end(self) -> None:
        self.push_control(wire.AUDIO_STREAM_END)
        self.user_turn_ended()

    def user_turn_ended(self) -> None:
        """The client ended its turn explicitly (text, audioStreamEnd, activityEnd,
        clientContent with turnComplete): a reply is due (a goAway handover waits for it)
        and the clock for time to first audio starts."""
        now = self.last_activity = time.monotonic()
        self.link.planner.user_turn_ended()
        self.inbound.clock.turn_ended(now)

    def client_content(self, body: dict[str, Any]) -> None:
        """A clientContent for the model as it is (the adapter translated it): recorded, sent."""
        for text in wire_client.user_texts(body):
            self.recorder.user_text(text)
        self.push_control(wire.dumps({"clientContent": body}))
        if body.get("turnComplete"):
            self.user_turn_ended()

    def context_update(self, body: dict[str, Any]) -> None:
        """contextUpdate under the same policy as setup (setup.py `context_update`)."""
        update, client_functions = policy.context_update(
            body,
            base_instruction=settings.PASTRA_SYSTEM_INSTRUCTION,
            server=server_tools(self.spec.model, self.tools.extra.values()),
            model=self.spec.model,
        )
        if client_functions is not None:
            self.tools.client_functions = client_functions
        self.push_control(wire.dumps({"contextUpdate": update}))

    def tool_response(self, responses: Any) -> None:
        """A client's answers to client-declared function calls (tool_calls.py decides which
        go upstream)."""
        self.last_activity = time.monotonic()
        self.tools.answer_client(responses)
