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
from .rules import ALL_INPUT, ONLY_ACTIVITY
from .scripts import Command, parse_command
from .signals import ACTIVITY_END, ACTIVITY_START, Signals
from .stats import Counters
from .turns import Job, TurnRunner
from .usage import prompt_tokens
from .vad import START, EnergyVAD

_RATE = re.compile(r"rate=(\d+)")
_SCHEDULING = ("SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT")
_SCHEDULING_PROTO = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionResponse.Scheduling"
)
INTERIM_EVERY = 0.5  # seconds of speech between interimInputTranscription updates


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
        signals: Signals | None = None,
    ) -> None:
        self.setup = setup
        self.counters = counters
        self.turns = turns
        self.signals = signals or Signals()
        live = setup.model.live_signals
        self._voice_activity = live and not setup.manual_vad
        self._interims = live and setup.input_transcription
        self._next_interim = INTERIM_EVERY
        self._goaway = goaway
        self._finish = finish
        self._vad = (
            None
            if setup.manual_vad
            else EnergyVAD(config.vad_threshold, setup.prefix_ms, setup.silence_ms)
        )
        self._prefill: str | None = None
        self._frames_pending = 0
        self._frames_active = 0  # frames that arrived during user activity
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
            self._interim(self._activity_seconds)
            return
        assert self._vad is not None
        for event in self._vad.feed(pcm, rate):
            self._on_vad_event(event)
        self._interim(self._vad.speech_seconds)

    def _on_vad_event(self, event: tuple) -> None:
        if event[0] == START:
            self._next_interim = INTERIM_EVERY
            if self._voice_activity:
                self.signals.voice_activity(ACTIVITY_START, event[1])
            if self.setup.interrupts:
                self.turns.interrupt()
        else:
            if self._voice_activity:
                self.signals.voice_activity(ACTIVITY_END, event[2])
            self._audio_turn(event[1])

    def _interim(self, seconds: float) -> None:
        """interimInputTranscription (3.8): the running `(speech N.N s)` every 0.5 s of speech."""
        seconds = round(seconds, 3)  # sums of 0.1 s chunks: 0.49999... is 0.5
        if self._interims and seconds >= self._next_interim:
            self.signals.interim(f"(speech {seconds:.1f} s)")
            self._next_interim = (seconds // INTERIM_EVERY + 1) * INTERIM_EVERY

    def _on_video(self, blob: dict[str, Any], path: str) -> None:
        p.b64decode(blob.get("data"), path)
        self.counters.video_frames += 1
        self._frames_pending += 1
        in_activity = self._activity if self._vad is None else self._vad.in_speech
        if in_activity:
            self._frames_active += 1

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
        self._next_interim = INTERIM_EVERY
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
        if command.kind in ("plain", "url"):  # plain replies acknowledge video frames
            kind = "say" if command.kind == "plain" else "url"
            command = Command(kind, text=self._with_frames(command.text), args=command.args)
        self.turns.enqueue(Job(command, history_before, self._take_prompt(text, 0.0)))

    def _audio_turn(self, seconds: float) -> None:
        state = self.setup.state
        transcript = f"(speech {seconds:.1f} s)"
        history_before = state.user_turns()
        state.history.append(("user", transcript))
        reply = self._with_frames(f"I heard {seconds:.1f} seconds of audio.")
        prompt = self._take_prompt("", seconds)
        self.turns.enqueue(Job(Command("say", text=reply), history_before, prompt, transcript))

    def _turn_frames(self) -> int:
        """Video frames this turn includes: `turnCoverage` TURN_INCLUDES_ONLY_ACTIVITY counts
        only those sent during activity (speech, or activityStart..activityEnd); the other two
        settings count every frame since the previous turn (google-genai 3.6.1 TurnCoverage)."""
        if self.setup.turn_coverage == ONLY_ACTIVITY:
            return self._frames_active
        return self._frames_pending

    def _with_frames(self, text: str) -> str:
        frames = self._turn_frames()
        if not frames:
            return text
        return f"{text} (I saw {frames} frame{'' if frames == 1 else 's'})"

    def _take_prompt(self, text: str, activity_seconds: float) -> dict[str, int]:
        # Audio tokens: TURN_INCLUDES_ALL_INPUT counts all audio since the last turn, silence
        # included; the others only the activity (the utterance itself).
        audio = self._audio_pending if self.setup.turn_coverage == ALL_INPUT else activity_seconds
        prompt = prompt_tokens(text, audio, self._turn_frames(), self.setup.media_tokens)
        self._audio_pending = 0.0
        self._frames_pending = self._frames_active = 0
        return prompt


def _sample_rate(mime: Any) -> int | None:
    """Input sample rate from `audio/pcm;rate=N` (16 kHz when absent); None if unusable."""
    if not mime:
        return 16000
    match = _RATE.search(str(mime))
    rate = int(match.group(1)) if match else 16000
    return rate if 8000 <= rate <= 48000 else None
