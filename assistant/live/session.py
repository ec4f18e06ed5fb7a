"""LiveSession: the bridge core between one client adapter and one upstream Gemini session.

Owns every task it starts (reader with reconnects, uplink writer, downlink writer,
housekeeper, recorder, one task per server tool call) and cancels and awaits them on
close. Adapter-agnostic: adapters feed client input through the `push_*`/`text`/
`tool_response` methods (sync, non-blocking) and receive typed upstream events through
the ClientSink they implement. No database or channel-layer work per message: the database
is touched at start, once per turn (recorder), every RENEW_SECONDS (lease) and at close.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from assistant import control, metrics
from assistant.live import handles, leases
from assistant.live import protocol as p
from assistant.live.buffers import Downlink, Uplink
from assistant.live.errors import EndKind, SessionEnd
from assistant.live.limits import Limiter
from assistant.live.recorder import Recorder, TurnSummary
from assistant.live.upstream import Upstream, UpstreamClosed
from pastra_site import logs

logger = logging.getLogger(__name__)

try:  # the tool registry is optional: without it the session has no server functions
    from assistant.tools import registry as tool_registry
except ImportError:  # pragma: no cover
    tool_registry = None

SUPERSEDE_EVENT = "live.superseded"  # handled by the consumers' `live_superseded`
SUPERSEDE_WAIT_SECONDS = 5.0
STALL_SECONDS = 10.0  # a single send to the client pending this long ends the session
HANDOVER_MARGIN = 2.0  # hand over at goAway's timeLeft minus this, at the latest
HANDOVER_SHARE = 0.75  # … or at this share of a short timeLeft (< 8 s), whichever is later
HANDLE_WAIT_SECONDS = 1.0  # after turnComplete, wait this long for its resumption update
STALE_TURN_END = 2.0  # an explicit end of turn this old with no reply is forgotten
STABLE_SECONDS = 10.0  # an upstream connection that lived this long is not "flapping"
MAX_FLAPS = 4
START_DELAYS = (0.0, 0.25, 0.5, 1.0)
RECONNECT_DELAYS = (0.25, 0.5, 1.0, 2.0)


class ClientSink(Protocol):
    """What an adapter implements. All but `started` are sync and must not block."""

    async def started(self, session: LiveSession) -> None: ...

    def ready(self, session: LiveSession) -> None: ...

    def state(self, state: str) -> None: ...

    def server_message(self, view: p.ServerView) -> None: ...

    def tool_activity(self, **event: Any) -> None: ...

    def turn_finished(self, summary: TurnSummary) -> None: ...


@dataclass
class SessionSpec:
    user_id: int
    client_kind: str  # Conversation.ClientKind value
    setup: p.ClientSetup
    model: str  # resolved and allowed
    voice: str = ""
    conversation_id: Any = None  # resume this conversation
    api_version: str = "v1beta"
    stats: dict = field(default_factory=dict)


class _Call:
    __slots__ = ("batch", "executor", "generation", "id", "name", "started")

    def __init__(self, call_id: str, name: str, executor: str, generation: int, batch=None):
        self.id = call_id
        self.name = name
        self.executor = executor
        self.generation = generation
        self.started = time.monotonic()
        self.batch = batch


class _ToolBatch:
    """The server-executed calls of one toolCall: answered upstream in one toolResponse."""

    __slots__ = ("generation", "pending", "responses")

    def __init__(self, generation: int, ids: set[str]) -> None:
        self.generation = generation
        self.pending = ids
        self.responses: list[dict] = []


class LiveSession:
    """One live conversation as a client sees it: survives upstream reconnects."""

    def __init__(self, spec: SessionSpec, sink: ClientSink, downlink: Downlink) -> None:
        self.spec = spec
        self.sink = sink
        self.downlink = downlink
        self.uplink = Uplink()
        self.limiter = Limiter()
        self.recorder = Recorder(conversation_id=None)
        self.conversation_id = None
        self.lease_id = None
        self.client_handle = ""  # Pastra's signed handle (Gemini path)
        self.emulate_text = spec.setup.text_only and p.audio_only(spec.model)
        server_tools = tool_registry.gemini_tools() if tool_registry else []
        self.tools, self.client_functions = p.merge_tools(
            server_tools, spec.setup.body.get("tools") or []
        )
        self.server_functions = p.function_names(server_tools)
        self._upstream: Upstream | None = None
        self._upstream_handle: str | None = None
        self._generation = 0
        self._connected_at = 0.0
        self._flaps = 0
        self._ready = asyncio.Event()
        self._done: asyncio.Future[SessionEnd] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task] = set()
        self._keep: set[asyncio.Task] = set()  # recorder and downlink: stopped last
        self._tool_tasks: dict[str, asyncio.Task] = {}
        self._calls: dict[str, _Call] = {}
        self._model_active = False
        self._awaiting_reply = False  # the user ended a turn; its reply has not completed
        self._handle_fresh = True  # the latest handle is newer than the last turnComplete
        self._turn_ended_at = 0.0
        self._reply_clock = 0.0  # end of the user's turn, for time to first audio
        self._reply_clock_explicit = False
        self._goaway_seen = False
        self._goaway_deadline: float | None = None
        self._handover_now = False
        self._hk_wake = asyncio.Event()
        self._last_activity = time.monotonic()
        self._quota_deadline = float("inf")
        self._idle_seconds = float(settings.PASTRA_SESSION_IDLE_SECONDS)
        self._begin_task: asyncio.Task | None = None
        self._close_task: asyncio.Task | None = None
        self._started_at = time.monotonic()
        self.audio_in = self.audio_out = 0
        self.bytes_in = 0  # tallied by the adapter, added to the metric in batches
        self.reconnects = 0
        self.resumed = False

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
            self._begin_task = asyncio.ensure_future(self._begin())
            try:
                await asyncio.shield(self._begin_task)
            except SessionEnd as end:
                self.end(end)
            else:
                # Every task started from here on logs with the conversation id.
                logs.bind(conversation=self.conversation_id)
                logger.info(
                    "conv=%s user=%s live session %s (client=%s model=%s)",
                    self.conversation_id,
                    self.spec.user_id,
                    "resumed" if self.resumed else "started",
                    self.spec.client_kind,
                    self.spec.model,
                )
                await self.sink.started(self)
                self._keep = {self._spawn(self.recorder.run()), self._spawn(self.downlink.run())}
                self._spawn(self._writer())
                self._spawn(self._housekeeper())
                self._spawn(self._reader())
            await asyncio.shield(self._done)
        except Exception:
            logger.exception("user=%s live session failed to start", self.spec.user_id)
            metrics.ERRORS.labels("session").inc()
            self.end(SessionEnd(EndKind.INTERNAL))
        finally:
            await self.close()
        return self._done.result()

    async def close(self) -> None:
        """Idempotent, cancellation-safe cleanup: stop tasks, close upstream, flush the
        recorder, release the lease."""
        if self._close_task is None:
            self.end(SessionEnd(EndKind.CLIENT_GONE))
            self._close_task = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._close_task)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro) -> None:
        try:
            await coro
        except SessionEnd as end:
            self.end(end)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("conv=%s live session task failed", self.conversation_id)
            metrics.ERRORS.labels("session").inc()
            self.end(SessionEnd(EndKind.INTERNAL))

    async def _begin(self) -> None:
        spec = self.spec
        deadline = time.monotonic() + SUPERSEDE_WAIT_SECONDS
        take_over = signalled = False
        while True:
            try:
                begin = await leases.asession_begin(
                    user_id=spec.user_id,
                    model=spec.model,
                    voice=spec.voice,
                    client_kind=spec.client_kind,
                    conversation_id=spec.conversation_id,
                    take_over=take_over,
                )
                break
            except leases.ConversationBusy:
                if not signalled:
                    signalled = True
                    await _group_send(
                        control.conversation_group(spec.conversation_id),
                        {"type": SUPERSEDE_EVENT},
                    )
                take_over = time.monotonic() >= deadline
                if not take_over:
                    await asyncio.sleep(0.2)
        self.conversation_id = begin.conversation_id
        self.lease_id = begin.lease_id
        self.recorder.conversation_id = begin.conversation_id
        self.recorder.turn = begin.next_turn
        self._upstream_handle = begin.upstream_handle or None
        self._quota_deadline = time.monotonic() + max(0.0, begin.remaining_seconds)
        self.resumed = begin.resumed
        if begin.resumed:
            self.client_handle = handles.issue(
                user_id=spec.user_id, conversation_id=begin.conversation_id
            )
        self.recorder.session_opened(
            "resumed" if begin.resumed else "started",
            client=spec.client_kind,
            model=spec.model,
        )
        metrics.LIVE_SESSIONS.labels(spec.client_kind).inc()

    async def _shutdown(self) -> None:
        end = self._done.result()
        current = asyncio.current_task()
        workers = [t for t in self._tasks if t is not current]
        keep = self._keep
        stopping = [t for t in workers if t not in keep] + list(self._tool_tasks.values())
        for task in stopping:
            task.cancel()
        await asyncio.gather(*stopping, return_exceptions=True)
        if self._upstream is not None:
            upstream, self._upstream = self._upstream, None
            try:
                async with asyncio.timeout(2.0):
                    await upstream.close(1000, "client session ended")
            except TimeoutError:
                pass
        if end.kind not in (EndKind.CLIENT_GONE, EndKind.SHUTDOWN):
            await self.downlink.drain(1.0)
        if self._begin_task is not None and not self._begin_task.done():
            try:
                async with asyncio.timeout(5.0):
                    await asyncio.wait({self._begin_task})
            except TimeoutError:
                logger.warning("user=%s session start still pending at close", self.spec.user_id)
        if self.lease_id is not None:
            await self._finish_records(end)
        for task in keep:
            task.cancel()
        await asyncio.gather(*keep, return_exceptions=True)
        self.downlink.closed = True
        self._flush_counters()

    def _flush_counters(self) -> None:
        """Byte counts go to Prometheus in batches (lease timer, close): the hot path does
        one `inc()` per message, on the message counters."""
        if self.bytes_in:
            metrics.BYTES_IN.inc(self.bytes_in)
            self.bytes_in = 0
        if bytes_out := self.downlink.take_bytes():
            metrics.BYTES_OUT.inc(bytes_out)

    async def _finish_records(self, end: SessionEnd) -> None:
        recorder = self.recorder
        # Calls still open when the session ends (their tasks were cancelled above, or the
        # client never answered): every recorded tool_call gets its tool_result.
        calls, self._calls = self._calls, {}
        for call in calls.values():
            self._record_cancelled(call, "session ended")
        if not end.clean:
            recorder.error(end.message, kind=str(end.kind), code=end.upstream_code)
        recorder.session_event("ended", reason=str(end.kind))
        try:
            await recorder.finish()
        except Exception:
            logger.exception("conv=%s final recording failed", self.conversation_id)
            metrics.ERRORS.labels("recording").inc()
        try:
            await leases.asession_finish(
                lease_id=self.lease_id,
                conversation_id=self.conversation_id,
                reason=end.message,
                failed=not end.clean,
            )
        except Exception:
            logger.exception("conv=%s releasing the lease failed", self.conversation_id)
            metrics.ERRORS.labels("lease").inc()
        metrics.LIVE_SESSIONS.labels(self.spec.client_kind).dec()
        logger.info(
            "conv=%s user=%s live session ended: %s after %.1fs (%d reconnects, %d/%d audio "
            "in/out, %d/%d audio dropped up/down)",
            self.conversation_id,
            self.spec.user_id,
            end.kind,
            time.monotonic() - self._started_at,
            self.reconnects,
            self.audio_in,
            self.audio_out,
            self.uplink.dropped_audio,
            self.downlink.dropped_audio,
        )

    # --- client input (sync; adapters call these from their receive) -------------------

    def push_pcm(self, pcm: bytes) -> None:
        """Raw PCM16 16 kHz from the web UI: base64-encoded once, here."""
        self.limiter.check_audio(len(pcm))
        self._last_activity = time.monotonic()
        self.audio_in += 1
        metrics.AUDIO_IN.inc()
        self.uplink.put_audio(p.audio_message(p.b64encode(pcm)), len(pcm) / 32.0)

    def push_media(self, media: p.Media) -> None:
        """Audio or video from a Gemini client: its base64 is passed through untouched."""
        size = media.size
        self._last_activity = time.monotonic()
        if media.kind is p.AUDIO:
            self.limiter.check_audio(size)
            self.audio_in += 1
            metrics.AUDIO_IN.inc()
            payload = p.audio_message(media.data, media.mime)
            self.uplink.put_audio(payload, p.audio_ms(size, media.mime))
        else:
            self.limiter.check_video(size)
            metrics.VIDEO_IN.inc()
            self.uplink.put_video(p.video_message(media.data, media.mime))

    def push_video(self, mime: str, data: str) -> None:
        self.push_media(p.Media(p.VIDEO, mime, data))

    def text(self, text: str) -> None:
        """User text (typed): recorded, sent as realtimeInput.text."""
        self.user_turn_ended()
        self.recorder.user_text(text)
        self.uplink.put_control(p.text_message(text))

    def push_control(self, payload: bytes) -> None:
        self._last_activity = time.monotonic()
        self.uplink.put_control(payload)

    def audio_stream_end(self) -> None:
        self.push_control(p.AUDIO_STREAM_END)
        self.user_turn_ended()

    def user_turn_ended(self) -> None:
        """The client ended its turn explicitly (text, audioStreamEnd, activityEnd,
        clientContent with turnComplete): a reply is due (a goAway handover waits for it)
        and the clock for time to first audio starts."""
        now = self._last_activity = time.monotonic()
        self._awaiting_reply = True
        self._reply_clock = now
        self._reply_clock_explicit = True

    def client_content(self, body: dict[str, Any]) -> None:
        """A (normalised) clientContent from a Gemini client, translated for the model."""
        action, value = p.translate_client_content(body, model=self.spec.model)
        if action == "drop":
            return
        if action == "audioStreamEnd":
            self.audio_stream_end()
        elif action == "text":
            self.text(value)
        else:
            for text in p.user_texts(value):
                self.recorder.user_text(text)
            self.push_control(p.dumps({"clientContent": value}))
            if value.get("turnComplete"):
                self.user_turn_ended()

    def context_update(self, body: dict[str, Any]) -> None:
        """contextUpdate under the same policy as setup: base instruction first, server
        tools kept."""
        update = dict(body)
        if "systemInstruction" in update:
            update["systemInstruction"] = p.merge_instruction(
                settings.PASTRA_SYSTEM_INSTRUCTION, update["systemInstruction"]
            ) or {"parts": []}
        if isinstance(update.get("tools"), dict):
            server_tools = tool_registry.gemini_tools() if tool_registry else []
            merged, names = p.merge_tools(server_tools, update["tools"].get("tools") or [])
            self.client_functions = names
            update["tools"] = {"tools": merged}
        self.push_control(p.dumps({"contextUpdate": update}))

    def tool_response(self, responses: Any) -> None:
        """A client's answers to client-declared function calls. Answers to unknown ids, to
        server functions, or to calls of an earlier upstream connection are recorded (when
        known) but not sent: Gemini would close the session over them."""
        if not isinstance(responses, list):
            raise p.invalid()
        self._last_activity = time.monotonic()
        keep = []
        now = time.monotonic()
        for response in responses:
            if not isinstance(response, dict) or not isinstance(response.get("id"), str):
                raise p.invalid()
            call = self._calls.get(response["id"])
            if call is None or call.executor != "client":
                logger.info("conv=%s dropped a response to an unknown call", self.conversation_id)
                continue
            del self._calls[call.id]
            body = response.get("response")
            self.recorder.tool_result(
                call_id=call.id,
                name=call.name,
                response=body,
                ok=not (isinstance(body, dict) and "error" in body),
                duration_ms=round((now - call.started) * 1000),
            )
            if call.generation != self._generation:
                logger.info(
                    "conv=%s result for %s belongs to an earlier upstream connection: not sent",
                    self.conversation_id,
                    call.name,
                )
                continue
            keep.append({**response, "name": response.get("name") or call.name})
        if keep:
            self.uplink.put_control(
                p.dumps({"toolResponse": {"functionResponses": keep}}),
                call_generation=self._generation,
            )

    # --- upstream connection ------------------------------------------------------------

    def _setup(self, handle: str | None) -> dict:
        return p.build_setup(
            self.spec.setup,
            model=self.spec.model,
            base_instruction=settings.PASTRA_SYSTEM_INSTRUCTION,
            tools=self.tools,
            handle=handle,
            emulate_text=self.emulate_text,
        )

    async def _connect(self, *, reason: str) -> None:
        """Open an upstream session, resuming with the latest handle; backoff and jitter
        between attempts. Raises SessionEnd when Gemini rejects us or retries run out."""
        delays = RECONNECT_DELAYS if reason == "abnormal_close" else START_DELAYS
        last: UpstreamClosed | None = None
        attempt = 0
        while attempt < len(delays):
            delay = delays[attempt]
            attempt += 1
            if delay:
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            handle = self._upstream_handle
            try:
                upstream = await Upstream.open(self._setup(handle))
            except UpstreamClosed as closed:
                last = closed
                metrics.ERRORS.labels("upstream_connect").inc()
                logger.warning(
                    "conv=%s upstream open failed (%s, attempt %d): %s %s",
                    self.conversation_id,
                    reason,
                    attempt,
                    closed.code,
                    closed.reason,
                )
                if closed.rejected:
                    if not handle:
                        raise _rejected(closed) from None
                    # The handle is stale or refused: go on with a fresh upstream session.
                    self._upstream_handle = None
                    self.recorder.session_event(
                        "resume_failed", code=closed.code, reason=closed.reason[:120]
                    )
                    attempt -= 1
                continue
            self._upstream = upstream
            self._generation += 1
            self._connected_at = time.monotonic()
            self.uplink.set_offline(False)
            self._ready.set()
            if reason != "start":
                self.reconnects += 1
                self.recorder.session_event("reconnected", reason=reason, resumed=bool(handle))
                metrics.UPSTREAM_RECONNECTS.labels(reason, "ok").inc()
                logger.info(
                    "conv=%s upstream reconnected (%s, resumed=%s)",
                    self.conversation_id,
                    reason,
                    bool(handle),
                )
            return
        if reason != "start":
            metrics.UPSTREAM_RECONNECTS.labels(reason, "failed").inc()
        detail = f" (last: {last.code} {last.reason})" if last else ""
        logger.warning("conv=%s upstream unavailable%s", self.conversation_id, detail)
        raise SessionEnd(EndKind.UPSTREAM_UNAVAILABLE)

    def _go_offline(self) -> None:
        self._ready.clear()
        self._upstream = None
        self.uplink.set_offline(True)
        self._handover_now = False
        self._goaway_seen = False
        self._goaway_deadline = None
        self._handle_fresh = True  # the next connection starts from the latest handle
        if self._model_active:  # the reply in progress is lost with the connection
            self._model_active = False
            self.recorder.session_event("turn_cut")
            self.sink.turn_finished(self.recorder.end_turn())

    async def _reader(self) -> None:
        await self._connect(reason="start")
        self.sink.ready(self)
        while True:
            upstream = self._upstream
            assert upstream is not None
            closed: UpstreamClosed | None = None
            try:
                while not self._handover_now:
                    self._on_upstream(await upstream.recv())
            except UpstreamClosed as exc:
                closed = exc
            handover = closed is None or self._goaway_seen
            lived = time.monotonic() - self._connected_at
            self._go_offline()
            if closed is None:
                await upstream.close(1000, "handover")
            if handover:
                reason = "go_away"
                logger.info("conv=%s upstream handover after goAway", self.conversation_id)
            else:
                assert closed is not None
                if closed.rejected:
                    raise _rejected(closed)
                reason = "abnormal_close"
                self._flaps = 0 if lived >= STABLE_SECONDS else self._flaps + 1
                logger.warning(
                    "conv=%s upstream closed %s %s; reconnecting",
                    self.conversation_id,
                    closed.code,
                    closed.reason,
                )
                if self._flaps > MAX_FLAPS:
                    raise SessionEnd(EndKind.UPSTREAM_UNAVAILABLE)
            self.sink.state("reconnecting")
            await self._connect(reason=reason)
            self.sink.state("ready")

    async def _writer(self) -> None:
        uplink = self.uplink
        while True:
            if not self._ready.is_set():
                await self._ready.wait()
            item = await uplink.get()
            upstream = self._upstream
            if upstream is None:
                uplink.push_front(item)
                continue
            if item.call_generation >= 0 and item.call_generation != self._generation:
                logger.info(
                    "conv=%s tool results of an earlier upstream connection not sent",
                    self.conversation_id,
                )
                continue
            try:
                await upstream.send(item.payload)
            except UpstreamClosed:
                uplink.push_front(item)
                if self._upstream is upstream:
                    self._ready.clear()  # the reader sees the close too and reconnects

    # --- upstream messages ----------------------------------------------------------------

    def _on_upstream(self, raw: bytes) -> None:
        try:
            view = p.parse_server(raw)
        except ValueError:
            logger.warning("conv=%s unreadable upstream message ignored", self.conversation_id)
            metrics.ERRORS.labels("upstream_message").inc()
            return
        self._last_activity = time.monotonic()
        recorder = self.recorder
        if view.go_away is not None:
            self._on_go_away(view.go_away)
            return
        if view.setup_complete:
            return
        if view.resumption:
            self._upstream_handle = view.resumption
            self._handle_fresh = True
            recorder.set_handle(view.resumption)
            self.client_handle = handles.issue(
                user_id=self.spec.user_id, conversation_id=self.conversation_id
            )
        if view.content is not None:
            if view.audio:
                self.audio_out += len(view.audio)
                self._model_active = True
                if self._reply_clock and not self.emulate_text:
                    # The downlink observes time to first audio when this audio goes out.
                    self.downlink.first_audio_from = self._reply_clock
                    self._reply_clock = 0.0
            if view.input_text:
                recorder.input_fragment(view.input_text)
                now = self._last_activity
                if not self._model_active and (
                    not self._reply_clock_explicit or now - self._reply_clock > STALE_TURN_END
                ):
                    # Voice-activity turns have no explicit end: the latest input
                    # transcription before the reply approximates it.
                    self._reply_clock = now
                    self._reply_clock_explicit = False
            if view.output_text:
                self._model_active = True
                recorder.output_fragment(view.output_text)
            for text in view.texts:
                self._model_active = True
                recorder.model_text(text)
            for kind, first, second in view.code:
                recorder.code(kind, first, second)
            if view.grounding is not None:
                recorder.grounding(p.grounding_summary(view.grounding))
            if view.interrupted:
                recorder.interruption()
                self.downlink.clear_audio()
        if view.calls:
            self._model_active = True
            self._on_tool_call(view)
        if view.cancelled:
            self._on_cancel(view)
        if view.usage is not None:
            recorder.usage(*p.usage_counts(view.usage))
        self.sink.server_message(view)
        if view.turn_complete:
            self._model_active = self._awaiting_reply = False
            self._handle_fresh = False  # its resumption update follows
            self._turn_ended_at = self._last_activity
            self._reply_clock = 0.0
            self._reply_clock_explicit = False
            self._flaps = 0
            self.sink.turn_finished(recorder.end_turn())
        if self._goaway_seen:
            self._plan_handover()

    def _can_hand_over(self) -> bool:
        return (
            not self._model_active
            and not self._awaiting_reply
            and not any(call.generation == self._generation for call in self._calls.values())
        )

    def _plan_handover(self) -> None:
        """After goAway: hand over at a turn boundary (no reply due, no pending call) once
        the resumption update that follows the boundary has arrived, so the new upstream
        resumes with the turn in its context. Without that update, hand over at most
        HANDLE_WAIT_SECONDS after turnComplete; the goAway deadline bounds everything."""
        if self._handover_now or not self._can_hand_over():
            return
        if self._handle_fresh:
            self._handover_now = True
            return
        wait_until = self._turn_ended_at + HANDLE_WAIT_SECONDS
        if self._goaway_deadline is None or wait_until < self._goaway_deadline:
            self._goaway_deadline = wait_until
            self._hk_wake.set()

    def _on_go_away(self, seconds: float) -> None:
        logger.warning("conv=%s upstream goAway (timeLeft %.1fs)", self.conversation_id, seconds)
        self.recorder.session_event("go_away", time_left=seconds)
        self._goaway_seen = True
        margin = min(HANDOVER_MARGIN, seconds * (1 - HANDOVER_SHARE))
        self._goaway_deadline = time.monotonic() + max(0.0, seconds - margin)
        self._plan_handover()
        if not self._handover_now:
            self._hk_wake.set()

    def _on_tool_call(self, view: p.ServerView) -> None:
        generation = self._generation
        server: list[tuple[str, str, Any]] = []
        for call in view.calls:
            call_id, name = str(call.get("id") or ""), str(call.get("name") or "")
            args = call.get("args") or {}
            if call_id in self._calls:
                # Exactly one functionResponse per id: a repeated id while its call is
                # pending would start a second task (and a second response) for it.
                logger.warning("conv=%s repeated call id %s ignored", self.conversation_id, call_id)
                continue
            # Only functions the client declared go to the client: a name nobody declared
            # (made up by the model, or a tool switched off since) is answered by the server
            # with an "unknown tool" error, or the model would wait for it forever.
            executor = "client" if name in self.client_functions else "server"
            self.recorder.tool_call(call_id=call_id, name=name, args=args, executor=executor)
            self._calls[call_id] = _Call(call_id, name, executor, generation)
            if executor == "server":
                server.append((call_id, name, args))
            else:
                view.client_calls.append(call)
        if not server:
            return
        batch = _ToolBatch(generation, {call_id for call_id, _, _ in server})
        for call_id, name, args in server:
            self._calls[call_id].batch = batch
            self.sink.tool_activity(
                phase="started", id=call_id, name=name, executor="server", args=args
            )
            # Guarded like every session task: a crash in the bookkeeping is logged, not lost.
            task = asyncio.create_task(self._guard(self._run_tool(call_id, name, args, batch)))
            self._tool_tasks[call_id] = task

    async def _run_tool(self, call_id: str, name: str, args: Any, batch: _ToolBatch) -> None:
        try:
            result = await tool_registry.run(call_id=call_id, name=name, args=args)
        finally:
            self._tool_tasks.pop(call_id, None)
        metrics.TOOL_CALLS.labels(name, "ok" if result.ok else "error").inc()
        metrics.TOOL_SECONDS.labels(name).observe(result.duration_ms / 1000)
        self.recorder.tool_result(
            call_id=call_id,
            name=name,
            response=result.response,
            ok=result.ok,
            duration_ms=result.duration_ms,
        )
        self.sink.tool_activity(
            phase="finished",
            id=call_id,
            name=name,
            executor="server",
            ok=result.ok,
            duration_ms=result.duration_ms,
            summary=result.summary(),
        )
        self._calls.pop(call_id, None)
        batch.responses.append({"id": call_id, "name": name, "response": result.response})
        batch.pending.discard(call_id)
        self._answer_batch(batch)

    def _answer_batch(self, batch: _ToolBatch) -> None:
        if batch.pending or not batch.responses:
            return
        responses, batch.responses = batch.responses, []
        if batch.generation != self._generation:
            logger.info(
                "conv=%s tool results of an earlier upstream connection not sent",
                self.conversation_id,
            )
            return
        self.uplink.put_control(
            p.dumps({"toolResponse": {"functionResponses": responses}}),
            call_generation=batch.generation,
        )

    def _on_cancel(self, view: p.ServerView) -> None:
        """toolCallCancellation (Gemini sends it on barge-in: speech, text, clientContent).
        A server call's task is cancelled, so no functionResponse is sent for it; the rest
        of its batch is answered without it. Calls already answered are unknown here by now
        and are ignored (a response still queued in the uplink goes out; Gemini ignores a
        late response to a cancelled call)."""
        for call_id in view.cancelled:
            call = self._calls.pop(call_id, None)
            if call is None:
                continue
            duration_ms = self._record_cancelled(call)
            if call.executor == "client":
                view.client_cancelled.append(call_id)
                continue
            if task := self._tool_tasks.pop(call_id, None):
                task.cancel()
            self.sink.tool_activity(
                phase="cancelled",
                id=call_id,
                name=call.name,
                executor="server",
                duration_ms=duration_ms,
            )
            if call.batch is not None:
                call.batch.pending.discard(call_id)
                self._answer_batch(call.batch)

    def _record_cancelled(self, call: _Call, reason: str = "") -> int:
        """Record a call that will never have a result: `tool_result` with ok False and
        `{"error": "cancelled"}` (plus `reason` when the session, not Gemini, ended it)."""
        duration_ms = round((time.monotonic() - call.started) * 1000)
        response = {"error": "cancelled", "reason": reason} if reason else {"error": "cancelled"}
        self.recorder.tool_result(
            call_id=call.id, name=call.name, response=response, ok=False, duration_ms=duration_ms
        )
        if call.executor == "server":
            metrics.TOOL_CALLS.labels(call.name, "cancelled").inc()
        return duration_ms

    # --- housekeeping ---------------------------------------------------------------------

    async def _housekeeper(self) -> None:
        renew_at = time.monotonic() + leases.RENEW_SECONDS
        while True:
            now = time.monotonic()
            if now >= self._quota_deadline:
                raise SessionEnd(EndKind.DAILY_LIMIT)
            if now - self._last_activity >= self._idle_seconds:
                raise SessionEnd(
                    EndKind.IDLE,
                    f"Session ended after {round(self._idle_seconds)} seconds without activity.",
                )
            if self.downlink.stalled_for(now) >= STALL_SECONDS:
                raise SessionEnd(EndKind.SLOW_CLIENT)
            deadline = self._goaway_deadline
            if deadline is not None and now >= deadline and not self._handover_now:
                self._goaway_deadline = None
                if (upstream := self._upstream) is not None:
                    logger.info("conv=%s goAway deadline: handing over now", self.conversation_id)
                    await upstream.close(1000, "handover")
            if now >= renew_at:
                renew_at = now + leases.RENEW_SECONDS
                await self._renew()
            wake = min(
                renew_at,
                self._quota_deadline,
                self._last_activity + self._idle_seconds,
                self._goaway_deadline or float("inf"),
                now + STALL_SECONDS / 2,
            )
            try:
                async with asyncio.timeout(max(0.01, wake - time.monotonic())):
                    await self._hk_wake.wait()
            except TimeoutError:
                pass
            self._hk_wake.clear()

    async def _renew(self) -> None:
        self._flush_counters()
        self.recorder.account_seconds()
        await self.recorder.wait_written(5.0)
        remaining = await leases.alease_renew(lease_id=self.lease_id, user_id=self.spec.user_id)
        self._quota_deadline = time.monotonic() + max(0.0, remaining)


def _rejected(closed: UpstreamClosed) -> SessionEnd:
    return SessionEnd(
        EndKind.UPSTREAM_REJECTED,
        f"The assistant rejected the session: {closed.reason or closed.code}",
        upstream_code=closed.code,
        upstream_reason=closed.reason,
    )


async def _group_send(group: str, message: dict) -> None:
    try:
        await get_channel_layer().group_send(group, message)
    except Exception:
        logger.warning("channel layer unavailable: %s not signalled", group, exc_info=True)
        metrics.ERRORS.labels("channel_layer").inc()
