"""Which tools exist, which are declared to Gemini, and how one call is executed safely.

`TOOLS` is an explicit dict: no import-time self-registration, no entry points. To add a tool,
write a module exporting `TOOL = Tool(...)` and add it to the tuple below (docs/tools.md).
A session adds the tools of the MCP servers enabled for its user (`mcp_tools.py`) as `extra`:
they are declared and run like the built-in ones, under their own server's timeout.
`calculate` is declared only where the session's model has no code execution of its own.

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
from collections.abc import Iterable, Mapping

from django.conf import settings

from assistant.tools import calculate, search, stock, weather
from assistant.tools.base import Tool, ToolError, ToolResult, error_response

logger = logging.getLogger(__name__)

TOOLS: dict[str, Tool] = {
    tool.name: tool for tool in (weather.TOOL, search.TOOL, stock.TOOL, calculate.TOOL)
}


def enabled_tools(extra: Iterable[Tool] = (), *, code_execution: bool = False) -> list[Tool]:
    """The built-in tools that are on, then `extra`; `code_execution`: the session's model runs
    code itself, so the tools standing in for it are left out."""
    tools = [tool for tool in TOOLS.values() if tool.is_enabled()]
    if code_execution:
        tools = [tool for tool in tools if not tool.without_code_execution]
    return tools + [tool for tool in extra if tool.name not in TOOLS]


def function_declarations(
    extra: Iterable[Tool] = (), *, code_execution: bool = False
) -> list[dict]:
    return [tool.declaration() for tool in enabled_tools(extra, code_execution=code_execution)]


def gemini_tools(extra: Iterable[Tool] = (), *, code_execution: bool = False) -> list[dict]:
    """Entries for Gemini `setup.tools`.

    `[{"functionDeclarations": [...]}]` for the enabled server functions (omitted when there
    are none), then the Google-run tools the deployment offers: `{"codeExecution": {}}` if
    PASTRA_CODE_EXECUTION, `{"googleSearch": {}}` if PASTRA_GOOGLE_SEARCH, `{"urlContext": {}}`
    if PASTRA_URL_CONTEXT. The bridge's setup policy adds each only where the session's model
    supports it. Built-in tools run at Google; their parts (`executableCode`,
    `codeExecutionResult`, `groundingMetadata`) arrive in `serverContent` for the bridge.
    """
    entries: list[dict] = []
    declarations = function_declarations(extra, code_execution=code_execution)
    if declarations:
        entries.append({"functionDeclarations": declarations})
    if getattr(settings, "PASTRA_CODE_EXECUTION", False):
        entries.append({"codeExecution": {}})
    if getattr(settings, "PASTRA_GOOGLE_SEARCH", False):
        entries.append({"googleSearch": {}})
    if getattr(settings, "PASTRA_URL_CONTEXT", False):
        entries.append({"urlContext": {}})
    return entries


def server_function_names(extra: Iterable[Tool] = ()) -> frozenset[str]:
    """Names of the enabled functions this server executes (the bridge answers these)."""
    return frozenset(tool.name for tool in enabled_tools(extra))


async def run(
    *, call_id: str, name: str, args: dict | None, extra: Mapping[str, Tool] | None = None
) -> ToolResult:
    """Execute one function call and return its result; never raises but CancelledError.
    `extra`: the session's MCP tools by name."""
    started = time.monotonic()
    tool = None
    if isinstance(name, str):
        tool = TOOLS.get(name) or (extra or {}).get(name)
    timeout = float((tool and tool.timeout_seconds) or settings.PASTRA_TOOL_TIMEOUT_SECONDS)
    ok = False
    card = None
    try:
        if tool is None or not tool.is_enabled():
            raise ToolError(f"unknown tool: {str(name)[:64]}")
        kwargs = tool.bind(args)
        async with asyncio.timeout(timeout):
            response = await tool.handler(**kwargs)
        _check_response(response)
        ok = True
        if tool.code_card is not None:
            card = tool.code_card(kwargs, response)
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
        call_id=call_id,
        name=str(name),
        response=response,
        ok=ok,
        duration_ms=duration_ms,
        card=card,
    )


def _check_response(response: object) -> None:
    """A handler must return a JSON-serialisable dict; anything else is a bug."""
    if not isinstance(response, dict):
        raise TypeError(f"tool returned {type(response).__name__}, not dict")
    json.dumps(response)
