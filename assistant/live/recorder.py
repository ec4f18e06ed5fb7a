"""Conversation recording: assembles transcript fragments, tool calls and the rest of one
turn in memory and queues each turn as one batch for the writer (record_writer.py), never
a write per fragment. A user message sent while a reply is still coming (it interrupts it,
or follows it) opens the next turn, where its answer lands: each question is recorded in
the turn of its answer."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from assistant import metrics, services
from assistant.live.record_writer import Batch, RecordWriter
from assistant.models import ConversationEvent

logger = logging.getLogger(__name__)

Kind = ConversationEvent.Kind
_USER_KINDS = (Kind.USER_TEXT, Kind.INPUT_TRANSCRIPT)
_TEXT_KINDS = (Kind.INPUT_TRANSCRIPT, Kind.OUTPUT_TRANSCRIPT, Kind.MODEL_TEXT)
_MODEL_KINDS = (
    Kind.OUTPUT_TRANSCRIPT,
    Kind.MODEL_TEXT,
    Kind.TOOL_CALL,
    Kind.CODE_EXECUTION,
    Kind.GROUNDING,
)


@dataclass(frozen=True)
class TurnSummary:
    turn: int
    user: str
    model: str
    interrupted: bool


class _Entry:
    __slots__ = ("at", "data", "duration_ms", "kind", "parts")

    def __init__(self, kind: str, text: str = "", data=None, duration_ms=None) -> None:
        self.kind = kind
        self.parts = [text] if text else []
        self.data = data or {}
        self.duration_ms = duration_ms
        self.at: datetime = timezone.now()

    @property
    def text(self) -> str:
        return "".join(self.parts).strip() if self.kind in _TEXT_KINDS else "".join(self.parts)


class Recorder:
    """Buffers one turn in memory; `end_turn()` queues it for the writer; `run()` is the
    writer's task. `finish()` (on close) queues what is left and waits for the writes."""

    def __init__(self, *, conversation_id, first_turn: int = 1) -> None:
        self.writer = RecordWriter()
        self.conversation_id = conversation_id
        self.turn = first_turn
        self._entries: list[_Entry] = []
        self._next: list[_Entry] = []  # user messages sent during the reply: the next turn
        self._input: _Entry | None = None
        self._output: _Entry | None = None
        self._text: _Entry | None = None
        self._usage = [0, 0, 0]
        self._interrupted = False
        self._handle: str | None = None
        self._accounted = time.monotonic()

    @property
    def conversation_id(self):
        return self.writer.conversation_id

    @conversation_id.setter
    def conversation_id(self, conversation_id) -> None:
        self.writer.conversation_id = conversation_id

    # --- collecting (sync, cheap) -------------------------------------------------------

    def _add(self, kind: str, text: str = "", data=None, duration_ms=None) -> _Entry:
        entry = _Entry(kind, text, data, duration_ms)
        self._entries.append(entry)
        return entry

    def user_text(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if self._next or any(e.kind in _MODEL_KINDS for e in self._entries):
            self._next.append(_Entry(Kind.USER_TEXT, text))  # a reply is under way
        else:
            self._add(Kind.USER_TEXT, text)

    def input_fragment(self, text: str) -> None:
        if self._input is None:
            self._input = self._add(Kind.INPUT_TRANSCRIPT)
        self._input.parts.append(text)

    def output_fragment(self, text: str) -> None:
        if self._output is None:
            self._output = self._add(Kind.OUTPUT_TRANSCRIPT)
        self._output.parts.append(text)

    def model_text(self, text: str) -> None:
        if self._text is None:
            self._text = self._add(Kind.MODEL_TEXT)
        self._text.parts.append(text)

    def tool_call(self, *, call_id: str, name: str, args, executor: str) -> None:
        self._add(
            Kind.TOOL_CALL,
            name,
            {"id": call_id, "name": name, "args": args, "executor": executor},
        )

    def tool_result(
        self,
        *,
        call_id: str,
        name: str,
        response,
        ok: bool,
        duration_ms: int | None,
        will_continue: bool = False,
    ) -> None:
        data = {"id": call_id, "name": name, "response": response, "ok": ok}
        if will_continue:  # a NON_BLOCKING call's partial result: more will follow
            data["will_continue"] = True
        self._add(Kind.TOOL_RESULT, name, data, duration_ms)

    def code(self, kind: str, first: str, second: str) -> None:
        if kind == "code":
            self._add(Kind.CODE_EXECUTION, second, {"language": first})
        else:
            self._add(Kind.CODE_RESULT, second, {"outcome": first})

    def grounding(self, summary: dict) -> None:
        self._add(Kind.GROUNDING, "", summary)

    def interruption(self) -> None:
        self._interrupted = True
        self._add(Kind.INTERRUPTION)

    def error(self, message: str, **data) -> None:
        self._add(Kind.ERROR, message[:500], data)

    def session_event(self, what: str, **data) -> None:
        self._add(Kind.SESSION, what, data)

    def session_opened(self, what: str, **data) -> None:
        """ "started"/"resumed": first in the record, before whatever the client sent while
        the session was being set up."""
        entry = _Entry(Kind.SESSION, what, data)
        if self._entries:
            entry.at = min(entry.at, self._entries[0].at)
        self._entries.insert(0, entry)

    def usage(self, prompt: int, response: int, total: int) -> None:
        self._usage[0] += prompt
        self._usage[1] += response
        self._usage[2] += total

    def set_handle(self, handle: str) -> None:
        """The latest resumable upstream handle: rides on the pending batch if there is one
        (it usually arrives just after turnComplete), else on its own small write."""
        self._handle = handle
        self.writer.set_handle(handle)

    # --- batching ---------------------------------------------------------------------

    def _take_seconds(self) -> float:
        now = time.monotonic()
        seconds, self._accounted = now - self._accounted, now
        return seconds

    def _take_events(self) -> tuple[list[services.EventRecord], TurnSummary]:
        # Arrival order, except that the user's (late-arriving) speech transcript goes
        # before the model's first output of the turn.
        entries = [e for e in self._entries if e is not self._input]
        if self._input is not None:
            first = next((i for i, e in enumerate(entries) if e.kind in _MODEL_KINDS), None)
            entries.insert(len(entries) if first is None else first, self._input)
        if any(self._usage):
            usage_entry = _Entry(
                Kind.USAGE,
                data={
                    "prompt_tokens": self._usage[0],
                    "response_tokens": self._usage[1],
                    "total_tokens": self._usage[2],
                },
            )
            entries.append(usage_entry)
        events = [
            services.EventRecord(
                kind=e.kind,
                text=e.text,
                data=e.data,
                turn=self.turn,
                duration_ms=e.duration_ms,
                created_at=e.at,
            )
            for e in entries
            if e.kind not in _TEXT_KINDS or e.text
        ]
        user = " ".join(e.text for e in entries if e.kind in _USER_KINDS and e.text)
        model = (self._output or self._text).text if (self._output or self._text) else ""
        summary = TurnSummary(self.turn, user, model, self._interrupted)
        return events, summary

    def _reset_turn(self) -> None:
        self._entries = []
        self._input = self._output = self._text = None
        self._usage = [0, 0, 0]
        self._interrupted = False

    def end_turn(self) -> TurnSummary:
        events, summary = self._take_events()
        usage = services.Usage(*self._usage) if any(self._usage) else None
        self._enqueue(Batch(events, usage, self._take_seconds(), None))
        self._reset_turn()
        self.turn += 1
        self._entries, self._next = self._next, []
        return summary

    def account_seconds(self) -> None:
        """Queue the live seconds so far (the lease timer's quota check reads them)."""
        self._enqueue(Batch([], None, self._take_seconds(), None))

    def flush_pending(self) -> None:
        """Queue what the current turn holds so far without ending it (periodic seconds,
        shutdown). Fragments still to come start a new entry. User messages sent during the
        reply end the turn: they are the next one."""
        if self._next:
            self.end_turn()
        events, _ = self._take_events()
        usage = services.Usage(*self._usage) if any(self._usage) else None
        self._enqueue(Batch(events, usage, self._take_seconds(), None))
        self._reset_turn()

    def _enqueue(self, batch: Batch) -> None:
        self.writer.put(batch)

    # --- writing (record_writer.py) -------------------------------------------------------

    def run(self):
        return self.writer.run()

    async def wait_written(self, limit: float = 10.0) -> None:
        await self.writer.wait_written(limit)

    async def close(self, end) -> None:
        """The session ended (`end`: a SessionEnd): record how, then write everything."""
        if not end.clean:
            self.error(end.message, kind=str(end.kind), code=end.upstream_code)
        self.session_event("ended", reason=str(end.kind))
        try:
            await self.finish()
        except Exception:
            logger.exception("final recording failed")
            metrics.ERRORS.labels("recording").inc()

    async def finish(self, limit: float = 8.0) -> None:
        """Queue the rest (with the latest handle) and wait for every write. Call shielded."""
        self.flush_pending()
        await self.writer.finish(limit, self._handle)
