"""The session's function calls: which go to the client and which the server runs; server
calls run as tasks (one per call, concurrently) and each `toolCall`'s server half is answered
upstream in one `toolResponse` (NON_BLOCKING ones each on their own, with `scheduling`);
cancellation; every call answered exactly once, and recorded with its result (or as
cancelled). Which server functions a session declares (`server_tools`: calculate only where
the model has no code execution; the user's MCP tools, loaded at start by `load_mcp`).

Routing decisions are returned (`Routing`), never written into the message: the adapter gets
the immutable view and the routing side by side.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings

from assistant import metrics
from assistant.live.gemini import setup as policy
from assistant.live.gemini.errors import invalid
from assistant.live.gemini.models import CODE_EXECUTION, capabilities
from assistant.live.gemini.wire import dumps
from assistant.live.recorder import Recorder
from assistant.tools import mcp_tools, registry
from assistant.tools.base import Tool

if TYPE_CHECKING:
    from assistant.live.contract import ClientSink, SessionSpec

logger = logging.getLogger(__name__)


class Routing(NamedTuple):
    """What of one upstream message's calls and cancellations is the client's."""

    client_calls: tuple[dict, ...] = ()
    client_cancelled: tuple[str, ...] = ()


NO_ROUTING = Routing()


def server_tools(model: str, extra: Iterable[Tool] = ()) -> list[dict]:
    """The server's entries for setup.tools on this model: the built-in functions (calculate
    stands in for code execution where the model has none, assistant/tools/calculate.py),
    then `extra` (the user's MCP tools), then the Google-run tools the deployment offers."""
    runs_code = CODE_EXECUTION in capabilities(model).tools
    return registry.gemini_tools(extra, code_execution=runs_code and settings.PASTRA_CODE_EXECUTION)


class _Call:
    __slots__ = ("batch", "executor", "generation", "id", "name", "started")

    def __init__(self, call_id: str, name: str, executor: str, generation: int, batch=None):
        self.id = call_id
        self.name = name
        self.executor = executor
        self.generation = generation
        self.started = time.monotonic()
        self.batch = batch


class _Batch:
    """The server-executed calls of one toolCall: answered upstream in one toolResponse."""

    __slots__ = ("generation", "pending", "responses")

    def __init__(self, generation: int, ids: set[str]) -> None:
        self.generation = generation
        self.pending = ids
        self.responses: list[dict] = []


class ToolCalls:
    """`sink.tool_activity(**event)` tells the client about server calls;
    `answer(payload, call_generation=…)` queues a toolResponse upstream (the uplink's
    `put_control`); `spawn(coro, role)` starts a task in the session's task group;
    `generation()` is the current upstream connection; `spec` the session's."""

    def __init__(
        self,
        *,
        client_functions: set[str],
        recorder: Recorder,
        sink: ClientSink,
        answer: Callable[..., None],
        spawn: Callable[..., asyncio.Task],
        generation: Callable[[], int],
        spec: SessionSpec,
    ) -> None:
        self.client_functions = client_functions
        # NON_BLOCKING server functions (the model's table says so): each result goes up on
        # its own as soon as it is ready, with this `scheduling`, instead of with its batch.
        self._scheduling = capabilities(spec.model).server_result_scheduling
        self._spec = spec
        self._sink = sink
        self._recorder = recorder
        self._notify = sink.tool_activity
        self._answer = answer
        self._spawn = spawn
        self._generation = generation
        self._calls: dict[str, _Call] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self.extra: dict = {}  # the session's MCP tools by name (assistant/tools/mcp_tools.py)

    async def load_mcp(self) -> policy.Tools | None:
        """Add the user's MCP tools (never raises); tell the client which servers are left
        out. Returns the session's new setup tools, or None when nothing was added."""
        found = await mcp_tools.for_user(self._spec.user_id)
        if found.unavailable:
            self._sink.tools_unavailable(list(found.unavailable))
        if not found.tools:
            return None
        self.extra = found.tools
        asked = self._spec.setup.body.get("tools") or []
        tools = server_tools(self._spec.model, found.tools.values())
        merged = policy.merge_tools(tools, asked, model=self._spec.model)
        self.client_functions = merged.client_functions
        return merged

    def pending(self) -> bool:
        """A call of the current upstream connection still waits for its answer."""
        generation = self._generation()
        return any(call.generation == generation for call in self._calls.values())

    # --- upstream → calls -----------------------------------------------------------------

    def on_tool_call(self, calls: tuple[dict, ...]) -> tuple[dict, ...]:
        """Start the server's calls; returns the client's (only functions the client declared
        go to it: a name nobody declared is answered by the server with an "unknown tool"
        error, or the model would wait for it forever)."""
        generation = self._generation()
        client: list[dict] = []
        server: list[tuple[str, str, Any]] = []
        for call in calls:
            call_id, name = str(call.get("id") or ""), str(call.get("name") or "")
            args = call.get("args") or {}
            if call_id in self._calls:
                # Exactly one functionResponse per id: a repeated id while its call is
                # pending would start a second task (and a second response) for it.
                logger.warning("repeated call id %s ignored", call_id)
                continue
            executor = "client" if name in self.client_functions else "server"
            self._recorder.tool_call(call_id=call_id, name=name, args=args, executor=executor)
            self._calls[call_id] = _Call(call_id, name, executor, generation)
            if executor == "server":
                server.append((call_id, name, args))
            else:
                client.append(call)
        if server:
            batch = _Batch(generation, {call_id for call_id, _, _ in server})
            for call_id, name, args in server:
                self._calls[call_id].batch = batch
                self._notify(phase="started", id=call_id, name=name, executor="server", args=args)
                self._tasks[call_id] = self._spawn(
                    self._run(call_id, name, args, batch), f"tool {name} {call_id}"
                )
        return tuple(client)

    async def _run(self, call_id: str, name: str, args: Any, batch: _Batch) -> None:
        try:
            result = await registry.run(call_id=call_id, name=name, args=args, extra=self.extra)
        finally:
            self._tasks.pop(call_id, None)
        metrics.TOOL_CALLS.labels(name, "ok" if result.ok else "error").inc()
        metrics.TOOL_SECONDS.labels(name).observe(result.duration_ms / 1000)
        self._recorder.tool_result(
            call_id=call_id,
            name=name,
            response=result.response,
            ok=result.ok,
            duration_ms=result.duration_ms,
        )
        # A failure carries `message`, one plain sentence for the tool card; `card`, a
        # calculation to show like code execution.
        shown = {"message": result.message()} if not result.ok else {}
        if result.card:
            shown["card"] = result.card
        self._notify(
            phase="finished",
            id=call_id,
            name=name,
            executor="server",
            ok=result.ok,
            duration_ms=result.duration_ms,
            summary=result.summary(),
            **shown,
        )
        self._calls.pop(call_id, None)
        response = {"id": call_id, "name": name, "response": result.response}
        batch.pending.discard(call_id)
        if self._scheduling:
            response["scheduling"] = self._scheduling
            if batch.generation == self._generation():
                self._send([response], batch.generation)
            else:
                logger.info("tool result of an earlier upstream connection not sent")
            return
        batch.responses.append(response)
        self._answer_batch(batch)

    def _answer_batch(self, batch: _Batch) -> None:
        if batch.pending or not batch.responses:
            return
        responses, batch.responses = batch.responses, []
        if batch.generation != self._generation():
            logger.info("tool results of an earlier upstream connection not sent")
            return
        self._send(responses, batch.generation)

    def _send(self, responses: list[dict], generation: int) -> None:
        """One toolResponse upstream, for calls of that connection (the writer drops it if the
        connection changed before it goes out)."""
        payload = dumps({"toolResponse": {"functionResponses": responses}})
        self._answer(payload, call_generation=generation)

    def on_cancel(self, ids: tuple[str, ...]) -> tuple[str, ...]:
        """toolCallCancellation (Gemini sends it on barge-in: speech, text, clientContent).
        A server call's task is cancelled, so no functionResponse is sent for it; the rest
        of its batch is answered without it. Returns the client's cancelled ids. Calls
        already answered are unknown here by now and are ignored (a response still queued in
        the uplink goes out; Gemini ignores a late response to a cancelled call)."""
        client: list[str] = []
        for call_id in ids:
            call = self._calls.pop(call_id, None)
            if call is None:
                continue
            duration_ms = self._record_cancelled(call)
            if call.executor == "client":
                client.append(call_id)
                continue
            if task := self._tasks.pop(call_id, None):
                task.cancel()
            self._notify(
                phase="cancelled",
                id=call_id,
                name=call.name,
                executor="server",
                duration_ms=duration_ms,
            )
            if call.batch is not None:
                call.batch.pending.discard(call_id)
                self._answer_batch(call.batch)
        return tuple(client)

    # --- client → upstream ------------------------------------------------------------------

    def answer_client(self, responses: Any) -> None:
        """A client's answers to client-declared function calls, sent upstream in one
        toolResponse. A NON_BLOCKING call answered with `willContinue: true` stays open for its next
        answers (each forwarded and recorded) until one comes without it. Answers to unknown
        ids, to server functions, or to calls of an earlier upstream connection are recorded
        (when known) but not sent: Gemini would close the session over them. Raises
        SessionEnd on a malformed answer."""
        if not isinstance(responses, list):
            raise invalid()
        generation = self._generation()
        keep = []
        now = time.monotonic()
        for response in responses:
            if not isinstance(response, dict) or not isinstance(response.get("id"), str):
                raise invalid()
            call = self._calls.get(response["id"])
            if call is None or call.executor != "client":
                logger.info("dropped a response to an unknown call")
                continue
            will_continue = response.get("willContinue") is True
            if not will_continue:
                del self._calls[call.id]
            body = response.get("response")
            self._recorder.tool_result(
                call_id=call.id,
                name=call.name,
                response=body,
                ok=not (isinstance(body, dict) and "error" in body),
                duration_ms=round((now - call.started) * 1000),
                will_continue=will_continue,
            )
            if call.generation != generation:
                logger.info(
                    "result for %s belongs to an earlier upstream connection: not sent", call.name
                )
                continue
            keep.append({**response, "name": response.get("name") or call.name})
        if keep:
            self._send(keep, generation)

    # --- the end ----------------------------------------------------------------------------

    def close(self) -> None:
        """The session ends: calls still open (their tasks were cancelled, or the client never
        answered) are recorded as cancelled, so every recorded tool_call has its tool_result."""
        calls, self._calls = self._calls, {}
        for call in calls.values():
            self._record_cancelled(call, "session ended")

    def _record_cancelled(self, call: _Call, reason: str = "") -> int:
        """Record a call that will never have a result: `tool_result` with ok False and
        `{"error": "cancelled"}` (plus `reason` when the session, not Gemini, ended it)."""
        duration_ms = round((time.monotonic() - call.started) * 1000)
        response = {"error": "cancelled", "reason": reason} if reason else {"error": "cancelled"}
        self._recorder.tool_result(
            call_id=call.id, name=call.name, response=response, ok=False, duration_ms=duration_ms
        )
        if call.executor == "server":
            metrics.TOOL_CALLS.labels(call.name, "cancelled").inc()
        return duration_ms
