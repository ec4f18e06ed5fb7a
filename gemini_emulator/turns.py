"""The turn runner: queued model turns played out one at a time, with their tool calls.

`TurnRunner.run` is the connection's responder task. Each turn runs in a task of its own so
that barge-in is a `cancel()`; the responder then sends `interrupted`, cancels the turn's
open calls and ends the turn with `turnComplete` (+usage, + `interactionStatus` on models
with live signals) and a fresh resumption handle.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import protocol as p
from .context import EmulatorContext
from .handshake import SessionSetup
from .scripts import (
    LONG_SECONDS,
    Command,
    clean_expression,
    evaluate,
    grounding_metadata,
    returned_text,
    split_words,
    url_context_metadata,
)
from .signals import Signals
from .speech import BYTES_PER_SECOND
from .stats import Counters
from .usage import usage_metadata

OUTPUT_MIME = "audio/pcm;rate=24000"
THOUGHT = "Thinking about how best to answer this."
_CANCELLED_MEMORY = 256

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(eq=False)
class Job:
    """A model turn waiting to run: what to do and what the prompt cost."""

    command: Command
    history_before: int = 0
    prompt: dict[str, int] = field(default_factory=dict)
    transcript: str | None = None


class Turn:
    """A running model turn: what went out so far, which calls it issued."""

    __slots__ = (
        "audio_started",
        "calls",
        "completed",
        "job",
        "out_audio",
        "out_text",
        "spoken",
        "thoughts",
    )

    def __init__(self, job: Job) -> None:
        self.job = job
        self.thoughts = 0  # characters of thought parts
        self.calls: list[str] = []
        self.spoken: list[str] = []
        self.out_audio = 0.0
        self.out_text = 0
        self.audio_started: float | None = None  # loop time of the first audio chunk
        self.completed = False


class TurnRunner:
    """Runs one connection's model turns in order and owns its open function calls.

    `send` is the session's guarded sender (it drops messages once the session decided to
    close). The input side calls `enqueue`, `interrupt` and `answer`.
    """

    def __init__(
        self,
        context: EmulatorContext,
        setup: SessionSetup,
        counters: Counters,
        send: Send,
        signals: Signals | None = None,
    ) -> None:
        self.context = context
        self.signals = signals
        self.config = context.config
        self.setup = setup
        self.counters = counters
        self._send = send
        self._jobs: deque[Job] = deque()
        self._wake = asyncio.Event()
        self.turn: Turn | None = None
        self.turn_task: asyncio.Task | None = None
        self._blocking: dict[str, tuple[asyncio.Future, str]] = {}
        self._nonblocking: dict[str, str] = {}
        self._cancelled: OrderedDict[str, None] = OrderedDict()

    # --- called by the input side ----------------------------------------------------------

    def enqueue(self, job: Job, *, first: bool = False) -> None:
        if first:
            self._jobs.appendleft(job)
        else:
            self._jobs.append(job)
        self._wake.set()

    def interrupt(self) -> None:
        """Barge-in: stop the running turn (the responder reports it)."""
        turn, task = self.turn, self.turn_task
        if turn is not None and task is not None and not turn.completed and not task.done():
            task.cancel()

    def answer(self, call_id: str, response: dict[str, Any], scheduling: Any) -> bool:
        """A functionResponse for `call_id`; False if this session never issued that id."""
        if call_id in self._blocking:
            future, _ = self._blocking.pop(call_id)
            if not future.done():
                future.set_result(response)
        elif call_id in self._nonblocking:
            self._nonblocking_result(call_id, response, scheduling)
        elif call_id not in self._cancelled:  # a call we never made
            return False
        return True

    def abandon(self) -> None:
        """The connection is over: cancel the blocking calls still waiting for a response."""
        for future, _ in self._blocking.values():
            future.cancel()
        self._blocking.clear()

    def _nonblocking_result(self, call_id: str, response: dict[str, Any], scheduling: Any) -> None:
        name = self._nonblocking[call_id]
        if not response.get("willContinue"):
            del self._nonblocking[call_id]
        if self.turn is not None and call_id in self.turn.calls:
            self.turn.calls.remove(call_id)  # answered: no longer cancellable
        text = returned_text(name, response)
        self.setup.state.history.append(("function", text))
        if scheduling == "SILENT":
            return
        job = Job(Command("say", text=text))
        if scheduling == "INTERRUPT":
            self.interrupt()
            self.enqueue(job, first=True)
        else:  # WHEN_IDLE, the default
            self.enqueue(job)

    # --- the responder ---------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            if not self._jobs:
                self._wake.clear()
                await self._wake.wait()
                continue
            turn = Turn(self._jobs.popleft())
            task = asyncio.create_task(self._run_turn(turn))
            self.turn, self.turn_task = turn, task
            try:
                await asyncio.wait({task})
            finally:
                if not task.done():
                    task.cancel()
                self.turn = self.turn_task = None
            if task.cancelled():
                await self._end_interrupted(turn)
            elif task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _send_content(self, content: dict[str, Any]) -> None:
        await self._send({"serverContent": content})

    async def _run_turn(self, turn: Turn) -> None:
        job = turn.job
        if job.transcript is not None and self.setup.input_transcription:
            if self.signals is not None:  # interim updates and ACTIVITY_END go first
                await self.signals.flushed()
            await self._send_content({"inputTranscription": {"text": job.transcript}})
        if self.config.reply_delay:
            await asyncio.sleep(self.config.reply_delay)
        command = job.command
        kind = command.kind
        if kind == "end":  # no model content; the reason rides on turnComplete
            await self._end_turn(turn, reason=command.text)
            return
        if self.setup.model.thoughts:  # extended thinking: a thought part before the reply
            await self._send_content({"modelTurn": {"parts": [{"text": THOUGHT, "thought": True}]}})
            turn.thoughts += len(THOUGHT)
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
        elif kind == "url":
            await self._say(turn, command.text)
            await self._send_content({"urlContextMetadata": url_context_metadata(command.args)})
        await self._complete(turn)

    # --- what a turn sends -----------------------------------------------------------------

    async def _say(self, turn: Turn, text: str, seconds: float = 0.0) -> None:
        if turn.spoken:
            text = " " + text
        if self.setup.modality == "TEXT":
            for piece in split_words(text, max(1, math.ceil(len(text.split()) / 4))):
                if not piece:
                    continue
                await self._send_content({"modelTurn": {"parts": [{"text": piece}]}})
                turn.spoken.append(piece)
                turn.out_text += len(piece)
                await self._pause(0.0)
            return
        pcm = await self.context.speech.render(text.strip(), seconds)
        step = max(2, BYTES_PER_SECOND * self.config.chunk_ms // 1000)
        chunks = [pcm[offset : offset + step] for offset in range(0, len(pcm), step)] or [pcm]
        deltas = split_words(text, len(chunks))
        bundled = self.setup.model.bundled
        for chunk, delta in zip(chunks, deltas, strict=True):
            part = {"inlineData": {"mimeType": OUTPUT_MIME, "data": p.b64encode(chunk)}}
            caption = delta and self.setup.output_transcription
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
        if self.setup.model.bundled:
            await self._send_content({"modelTurn": {"parts": parts}})
        else:
            for part in parts:
                await self._send_content({"modelTurn": {"parts": [part]}})

    async def _call(self, turn: Turn, name: str, args: dict[str, Any]) -> None:
        call_id = self.context.function_call_id()
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
            content: dict[str, Any] = {"turnComplete": True}
            if self.setup.model.live_signals:  # waiting on the client, or the turn goes on
                content["interactionStatus"] = "IDLE" if blocking else "IN_PROGRESS"
            await self._send_content(content)
        if future is None:
            await self._say(turn, f"Calling {name}.")
            return
        # Nothing more in this turn until the matching toolResponse (which pops the id);
        # on barge-in the id stays in _blocking so that _end_interrupted cancels it.
        response = await future
        turn.calls.remove(call_id)
        text = returned_text(name, response)
        self.setup.state.history.append(("function", text))
        await self._say(turn, text)

    def _is_blocking(self, name: str) -> bool:
        model = self.setup.model
        if model.function_calling == "sync-only":
            return True
        behavior = self.setup.tools.functions[name].get("behavior")
        if behavior in ("BLOCKING", "NON_BLOCKING"):
            return behavior == "BLOCKING"
        return model.function_calling != "nonblocking-default"

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

    # --- how a turn ends -------------------------------------------------------------------

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

    async def _end_turn(self, turn: Turn, reason: str | None = None) -> None:
        state = self.setup.state
        state.history.append(("model", "".join(turn.spoken).strip()))
        self.counters.turns += 1
        usage = usage_metadata(
            turn.job.prompt, self.setup.modality, turn.out_audio, turn.out_text, turn.thoughts
        )
        content: dict[str, Any] = {"turnComplete": True}
        if reason is not None:
            content["turnCompleteReason"] = reason
            if reason == "NEED_MORE_INPUT":
                content["waitingForInput"] = True
        if self.setup.model.live_signals:
            # IDLE: all processing done; IN_PROGRESS: more output follows without new input
            # (a queued turn: a WHEN_IDLE or INTERRUPT tool result, input queued meanwhile).
            # A NON_BLOCKING call waiting for the client's response is the client's move: IDLE.
            content["interactionStatus"] = "IN_PROGRESS" if self._jobs else "IDLE"
        await self._send({"serverContent": content, "usageMetadata": usage})
        if self.setup.resumable:
            handle = self.context.store.issue(state)
            await self._send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})
