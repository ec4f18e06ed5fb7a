"""Which tools exist, which are declared to Gemini, and how one call is executed safely.

`TOOLS` is an explicit dict: no import-time self-registration, no entry points. To add a tool,
write a module exporting `TOOL = Tool(...)` and add it to the tuple below (docs/tools.md).

Behaviour: `get_weather` and `web_search` are declared BLOCKING, explicitly. They are quick
lookups (a few hundred ms, capped by PASTRA_TOOL_TIMEOUT_SECONDS) whose answer *is* the
reply, so there is nothing useful for the model to say meanwhile; BLOCKING works on every
Live model (gemini-3.1-flash-live-preview only does synchronous calls), and a BLOCKING
response needs no `scheduling`, so the bridge sends the same `toolResponse` shape on every
path. It is declared explicitly because gemini-3.8-live defaults to NON_BLOCKING.

`run()` never raises (except `asyncio.CancelledError`, which must propagate so the bridge can
cancel a call on `toolCallCancellation` or barge-in). Every failure becomes a `ToolResult`
with `ok=False` and `response={"error": "..."}` that the model can explain:
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
from assistant.tools.base import Tool, ToolError, ToolResult

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
        response = {"error": str(exc) or "the tool failed"}
    except TimeoutError:
        response = {"error": f"{name} did not finish in time (limit {timeout:g} seconds)"}
    except Exception:
        logger.exception("tool %s crashed (call %s)", name, call_id)
        response = {"error": "internal error"}
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
