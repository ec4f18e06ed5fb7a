"""One connection: auth, setup, turns, VAD, tools, barge-in and lifetime (the fake model).

Three tasks per connection, all owned by `Session.run`: the reader (client messages, never
blocks on model output), the responder (runs queued model turns one at a time, so every
turn's messages go out in order) and the lifetime timer. A turn runs in its own task so
that barge-in is a `cancel()`; the responder then sends `interrupted` and `turnComplete`.
Any task may decide the connection's end by calling `_finish(code, reason)`; `run` then
cancels everything and sends the close frame, so nothing is sent after that decision.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from websockets.exceptions import ConnectionClosed

from . import protocol as p
from .models import CODE_EXECUTION, FUNCTIONS, GOOGLE_SEARCH, URL_CONTEXT, ModelSpec, model_lookup
from .resumption import SessionState
from .scripts import (
    LONG_SECONDS,
    Command,
    ToolSet,
    clean_expression,
    evaluate,
    grounding_metadata,
    parse_command,
)
from .speech import BYTES_PER_SECOND
from .vad import DEFAULT_PREFIX_MS, DEFAULT_SILENCE_MS, PREFIX_MS, SILENCE_MS, START, EnergyVAD

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from .server import EmulatorServer

logger = logging.getLogger(__name__)

OUTPUT_MIME = "audio/pcm;rate=24000"
AUDIO_TOKENS_PER_SECOND = 25
TOKENS_PER_FRAME = 258
_RATE = re.compile(r"rate=(\d+)")
_SCHEDULING = ("SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT")
_BEHAVIORS = (None, "UNSPECIFIED", "BLOCKING", "NON_BLOCKING")
_CANCELLED_MEMORY = 256


class Counters:
    """The integers GET /stats reports, per connection and in total."""

    __slots__ = ("audio_bytes", "closes", "setups", "tool_calls", "turns", "video_frames")
    NAMES = ("setups", "turns", "audio_bytes", "video_frames", "tool_calls", "closes")

    def __init__(self) -> None:
        for name in self.NAMES:
            setattr(self, name, 0)

    def add(self, other: Counters) -> None:
        for name in self.NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.NAMES}


@dataclass(eq=False)
class Job:
    """A model turn waiting to run: what to do and what the prompt cost."""

    command: Command
    history_before: int = 0
    prompt: dict[str, int] = field(default_factory=dict)
    transcript: str | None = None


class Turn:
    """A running model turn: what went out so far, which calls it issued."""

    __slots__ = ("audio_started", "calls", "completed", "job", "out_audio", "out_text", "spoken")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.calls: list[str] = []
        self.spoken: list[str] = []
        self.out_audio = 0.0
        self.out_text = 0
        self.audio_started: float | None = None  # loop time of the first audio chunk
        self.completed = False


class Session:
    """The emulated model behind one WebSocket connection."""

    def __init__(self, server: EmulatorServer, ws: ServerConnection, version: str) -> None:
        self.server = server
        self.config = server.config
        self.ws = ws
        self.version = version
        self.id = server.next_connection_id()
        self.counters = Counters()
        self.model: ModelSpec | None = None
        self.state: SessionState | None = None
        self.ready = False  # past setup: counts against max_sessions
        self._text_frames = self.config.frames == "text"
        self._done: asyncio.Future[tuple[int, str] | None] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._jobs: deque[Job] = deque()
        self._wake = asyncio.Event()
        self._turn: Turn | None = None
        self._turn_task: asyncio.Task | None = None
        self._goaway_task: asyncio.Task | None = None
        self._blocking: dict[str, tuple[asyncio.Future, str]] = {}
        self._nonblocking: dict[str, str] = {}
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        self._prefill: str | None = None
        self._frames_pending = 0
        self._audio_pending = 0.0
        # Set by setup.
        self.modality = "AUDIO"
        self.tools = ToolSet()
        self.system_instruction: Any = None
        self._input_transcription = False
        self._output_transcription = False
        self._resumable = False
        self._history_config = False
        self._manual_vad = False
        self._vad: EnergyVAD | None = None
        self._interrupts = True
        self._activity = False
        self._activity_seconds = 0.0

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self._done is not None and self._done.done()

    async def run(self) -> None:
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
        self._done = asyncio.get_running_loop().create_future()
        self._spawn(self._reader())
        self._spawn(self._responder())
        if self.config.connection_seconds > 0:
            self._spawn(self._lifetime())
        try:
            outcome = await asyncio.shield(self._done)
        finally:
            await self._cancel_tasks()
        if outcome is not None:
            await self._close(*outcome)

    def stats(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model.name if self.model else None,
            **self.counters.as_dict(),
        }

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
        tasks = [*self._tasks, *([self._turn_task] if self._turn_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for future, _ in self._blocking.values():
            future.cancel()
        self._blocking.clear()

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code, p.close_reason(reason))
        except Exception:  # the peer may already be gone
            logger.debug("emulator connection %s: close failed", self.id, exc_info=True)

    async def _send(self, message: dict[str, Any]) -> None:
        if self.closing:  # decided to close: nothing more goes out
            return
        await self.ws.send(p.dumps(message), text=self._text_frames)

    async def _send_content(self, content: dict[str, Any]) -> None:
        await self._send({"serverContent": content})

    async def _lifetime(self) -> None:
        total = self.config.connection_seconds
        notice = min(self.config.goaway_seconds, total)
        await asyncio.sleep(total - notice)
        await self._goaway(notice)

    async def _goaway(self, seconds: float) -> None:
        await self._send({"goAway": {"timeLeft": p.duration_text(seconds)}})
        await asyncio.sleep(seconds)
        self._finish(p.INTERNAL, p.REASON_DEADLINE)

    # --- handshake ---------------------------------------------------------------------

    def _authenticate(self) -> None:
        request = self.ws.request
        query = parse_qs(request.path.partition("?")[2]) if request else {}
        headers = request.headers if request else {}
        key = (
            (query.get("key") or [""])[0]
            or headers.get("x-goog-api-key", "")
            or (query.get("access_token") or [""])[0]
        )
        if not key:
            scheme, _, credential = headers.get("authorization", "").partition(" ")
            if scheme.lower() in ("token", "bearer"):
                key = credential.strip()
        if not key:
            raise p.ProtocolError(p.POLICY, p.REASON_NO_KEY)
        expected = self.config.api_key
        if expected and not hmac.compare_digest(key.encode(), expected.encode()):
            raise p.ProtocolError(p.INVALID_ARGUMENT, p.REASON_BAD_KEY)

    async def _setup(self) -> None:
        limit = self.config.connection_seconds or None
        async with asyncio.timeout(limit):
            raw = await self.ws.recv()
        # Like Google, the upgrade succeeds and the key is judged with the first message;
        # closing before it would make the SDK fail in send() instead of reporting the close.
        self._authenticate()
        kind, body = self._parse(raw)
        if kind != "setup":
            raise p.invalid_argument()
        model_name = body.get("model")
        if not isinstance(model_name, str) or not model_name:
            raise p.invalid_argument()
        spec = model_lookup(model_name)
        if spec is None:
            raise p.ProtocolError(p.POLICY, p.reason_model_not_found(model_name, self.version))
        self.model = spec
        self._setup_generation(body.get("generationConfig") or {}, spec)
        self._setup_proactivity(body.get("proactivity"), spec)
        self.tools = self._load_tools(body.get("tools") or [])
        self.system_instruction = body.get("systemInstruction")
        self._setup_realtime(body.get("realtimeInputConfig") or {})
        self._input_transcription = body.get("inputAudioTranscription") is not None
        self._output_transcription = body.get("outputAudioTranscription") is not None
        history_config = body.get("historyConfig") or {}
        self._history_config = bool(history_config.get("initialHistoryInClientContent"))
        resumption = body.get("sessionResumption")
        self._resumable = resumption is not None
        self.state = self._attach_state((resumption or {}).get("handle"), spec)
        limit = self.config.max_sessions
        if limit and self.server.active_sessions() >= limit:
            raise p.ProtocolError(p.INTERNAL, p.reason_resource_exhausted(self.server.trace_id()))
        self.state.owner = self
        self.ready = True
        self.counters.setups += 1
        await self._send({"setupComplete": {}})
        logger.info("emulator connection %s: setup for %s", self.id, spec.name)

    def _setup_generation(self, generation: dict[str, Any], spec: ModelSpec) -> None:
        modalities = generation.get("responseModalities") or ["AUDIO"]
        if not isinstance(modalities, list) or len(modalities) != 1:
            raise p.invalid_argument()
        modality = str(modalities[0]).upper()
        if modality not in ("AUDIO", "TEXT"):
            raise p.invalid_argument()
        if modality not in spec.modalities:
            raise p.ProtocolError(p.INVALID_ARGUMENT, p.REASON_NO_VOICES)
        self.modality = modality
        if generation.get("enableAffectiveDialog") and not spec.affective_dialog:
            raise p.invalid_argument()

    @staticmethod
    def _setup_proactivity(proactivity: Any, spec: ModelSpec) -> None:
        if proactivity is None:
            return
        if spec.proactivity == "unsupported":
            raise p.invalid_argument()
        if spec.proactivity == "always" and proactivity.get("proactiveAudio") is False:
            raise p.invalid_argument()

    def _setup_realtime(self, config: dict[str, Any]) -> None:
        detection = config.get("automaticActivityDetection") or {}
        self._manual_vad = bool(detection.get("disabled"))
        self._interrupts = config.get("activityHandling") != "NO_INTERRUPTION"
        if self._manual_vad:
            return
        prefix = _int_or(
            detection.get("prefixPaddingMs"),
            PREFIX_MS.get(detection.get("startOfSpeechSensitivity"), DEFAULT_PREFIX_MS),
        )
        silence = _int_or(
            detection.get("silenceDurationMs"),
            SILENCE_MS.get(detection.get("endOfSpeechSensitivity"), DEFAULT_SILENCE_MS),
        )
        self._vad = EnergyVAD(self.config.vad_threshold, prefix, silence)

    def _load_tools(self, tools: list[dict[str, Any]]) -> ToolSet:
        assert self.model is not None
        toolset = ToolSet()
        for tool in tools:
            for kind, value in tool.items():
                if value is None:
                    continue
                if kind not in self.model.tools:
                    raise p.ProtocolError(p.POLICY, p.REASON_NOT_SUPPORTED)
                if kind == FUNCTIONS:
                    for declaration in value:
                        name = declaration.get("name")
                        if not isinstance(name, str) or not name or name in toolset.functions:
                            raise p.invalid_argument()
                        if declaration.get("behavior") not in _BEHAVIORS:
                            raise p.invalid_argument()
                        toolset.functions[name] = declaration
                elif kind == GOOGLE_SEARCH:
                    toolset.google_search = True
                elif kind == CODE_EXECUTION:
                    toolset.code_execution = True
                elif kind == URL_CONTEXT:
                    toolset.url_context = True
        return toolset

    def _attach_state(self, handle: Any, spec: ModelSpec) -> SessionState:
        store = self.server.store
        if not handle:
            return store.new_session(spec.name)
        found = store.lookup(str(handle))
        if found is None:
            raise p.ProtocolError(p.POLICY, p.REASON_SESSION_NOT_FOUND)
        state, history = found
        if state.owner is not None:  # the old socket is still open
            raise p.ProtocolError(p.INTERNAL, p.REASON_INTERNAL)
        if state.model != spec.name:  # the model may not change on resumption
            raise p.invalid_argument()
        state.history = history
        state.ended_at = None
        return state

    def _parse(self, raw: str | bytes) -> tuple[str, dict[str, Any]]:
        try:
            message = p.loads(raw)
        except p.JSONDecodeError:
            raise p.ProtocolError(p.INVALID_ARGUMENT, p.REASON_BAD_JSON) from None
        return p.normalize_message(message)

    # --- reader ------------------------------------------------------------------------

    async def _reader(self) -> None:
        echo = self.config.mode == "echo"
        async for raw in self.ws:
            if self.closing:
                return
            if echo and await self._echo(raw):
                continue
            kind, body = self._parse(raw)
            if kind == "realtimeInput":
                self._on_realtime(body)
            elif kind == "clientContent":
                self._on_client_content(body)
            elif kind == "toolResponse":
                self._on_tool_response(body)
            elif kind == "contextUpdate":
                self._on_context_update(body)
            else:  # a second setup
                raise p.invalid_argument()
        self._finish()

    async def _echo(self, raw: str | bytes) -> bool:
        """Echo mode's hot path: one audio chunk in, the same base64 out, no VAD, no decode.
        Returns False for anything else, which then takes the normal path."""
        try:
            message = p.loads(raw)
        except p.JSONDecodeError:
            return False
        if type(message) is not dict or len(message) != 1:
            return False
        body = message.get("realtimeInput") or message.get("realtime_input")
        if type(body) is not dict or len(body) != 1:
            return False
        audio = body.get("audio")
        if type(audio) is not dict:
            return False
        data = audio.get("data")
        if type(data) is not str:
            return False
        mime = audio.get("mimeType") or audio.get("mime_type") or "audio/pcm;rate=16000"
        if "-" in data or "_" in data:
            data = data.translate(p.URLSAFE_TO_STANDARD)
        self.counters.audio_bytes += p.b64len(data)
        part = {"inlineData": {"mimeType": mime, "data": data}}
        await self.ws.send(
            p.dumps({"serverContent": {"modelTurn": {"parts": [part]}}}), text=self._text_frames
        )
        return True

    def _on_realtime(self, body: dict[str, Any]) -> None:
        assert self.model is not None
        chunks = body.get("mediaChunks")
        if chunks is not None:
            if not self.model.media_chunks:
                raise p.ProtocolError(p.INVALID_ARGUMENT, p.REASON_MEDIA_CHUNKS)
            if chunks:  # "all but the first will be ignored"
                mime = str(chunks[0].get("mimeType") or "")
                path = "realtime_input.media_chunks[0].data"
                if mime.startswith(("image/", "video/")):
                    self._on_video(chunks[0], path)
                else:
                    self._on_audio(chunks[0], path)
        if body.get("activityStart") is not None:
            self._activity_start()
        if body.get("audio") is not None:
            self._on_audio(body["audio"], "realtime_input.audio.data")
        if body.get("video") is not None:
            self._on_video(body["video"], "realtime_input.video.data")
        text = body.get("text")
        if text is not None:
            if not isinstance(text, str):
                raise p.invalid_argument()
            if text.strip():
                self._user_turn(text, interrupt=self._interrupts)
        if body.get("audioStreamEnd"):
            self._audio_stream_end()
        if body.get("activityEnd") is not None:
            self._activity_end()

    def _on_audio(self, blob: dict[str, Any], path: str) -> None:
        pcm = p.b64decode(blob.get("data"), path)
        self.counters.audio_bytes += len(pcm)
        rate = _sample_rate(blob.get("mimeType"))
        if len(pcm) % 2 or rate is None:
            raise p.ProtocolError(p.INVALID_ARGUMENT, p.REASON_BAD_AUDIO)
        seconds = len(pcm) / 2 / rate
        self._audio_pending += seconds
        if self._manual_vad:
            if not self._activity:  # audio outside activityStart/activityEnd
                raise p.invalid_argument()
            self._activity_seconds += seconds
            return
        assert self._vad is not None
        for event in self._vad.feed(pcm, rate):
            self._on_vad_event(event)

    def _on_vad_event(self, event: tuple) -> None:
        if event[0] == START:
            if self._interrupts:
                self._interrupt()
        else:
            self._audio_turn(event[1])

    def _on_video(self, blob: dict[str, Any], path: str) -> None:
        p.b64decode(blob.get("data"), path)
        self.counters.video_frames += 1
        self._frames_pending += 1

    def _audio_stream_end(self) -> None:
        if self._vad is not None:
            for event in self._vad.flush():
                self._on_vad_event(event)

    def _activity_start(self) -> None:
        if not self._manual_vad:
            raise p.invalid_argument()
        if self._activity:
            return
        self._activity = True
        self._activity_seconds = 0.0
        if self._interrupts:
            self._interrupt()

    def _activity_end(self) -> None:
        if not self._manual_vad:
            raise p.invalid_argument()
        if self._activity:
            self._activity = False
            self._audio_turn(self._activity_seconds)

    def _on_client_content(self, body: dict[str, Any]) -> None:
        assert self.model is not None
        assert self.state is not None
        if self.model.client_content_needs_history_config and not self._history_config:
            raise p.invalid_argument()
        turns = body.get("turns") or []
        complete = bool(body.get("turnComplete"))
        if turns or complete:  # "A message here will interrupt any current model generation"
            self._interrupt()
        history = self.state.history
        pending: str | None = None
        for content in turns:
            text = p.content_text(content)
            if content.get("role") == "model":
                history.append(("model", text))
                continue
            if pending is not None:
                history.append(("user", pending))
            pending = text
        if not complete:
            if pending is not None:
                history.append(("user", pending))
                self._prefill = pending
            return
        if pending is not None:
            self._user_turn(pending, interrupt=False)
        elif self._prefill is not None:
            self._user_turn(self._prefill, interrupt=False, record=False)
        else:
            self._user_turn("", interrupt=False)
        self._prefill = None

    def _on_tool_response(self, body: dict[str, Any]) -> None:
        for index, response in enumerate(body.get("functionResponses") or []):
            call_id = response.get("id")
            if not isinstance(call_id, str):
                raise p.invalid_argument()
            scheduling = response.get("scheduling")
            result = response.get("response")
            if scheduling is None and isinstance(result, dict):
                scheduling = result.get("scheduling")  # the 2025 guide's placement
            if scheduling is not None and scheduling not in _SCHEDULING:
                raise p.ProtocolError(
                    p.INVALID_ARGUMENT,
                    p.reason_invalid_value(
                        f"tool_response.function_responses[{index}].scheduling",
                        "type.googleapis.com/google.ai.generativelanguage.v1beta."
                        "FunctionResponse.Scheduling",
                        scheduling,
                    ),
                )
            if call_id in self._blocking:
                future, _ = self._blocking.pop(call_id)
                if not future.done():
                    future.set_result(response)
            elif call_id in self._nonblocking:
                self._nonblocking_result(call_id, response, scheduling)
            elif call_id not in self._cancelled:  # a call we never made
                raise p.invalid_argument()

    def _nonblocking_result(self, call_id: str, response: dict[str, Any], scheduling: Any) -> None:
        assert self.state is not None
        name = self._nonblocking[call_id]
        if not response.get("willContinue"):
            del self._nonblocking[call_id]
        if self._turn is not None and call_id in self._turn.calls:
            self._turn.calls.remove(call_id)  # answered: no longer cancellable
        text = _returned(name, response)
        self.state.history.append(("function", text))
        if scheduling == "SILENT":
            return
        job = Job(Command("say", text=text))
        if scheduling == "INTERRUPT":
            self._interrupt()
            self._jobs.appendleft(job)
        else:  # WHEN_IDLE, the default
            self._jobs.append(job)
        self._wake.set()

    def _on_context_update(self, body: dict[str, Any]) -> None:
        if body.get("systemInstruction") is not None:
            self.system_instruction = body["systemInstruction"]
        tools = body.get("tools")
        if tools is not None:
            self.tools = self._load_tools(tools.get("tools") or [])

    # --- turns -------------------------------------------------------------------------

    def _user_turn(self, text: str, *, interrupt: bool, record: bool = True) -> None:
        assert self.state is not None
        command = parse_command(text, self.tools)
        history_before = self.state.user_turns() - (0 if record else 1)
        if record:
            self.state.history.append(("user", text))
        if command.kind == "goaway":
            if self._goaway_task is None:
                self._goaway_task = self._spawn(self._goaway(1.0))
            return
        if command.kind == "close":
            self._finish(command.code, command.text)
            return
        if interrupt:
            self._interrupt()
        if command.kind == "plain":  # plain replies acknowledge video frames
            command = Command("say", text=self._with_frames(command.text))
        self._enqueue(Job(command, history_before, self._take_prompt(text)))

    def _audio_turn(self, seconds: float) -> None:
        assert self.state is not None
        transcript = f"(speech {seconds:.1f} s)"
        history_before = self.state.user_turns()
        self.state.history.append(("user", transcript))
        reply = self._with_frames(f"I heard {seconds:.1f} seconds of audio.")
        job = Job(Command("say", text=reply), history_before, self._take_prompt(""), transcript)
        self._enqueue(job)

    def _with_frames(self, text: str) -> str:
        frames = self._frames_pending
        if not frames:
            return text
        return f"{text} (I saw {frames} frame{'' if frames == 1 else 's'})"

    def _take_prompt(self, text: str) -> dict[str, int]:
        prompt = {
            "TEXT": math.ceil(len(text) / 4),
            "AUDIO": round(self._audio_pending * AUDIO_TOKENS_PER_SECOND),
            "VIDEO": self._frames_pending * TOKENS_PER_FRAME,
        }
        self._audio_pending = 0.0
        self._frames_pending = 0
        return {modality: count for modality, count in prompt.items() if count}

    def _enqueue(self, job: Job) -> None:
        self._jobs.append(job)
        self._wake.set()

    def _interrupt(self) -> None:
        """Barge-in: stop the running turn (the responder reports it)."""
        turn, task = self._turn, self._turn_task
        if turn is not None and task is not None and not turn.completed and not task.done():
            task.cancel()

    async def _responder(self) -> None:
        while True:
            if not self._jobs:
                self._wake.clear()
                await self._wake.wait()
                continue
            turn = Turn(self._jobs.popleft())
            task = asyncio.create_task(self._run_turn(turn))
            self._turn, self._turn_task = turn, task
            try:
                await asyncio.wait({task})
            finally:
                if not task.done():
                    task.cancel()
                self._turn = self._turn_task = None
            if task.cancelled():
                await self._end_interrupted(turn)
            elif task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _run_turn(self, turn: Turn) -> None:
        job = turn.job
        if job.transcript is not None and self._input_transcription:
            await self._send_content({"inputTranscription": {"text": job.transcript}})
        if self.config.reply_delay:
            await asyncio.sleep(self.config.reply_delay)
        command = job.command
        kind = command.kind
        if kind == "say":
            await self._say(turn, command.text)
        elif kind == "long":
            await self._say(turn, command.text, seconds=LONG_SECONDS)
        elif kind == "history":
            await self._say(turn, f"history: {job.history_before} user turns")
        elif kind == "call":
            await self._call(turn, command.name, command.args)
        elif kind == "compute":
            await self._compute(turn, command.text)
        elif kind == "search":
            await self._search(turn, command.text)
        await self._complete(turn)

    async def _say(self, turn: Turn, text: str, seconds: float = 0.0) -> None:
        if turn.spoken:
            text = " " + text
        if self.modality == "TEXT":
            for piece in _split_words(text, max(1, math.ceil(len(text.split()) / 4))):
                if not piece:
                    continue
                await self._send_content({"modelTurn": {"parts": [{"text": piece}]}})
                turn.spoken.append(piece)
                turn.out_text += len(piece)
                await self._pause(0.0)
            return
        pcm = await self.server.speech.render(text.strip(), seconds)
        step = max(2, BYTES_PER_SECOND * self.config.chunk_ms // 1000)
        chunks = [pcm[offset : offset + step] for offset in range(0, len(pcm), step)] or [pcm]
        deltas = _split_words(text, len(chunks))
        bundled = self.model is not None and self.model.bundled
        for chunk, delta in zip(chunks, deltas, strict=True):
            part = {"inlineData": {"mimeType": OUTPUT_MIME, "data": p.b64encode(chunk)}}
            caption = delta and self._output_transcription
            if bundled:
                content: dict[str, Any] = {"modelTurn": {"parts": [part]}}
                if caption:
                    content["outputTranscription"] = {"text": delta}
                await self._send_content(content)
            else:
                if caption:
                    await self._send_content({"outputTranscription": {"text": delta}})
                await self._send_content({"modelTurn": {"parts": [part]}})
            if turn.audio_started is None:
                turn.audio_started = asyncio.get_running_loop().time()
            turn.spoken.append(delta)
            seconds_sent = len(chunk) / BYTES_PER_SECOND
            turn.out_audio += seconds_sent
            await self._pause(seconds_sent)

    async def _pause(self, seconds: float) -> None:
        pace = self.config.pace
        await asyncio.sleep(seconds / pace if pace > 0 else 0)

    async def _parts(self, parts: list[dict[str, Any]]) -> None:
        """Non-audio model parts: bundled in one message (3.x) or one per message (2.5)."""
        if self.model is not None and self.model.bundled:
            await self._send_content({"modelTurn": {"parts": parts}})
        else:
            for part in parts:
                await self._send_content({"modelTurn": {"parts": [part]}})

    async def _call(self, turn: Turn, name: str, args: dict[str, Any]) -> None:
        assert self.state is not None
        call_id = self.server.function_call_id()
        blocking = self._is_blocking(name)
        turn.calls.append(call_id)
        future: asyncio.Future | None = None
        if blocking:
            future = asyncio.get_running_loop().create_future()
            self._blocking[call_id] = (future, name)
        else:
            self._nonblocking[call_id] = name
        self.counters.tool_calls += 1
        call = {"id": call_id, "name": name, "args": args}
        await self._send({"toolCall": {"functionCalls": [call]}})
        if self.config.tool_call_turn_complete:
            await self._send_content({"turnComplete": True})
        if future is None:
            await self._say(turn, f"Calling {name}.")
            return
        # Nothing more in this turn until the matching toolResponse (which pops the id);
        # on barge-in the id stays in _blocking so that _end_interrupted cancels it.
        response = await future
        turn.calls.remove(call_id)
        text = _returned(name, response)
        self.state.history.append(("function", text))
        await self._say(turn, text)

    def _is_blocking(self, name: str) -> bool:
        assert self.model is not None
        if self.model.function_calling == "sync-only":
            return True
        behavior = self.tools.functions[name].get("behavior")
        if behavior in ("BLOCKING", "NON_BLOCKING"):
            return behavior == "BLOCKING"
        return self.model.function_calling != "nonblocking-default"

    async def _compute(self, turn: Turn, expression: str) -> None:
        code = f"print({clean_expression(expression)})"
        try:
            value = evaluate(expression)
        except (ArithmeticError, ValueError) as error:
            outcome = "OUTCOME_FAILED"
            output = (
                "Traceback (most recent call last):\n"
                '  File "<string>", line 1, in <module>\n'
                f"{type(error).__name__}: {error}\n"
            )
            answer = f"The computation failed: {error}."
        else:
            outcome, output, answer = "OUTCOME_OK", f"{value!r}\n", f"The result is {value!r}."
        await self._parts(
            [
                {"executableCode": {"language": "PYTHON", "code": code}},
                {"codeExecutionResult": {"outcome": outcome, "output": output}},
            ]
        )
        await self._say(turn, answer)

    async def _search(self, turn: Turn, query: str) -> None:
        answer = f"Here is what I found about {query}."
        await self._say(turn, answer)
        await self._send_content({"groundingMetadata": grounding_metadata(query, answer)})

    async def _complete(self, turn: Turn) -> None:
        await self._send_content({"generationComplete": True})
        if self.config.playback_wait and turn.audio_started is not None:
            # Google holds turnComplete until the client has played the audio out; barge-in
            # in this window still interrupts (interrupted, then turnComplete).
            played = asyncio.get_running_loop().time() - turn.audio_started
            if turn.out_audio > played:
                await asyncio.sleep(turn.out_audio - played)
        turn.completed = True  # from here on, barge-in no longer interrupts this turn
        turn.calls.clear()  # NON_BLOCKING calls stay open beyond their turn
        await self._end_turn(turn)

    async def _end_interrupted(self, turn: Turn) -> None:
        await self._send_content({"interrupted": True})
        cancelled = []
        for call_id in turn.calls:
            if self._blocking.pop(call_id, None) or self._nonblocking.pop(call_id, None):
                cancelled.append(call_id)
                self._cancelled[call_id] = None
        while len(self._cancelled) > _CANCELLED_MEMORY:
            self._cancelled.popitem(last=False)
        if cancelled:
            await self._send({"toolCallCancellation": {"ids": cancelled}})
        await self._end_turn(turn)

    async def _end_turn(self, turn: Turn) -> None:
        assert self.state is not None
        self.state.history.append(("model", "".join(turn.spoken).strip()))
        self.counters.turns += 1
        await self._send(
            {"serverContent": {"turnComplete": True}, "usageMetadata": self._usage(turn)}
        )
        if self._resumable:
            handle = self.server.store.issue(self.state)
            await self._send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})

    def _usage(self, turn: Turn) -> dict[str, Any]:
        prompt = turn.job.prompt
        if self.modality == "AUDIO":
            response = round(turn.out_audio * AUDIO_TOKENS_PER_SECOND)
        else:
            response = math.ceil(turn.out_text / 4)
        prompt_total = sum(prompt.values())
        usage: dict[str, Any] = {"totalTokenCount": prompt_total + response}
        if prompt_total:
            usage["promptTokenCount"] = prompt_total
            usage["promptTokensDetails"] = [
                {"modality": modality, "tokenCount": count} for modality, count in prompt.items()
            ]
        if response:
            usage["responseTokenCount"] = response
            usage["responseTokensDetails"] = [{"modality": self.modality, "tokenCount": response}]
        return usage


def _int_or(value: Any, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise p.invalid_argument() from None


def _sample_rate(mime: Any) -> int | None:
    """Input sample rate from `audio/pcm;rate=N` (16 kHz when absent); None if unusable."""
    if not mime:
        return 16000
    match = _RATE.search(str(mime))
    rate = int(match.group(1)) if match else 16000
    return rate if 8000 <= rate <= 48000 else None


def _returned(name: str, response: dict[str, Any]) -> str:
    result = response.get("response")
    return f"{name} returned {p.compact_json({} if result is None else result)}"


def _split_words(text: str, pieces: int) -> list[str]:
    """Cut text at spaces into `pieces` deltas (some may be empty) that concatenate to it."""
    words = text.split(" ")
    buckets: list[list[str]] = [[] for _ in range(max(1, pieces))]
    for index, word in enumerate(words):
        buckets[index * len(buckets) // len(words)].append(word)
    out, started = [], False
    for bucket in buckets:
        if not bucket:
            out.append("")
            continue
        joined = " ".join(bucket)
        out.append(" " + joined if started else joined)
        started = True
    return out
