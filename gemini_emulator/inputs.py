"""Client input after setup: realtimeInput, clientContent, toolResponse, contextUpdate, VAD.

`Inputs.handle` never blocks and never sends: it turns messages into queued model turns
(`TurnRunner.enqueue`), barge-in (`TurnRunner.interrupt`) and tool answers, and raises
`ProtocolError` for input that closes the connection. Lifecycle commands (`/goaway`,
`/close`) go back to the session through the `goaway` and `finish` callables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import protocol as p
from .config import EmulatorConfig
from .handshake import SessionSetup, load_tools
from .scripts import Command, parse_command
from .stats import Counters
from .turns import Job, TurnRunner
from .usage import prompt_tokens
from .vad import START, EnergyVAD

_RATE = re.compile(r"rate=(\d+)")
_SCHEDULING = ("SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT")
_SCHEDULING_PROTO = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionResponse.Scheduling"
)


class Inputs:
    """Applies one connection's client messages to its turn runner."""

    def __init__(
        self,
        setup: SessionSetup,
        config: EmulatorConfig,
        counters: Counters,
        turns: TurnRunner,
        *,
        goaway: Callable[[], None],
        finish: Callable[[int, str], None],
    ) -> None:
        self.setup = setup
        self.counters = counters
        self.turns = turns
        self._goaway = goaway
        self._finish = finish
        self._vad = (
            None
            if setup.manual_vad
            else EnergyVAD(config.vad_threshold, setup.prefix_ms, setup.silence_ms)
        )
        self._prefill: str | None = None
        self._frames_pending = 0
        self._audio_pending = 0.0
        self._activity = False
        self._activity_seconds = 0.0

    def handle(self, kind: str, body: dict[str, Any]) -> None:
        """One normalised client message (from `protocol.parse_message`)."""
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

    def echo(self, raw: str | bytes) -> bytes | None:
        """Echo mode's hot path: one audio chunk in, the same base64 out, no VAD, no decode.
        Returns the reply frame, or None for anything else (which then takes `handle`)."""
        try:
            message = p.loads(raw)
        except p.JSONDecodeError:
            return None
        if type(message) is not dict or len(message) != 1:
            return None
        body = message.get("realtimeInput") or message.get("realtime_input")
        if type(body) is not dict or len(body) != 1:
            return None
        audio = body.get("audio")
        if type(audio) is not dict:
            return None
        data = audio.get("data")
        if type(data) is not str:
            return None
        mime = audio.get("mimeType") or audio.get("mime_type") or "audio/pcm;rate=16000"
        if "-" in data or "_" in data:
            data = data.translate(p.URLSAFE_TO_STANDARD)
        self.counters.audio_bytes += p.b64len(data)
        part = {"inlineData": {"mimeType": mime, "data": data}}
        return p.dumps({"serverContent": {"modelTurn": {"parts": [part]}}})

    # --- realtimeInput and voice activity --------------------------------------------------

    def _on_realtime(self, body: dict[str, Any]) -> None:
        chunks = body.get("mediaChunks")
        if chunks is not None:
            if not self.setup.model.media_chunks:
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
                self._user_turn(text, interrupt=self.setup.interrupts)
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
        if self.setup.manual_vad:
            if not self._activity:  # audio outside activityStart/activityEnd
                raise p.invalid_argument()
            self._activity_seconds += seconds
            return
        assert self._vad is not None
        for event in self._vad.feed(pcm, rate):
            self._on_vad_event(event)

    def _on_vad_event(self, event: tuple) -> None:
        if event[0] == START:
            if self.setup.interrupts:
                self.turns.interrupt()
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
        if not self.setup.manual_vad:
            raise p.invalid_argument()
        if self._activity:
            return
        self._activity = True
        self._activity_seconds = 0.0
        if self.setup.interrupts:
            self.turns.interrupt()

    def _activity_end(self) -> None:
        if not self.setup.manual_vad:
            raise p.invalid_argument()
        if self._activity:
            self._activity = False
            self._audio_turn(self._activity_seconds)

    # --- clientContent, toolResponse, contextUpdate ----------------------------------------

    def _on_client_content(self, body: dict[str, Any]) -> None:
        if self.setup.model.client_content_needs_history_config and not self.setup.history_config:
            raise p.invalid_argument()
        turns = body.get("turns") or []
        complete = bool(body.get("turnComplete"))
        if turns or complete:  # "A message here will interrupt any current model generation"
            self.turns.interrupt()
        history = self.setup.state.history
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
                path = f"tool_response.function_responses[{index}].scheduling"
                raise p.ProtocolError(
                    p.INVALID_ARGUMENT, p.reason_invalid_value(path, _SCHEDULING_PROTO, scheduling)
                )
            if not self.turns.answer(call_id, response, scheduling):
                raise p.invalid_argument()

    def _on_context_update(self, body: dict[str, Any]) -> None:
        if body.get("systemInstruction") is not None:
            self.setup.system_instruction = body["systemInstruction"]
        tools = body.get("tools")
        if tools is not None:
            self.setup.tools = load_tools(tools.get("tools") or [], self.setup.model)

    # --- user turns ------------------------------------------------------------------------

    def _user_turn(self, text: str, *, interrupt: bool, record: bool = True) -> None:
        state = self.setup.state
        command = parse_command(text, self.setup.tools)
        history_before = state.user_turns() - (0 if record else 1)
        if record:
            state.history.append(("user", text))
        if command.kind == "goaway":
            self._goaway()
            return
        if command.kind == "close":
            self._finish(command.code, command.text)
            return
        if interrupt:
            self.turns.interrupt()
        if command.kind == "plain":  # plain replies acknowledge video frames
            command = Command("say", text=self._with_frames(command.text))
        self.turns.enqueue(Job(command, history_before, self._take_prompt(text)))

    def _audio_turn(self, seconds: float) -> None:
        state = self.setup.state
        transcript = f"(speech {seconds:.1f} s)"
        history_before = state.user_turns()
        state.history.append(("user", transcript))
        reply = self._with_frames(f"I heard {seconds:.1f} seconds of audio.")
        job = Job(Command("say", text=reply), history_before, self._take_prompt(""), transcript)
        self.turns.enqueue(job)

    def _with_frames(self, text: str) -> str:
        frames = self._frames_pending
        if not frames:
            return text
        return f"{text} (I saw {frames} frame{'' if frames == 1 else 's'})"

    def _take_prompt(self, text: str) -> dict[str, int]:
        prompt = prompt_tokens(text, self._audio_pending, self._frames_pending)
        self._audio_pending = 0.0
        self._frames_pending = 0
        return prompt


def _sample_rate(mime: Any) -> int | None:
    """Input sample rate from `audio/pcm;rate=N` (16 kHz when absent); None if unusable."""
    if not mime:
        return 16000
    match = _RATE.search(str(mime))
    rate = int(match.group(1)) if match else 16000
    return rate if 8000 <= rate <= 48000 else None
