"""What a server-side tool is, the error a tool raises, and the result the runner returns.

A `Tool` carries its Gemini function declaration (name, description, `parameters` in Gemini's
OpenAPI-subset schema with upper-case types, `behavior`), an async handler taking keyword
arguments, and a configuration check. `Tool.is_enabled()` is true only when the deployment
lists the tool in `PASTRA_TOOLS` *and* the tool's own settings are usable (for example a
search backend with its URL or key); a disabled tool is never declared to the model.

`Tool.bind(args)` checks the model's arguments against the declared schema before the handler
runs, so a missing, unknown or mistyped argument becomes a `ToolError` the model can correct,
never a `TypeError` from the call.

A tool from an MCP server (`mcp_tools.py`) is a `Tool` too, with `source` naming its server
and its own `timeout_seconds`; it exists only in the sessions of the users it is enabled for.
`ToolResult.message()` is a failed call's error as one plain sentence for a person (the
web UI's tool card), never raw JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.conf import settings


class ToolError(Exception):
    """An expected failure (bad input, place not found, provider said no).

    The message goes to the model verbatim in `error_response()`, so it must be short, safe
    to say aloud and free of secrets. `retryable` says whether the same call may succeed a
    little later (a timeout, an unreachable or overloaded provider), as opposed to a call the
    model must change (bad arguments, unknown place) or give up on.
    """

    def __init__(self, message: str = "", *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def error_response(message: str, *, retryable: bool) -> dict:
    """The `functionResponses[].response` of a failed call.

    Google's FunctionResponse reference: "Use 'output' key to specify function output and
    'error' key to specify error details" (ai.google.dev/api/caching#FunctionResponse, 2026).
    `status` and `retryable` let the model tell the person what happened instead of
    sweeping retries: `retryable: false` means the same call will fail again.
    """
    return {"status": "error", "error": message, "retryable": retryable}


class Behavior(StrEnum):
    BLOCKING = "BLOCKING"
    NON_BLOCKING = "NON_BLOCKING"


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one call: `response` goes into `functionResponses[].response`."""

    call_id: str
    name: str
    response: dict
    ok: bool
    duration_ms: int
    card: dict | None = None  # {"language", "code", "output"}: shown like code execution

    def message(self) -> str:
        """A failed call's error as one plain sentence a person can read ("" when it worked):
        the ToolError's message, first letter up, one line, ending in a full stop."""
        if self.ok or not isinstance(self.response, dict):
            return ""
        return sentence(str(self.response.get("error") or "the tool failed"))

    def summary(self, limit: int = 160) -> str:
        """A short one-line rendering of `response` for UI activity lines and records."""
        text = json.dumps(self.response, ensure_ascii=False, separators=(",", ":"), default=str)
        return text if len(text) <= limit else text[: limit - 1] + "…"


def sentence(text: str, limit: int = 200) -> str:
    """`text` as one short sentence: control characters and runs of blanks folded, a capital
    first (unless it starts with a name such as get_weather), a full stop at the end."""
    text = re.sub(r"\s+", " ", re.sub(r"[\x00-\x1f\x7f]", " ", text)).strip()
    if text == "internal error":
        text = "something went wrong inside the tool"
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    if not text:
        return ""
    if text.split(" ", 1)[0].isalpha():  # a word, not a name such as get_weather
        text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


Handler = Callable[..., Awaitable[dict]]


def _always() -> bool:
    return True


def listed_in_settings(name: str) -> bool:
    """Whether the deployment switched this tool on (`PASTRA_TOOLS`)."""
    listed = getattr(settings, "PASTRA_TOOLS", ())
    if isinstance(listed, str):
        listed = listed.split(",")
    return name in {item.strip() for item in listed}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict  # Gemini Schema: {"type": "OBJECT", "properties": {...}, "required": [...]}
    handler: Handler
    behavior: Behavior = Behavior.BLOCKING
    is_configured: Callable[[], bool] = field(default=_always)  # the tool's own settings check
    source: str = ""  # "" for a built-in tool; an MCP tool's server name
    timeout_seconds: float | None = None  # None: PASTRA_TOOL_TIMEOUT_SECONDS
    # Declared only where the session's model has no code execution of its own (calculate).
    without_code_execution: bool = False
    # (kwargs, response) -> {"language", "code", "output"}: the UI shows the call as code.
    code_card: Callable[[dict, dict], dict] | None = None

    def is_enabled(self) -> bool:
        if self.source:  # an MCP tool: built only for the sessions it is enabled in
            return True
        return listed_in_settings(self.name) and bool(self.is_configured())

    def declaration(self) -> dict:
        """The entry for `setup.tools[].functionDeclarations[]`.

        `behavior` is always explicit: models differ in their default (gemini-3.8-live
        treats an undeclared function as NON_BLOCKING).
        """
        declaration = {"name": self.name, "description": self.description}
        if self.parameters:  # Gemini refuses an OBJECT with empty properties
            declaration["parameters"] = self.parameters
        declaration["behavior"] = str(self.behavior)
        return declaration

    def bind(self, args: Any) -> dict:
        """Validate the model's `args` against `parameters`; return handler kwargs."""
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ToolError("arguments must be an object")
        properties: dict = self.parameters.get("properties", {})
        unknown = sorted(set(args) - set(properties))
        if unknown:
            raise ToolError(
                f"unknown argument(s) {', '.join(unknown)}; "
                f"{self.name} accepts {', '.join(properties) or 'no arguments'}"
            )
        missing = [name for name in self.parameters.get("required", ()) if args.get(name) is None]
        if missing:
            raise ToolError(f"missing required argument(s): {', '.join(missing)}")
        return {
            name: _coerce(name, value, properties[name])
            for name, value in args.items()
            if value is not None  # an explicit null means "use the default"
        }


_TYPE_NAMES = {
    "STRING": "a string",
    "INTEGER": "an integer",
    "NUMBER": "a number",
    "BOOLEAN": "true or false",
    "ARRAY": "a list",
    "OBJECT": "an object",
}


def _coerce(name: str, value: Any, schema: dict) -> Any:
    """Check one value against a (flat) Gemini schema; normalise enum case and 3.0 → 3."""
    kind = str(schema.get("type", "STRING")).upper()
    wrong = ToolError(f"argument {name} must be {_TYPE_NAMES.get(kind, kind.lower())}")
    if kind == "STRING":
        if not isinstance(value, str):
            raise wrong
        choices = schema.get("enum")
        if choices:
            match = next((c for c in choices if c.lower() == value.strip().lower()), None)
            if match is None:
                raise ToolError(f"argument {name} must be one of: {', '.join(choices)}")
            return match
        return value
    if kind == "BOOLEAN":
        if not isinstance(value, bool):
            raise wrong
        return value
    if kind == "INTEGER":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        if isinstance(value, float):
            if not value.is_integer():
                raise wrong
            value = int(value)
        return value
    if kind == "NUMBER":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        return value
    if kind == "ARRAY":
        if not isinstance(value, list):
            raise wrong
        return value
    if kind == "OBJECT":
        if not isinstance(value, dict):
            raise wrong
        return value
    return value
