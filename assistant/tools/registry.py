"""Which tools exist, which are declared to Gemini, and how one call is executed safely.

`TOOLS` is an explicit dict: no import-time self-registration, no entry points. To add a tool,
write a module exporting `TOOL = Tool(...)` and add it to the tuple below (docs/tools.md).

Behaviour: a tool's own `behavior` (BLOCKING for `get_weather` and `web_search`, quick lookups
whose answer *is* the reply) is what a model Pastra does not know gets, since BLOCKING works on
every Live model. For the models in the bridge's capability table, the setup policy declares
the server's functions with the behaviour that suits that model
(`assistant/live/gemini/models.py`: NON_BLOCKING on gemini-3.8-live, whose results go up with
`scheduling: WHEN_IDLE` so the model can say "let me check" while a call runs; BLOCKING on 3.1,
which only calls synchronously, and on 2.5).

`run()` never raises (except `asyncio.CancelledError`, which must propagate so the bridge can
cancel a call on `toolCallCancellation` or barge-in). Every failure becomes a `ToolResult`
with `ok=False` and `response={"status": "error", "error": "...", "retryable": bool}` that the
model can explain (retryable: a timeout, an unreachable or overloaded provider):
unknown or disabled tool, bad arguments, `ToolError` from the tool, timeout, or a crash
(logged with its traceback, reported as "internal error"). Calls are independent: the bridge
runs the calls of one `toolCall` as concurrent tasks. Logs carry the tool name, call id,
outcome and duration, never arguments or results.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from django.conf import settings

from assistant.tools import search, weather
from assistant.tools.base import Tool, ToolError, ToolResult, error_response

logger = logging.getLogger(__name__)

TOOLS: dict[str, Tool] = {tool.name: tool for tool in (weather.TOOL, search.TOOL)}


def enabled_tools() -> list[Tool]:
    return [tool for tool in TOOLS.values() if tool.is_enabled()]


def function_declarations() -> list[dict]:
    return [tool.declaration() for tool in enabled_tools()]


def gemini_tools() -> list[dict]:
    """Entries for Gemini `setup.tools`.

    `[{"functionDeclarations": [...]}]` for the enabled server functions (omitted when there
    are none), then the Google-run tools the deployment offers: `{"codeExecution": {}}` if
    PASTRA_CODE_EXECUTION, `{"googleSearch": {}}` if PASTRA_GOOGLE_SEARCH, `{"urlContext": {}}`
    if PASTRA_URL_CONTEXT. The bridge's setup policy adds each only where the session's model
    supports it. Built-in tools run at Google; their parts (`executableCode`,
    `codeExecutionResult`, `groundingMetadata`) arrive in `serverContent` for the bridge.
    """
    entries: list[dict] = []
    declarations = function_declarations()
    if declarations:
        entries.append({"functionDeclarations": declarations})
    if getattr(settings, "PASTRA_CODE_EXECUTION", False):
        entries.append({"codeExecution": {}})
    if getattr(settings, "PASTRA_GOOGLE_SEARCH", False):
        entries.append({"googleSearch": {}})
    if getattr(settings, "PASTRA_URL_CONTEXT", False):
        entries.append({"urlContext": {}})
    return entries


def server_function_names() -> frozenset[str]:
    """Names of the enabled functions this server executes (the bridge answers these)."""
    return frozenset(tool.name for tool in enabled_tools())


async def run(*, call_id: str, name: str, args: dict | None) -> ToolResult:
    """Execute one function call and return its result; never raises but CancelledError."""
    started = time.monotonic()
    timeout = float(settings.PASTRA_TOOL_TIMEOUT_SECONDS)
    tool = TOOLS.get(name) if isinstance(name, str) else None
    ok = False
    try:
        if tool is None or not tool.is_enabled():
            raise ToolError(f"unknown tool: {str(name)[:64]}")
        kwargs = tool.bind(args)
        async with asyncio.timeout(timeout):
            response = await tool.handler(**kwargs)
        _check_response(response)
        ok = True
    except ToolError as exc:
        response = error_response(str(exc) or "the tool failed", retryable=exc.retryable)
    except TimeoutError:
        response = error_response(
            f"{name} did not finish in time (limit {timeout:g} seconds)", retryable=True
        )
    except Exception:
        logger.exception("tool %s crashed (call %s)", name, call_id)
        response = error_response("internal error", retryable=False)
    except asyncio.CancelledError:
        logger.info("tool %s cancelled (call %s)", name, call_id)
        raise
    duration_ms = round((time.monotonic() - started) * 1000)
    logger.info(
        "tool %s %s in %d ms (call %s)", name, "ok" if ok else "error", duration_ms, call_id
    )
    return ToolResult(
        call_id=call_id, name=str(name), response=response, ok=ok, duration_ms=duration_ms
    )


def _check_response(response: object) -> None:
    """A handler must return a JSON-serialisable dict; anything else is a bug."""
    if not isinstance(response, dict):
        raise TypeError(f"tool returned {type(response).__name__}, not dict")
    json.dumps(response)
